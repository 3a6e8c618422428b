"""Per-council data keys, wrapped by the hub keyring.

Each council's clear data (vault, quarantine, archive) is encrypted under its own
random data key; that key is stored only wrapped (AES-GCM) under the keyring's
``vault_wrap`` subkey of one key version: ``vault/<council>/datakey.<key_id>.enc``.
A compromise of one council's data key exposes only that council; rotating the
hub key starts new data keys while old ones stay unwrappable with the old version.
"""

from __future__ import annotations

from pathlib import Path

from anonymise.crypto import new_key, read_header, seal, unseal
from anonymise.errors import AnonymiseError, TamperedError
from anonymise.keys import Keyring
from councilmatch.fileio import write_once
from councilmatch.home import Home
from councilmatch.safepath import path_inside, UnsafePathError
from councilmatch.safepath import safe_name as _shared_safe_name

WRAP_PURPOSE = "vault_wrap"


class UnsafeNameError(AnonymiseError, UnsafePathError):
    """A council, data set, extract or key id that could escape its folder."""

def safe_name(value: str, what: str) -> str:
    """Refuse path components that could escape the vault (``..``, ``/``): the hub's one check."""
    try:
        return _shared_safe_name(value, what)
    except UnsafePathError as exc:
        raise UnsafeNameError(str(exc)) from None


def datakey_path(home: Home, council: str, key_id: str) -> Path:
    return path_inside(home.vault, safe_name(council, "council"), f"datakey.{safe_name(key_id, 'key id')}.enc",
                       what="data key file")


def data_key(home: Home, keyring: Keyring, council: str, key_id: str | None = None, create: bool = True) -> tuple[str, bytes]:
    """(key_id, data key) of ``council`` under hub key ``key_id`` (default: active).

    Creation is race-free: the wrapped key is published with a hard link, so two
    processes storing the same council at once end up using the same key.
    """
    kid = key_id or keyring.key_id
    path = datakey_path(home, council, kid)
    wrap = keyring.subkey(WRAP_PURPOSE, kid)
    if not path.exists():
        if not create:
            raise AnonymiseError(f"no data key for council {council} under key {kid} ({path})")
        write_once(path, seal(wrap, new_key(), {"kind": "datakey", "council": council, "key_id": kid}))
    header, key = unseal(wrap, path.read_bytes(), str(path))
    if header.get("council") != council or header.get("key_id") != kid:
        raise TamperedError(f"{path}: data key belongs to {header.get('council')}/{header.get('key_id')}")
    return kid, key


def seal_for_council(home: Home, keyring: Keyring, council: str, plaintext: bytes, header: dict) -> bytes:
    """Encrypt under the council's data key of the active hub key; the header records which."""
    kid, key = data_key(home, keyring, council)
    return seal(key, plaintext, {**header, "council": council, "key_id": kid})


def unseal_for_council(home: Home, keyring: Keyring, council: str, blob: bytes, what: str) -> tuple[dict, bytes]:
    """Decrypt a blob sealed by :func:`seal_for_council` (any key version the keyring holds)."""
    kid = read_header(blob, what).get("key_id")
    if not isinstance(kid, str):
        raise TamperedError(f"{what}: header names no key id")
    _, key = data_key(home, keyring, council, kid, create=False)
    header, plain = unseal(key, blob, what)
    if header.get("council") != council:
        raise TamperedError(f"{what}: sealed for council {header.get('council')}, not {council}")
    return header, plain
