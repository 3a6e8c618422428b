"""Encryption at rest for everything the hub keeps outside the vault.

Every stage writes its Parquet and JSON through this module, so nothing under
``store/`` (pseudonymised extracts, shards, run state, flags, manifests) is
readable from a copied home without the key-encryption key (KEK):

* **Parquet**: pyarrow's Parquet modular encryption (AES-GCM, encrypted footer,
  every column encrypted). pyarrow makes a random data-encryption key per file and
  wraps it, through :class:`HubKms`, under one of our **at-rest data keys**.
  The columns of ``councilmatch.contracts.KEYRING_SEALED`` (the **condition fields**, the
  dates, amounts and discount a match type's rules read, and every **deterministic
  token and neighbourhood**, whose frequencies alone name the commonest names) are
  column-encrypted under a second master key derived from the keyring
  (:data:`CONDITIONS_PURPOSE`), so whoever holds the store's at-rest key but not the
  keyring (the insider of docs/security.md) can decrypt the salted Bloom filters and
  the references, not one token, date or amount; the plan and link steps, which hold
  the keyring, read them in memory.
* **JSON**: an AES-GCM envelope (``anonymise.crypto.seal``) under the same data key;
  its header names the data key and the file's place in the home (so a file cannot
  be swapped for another one unnoticed).

At-rest data keys are random 256-bit keys, one per keyring version (``k1``, ``k2``
...), stored only wrapped under the KEK in ``keys/datakeys/at-rest.<key_id>.enc``.
``keys change-kek`` re-wraps them (and the keyring); no data file is rewritten.
Decrypted keys and files live only in the memory of the process that needs them.

Plain Parquet (``PAR1`` footer) is refused on read: a file planted without the
keys cannot be passed off as the hub's own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from anonymise.crypto import KEY_BYTES, new_key, read_header, seal, unseal
from anonymise.datakeys import safe_name
from anonymise.errors import AnonymiseError, TamperedError, WrongKEKError
from anonymise.kek import KEK, require_kek
from anonymise.keys import _open, KEYRING_NAME
from councilmatch.contracts import KEYRING_SEALED
from councilmatch.fileio import atomic_write, atomic_write_with, write_once
from councilmatch.home import Home

DATAKEY_DIR = "datakeys"
PARQUET_MAGIC_PLAIN = b"PAR1"
PARQUET_MAGIC_ENCRYPTED = b"PARE"
JSON_KIND = "at_rest_json"
#: pyarrow re-asks the KMS for its cached key-encryption keys after this many seconds
_CACHE_LIFETIME = timedelta(minutes=10)
#: Benchmarks only (bench/bench_at_rest.py): measure the night with plain files. Never a setting.
_ENCRYPT = True


class AtRestError(AnonymiseError):
    """A file at rest cannot be read: not encrypted by the hub, or no key for it."""

# ---------------------------------------------------------------------------
# Data keys (wrapped under the KEK)
# ---------------------------------------------------------------------------


def find_home(path: Path) -> Home:
    """The data home a file belongs to: the nearest ancestor holding ``keys/keyring.json.enc``."""
    for parent in Path(path).resolve().parents:
        if (parent / "keys" / KEYRING_NAME).exists():
            return Home(parent)
    raise AtRestError(f"{path}: not inside a councilmatch home with a keyring (keys/{KEYRING_NAME})")


def datakey_dir(home: Home) -> Path:
    return home.keys / DATAKEY_DIR


def datakey_path(home: Home, key_id: str) -> Path:
    return datakey_dir(home) / f"at-rest.{safe_name(key_id, 'key id')}.enc"


_lock = threading.Lock()
_keys: dict[tuple[str, bytes, str], bytes] = {}
_active: dict[tuple[str, bytes], tuple[float, str]] = {}


def _kek_tag(kek: KEK) -> bytes:
    """A short fingerprint of the KEK for cache keys (never the KEK itself)."""
    return hashlib.sha256(b"councilmatch-kek-tag" + kek.key).digest()[:16]


def clear_caches() -> None:
    """Forget every unwrapped key held by this process (tests; after a KEK change)."""
    with _lock:
        _keys.clear()
        _active.clear()


def _wrap_datakey(kek: KEK, key_id: str, key: bytes) -> bytes:
    return seal(kek.key, key, {"kind": "at_rest_datakey", "key_id": key_id})


def _unwrap_datakey(kek: KEK, path: Path, key_id: str) -> bytes:
    try:
        header, key = unseal(kek.key, path.read_bytes(), str(path))
    except TamperedError:
        raise WrongKEKError(f"at-rest data key {path} does not decrypt with the key-encryption key from "
                            f"{kek.source}: wrong key-encryption key, or the file was altered") from None
    if header.get("kind") != "at_rest_datakey" or header.get("key_id") != key_id or len(key) != KEY_BYTES:
        raise TamperedError(f"{path}: not the at-rest data key {key_id}")
    return key


def data_key(home: Home, key_id: str, kek: KEK | None = None, create: bool = False) -> bytes:
    """The at-rest data key ``key_id``, unwrapped with the KEK (created on first use if ``create``).

    Creation is race-free (hard link): two tasks creating the key at once agree on one.
    """
    kek = kek or require_kek(home)
    cache_key = (str(home.root), _kek_tag(kek), key_id)
    with _lock:
        if cache_key in _keys:
            return _keys[cache_key]
    path = datakey_path(home, key_id)
    if not path.exists():
        if not create:
            raise AtRestError(f"no at-rest data key {key_id} in {datakey_dir(home)}: the file was written "
                              "under a key this home no longer holds")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        write_once(path, _wrap_datakey(kek, key_id, new_key()))  # another task may win: use its key
    key = _unwrap_datakey(kek, path, key_id)
    with _lock:
        _keys[cache_key] = key
    return key


def active_key_id(home: Home, kek: KEK | None = None) -> str:
    """The keyring's active key id: new files are encrypted under its at-rest data key."""
    kek = kek or require_kek(home)
    cache_key = (str(home.root), _kek_tag(kek))
    with _lock:
        hit = _active.get(cache_key)
    ring_file = home.keys / "keyring.json.enc"
    stamp = ring_file.stat().st_mtime if ring_file.exists() else 0.0
    if hit and hit[0] == stamp:
        return hit[1]
    kid = _open(home, kek).key_id
    with _lock:
        _active[cache_key] = (stamp, kid)
    return kid


def rewrap_data_keys(home: Home, old: KEK, new: KEK) -> list[Path]:
    """Re-wrap every at-rest data key from ``old`` to ``new`` (``keys change-kek``)."""
    done = []
    for path in sorted(datakey_dir(home).glob("at-rest.*.enc")):
        key_id = path.name[len("at-rest."): -len(".enc")]
        key = _unwrap_datakey(old, path, key_id)
        atomic_write(path, _wrap_datakey(new, key_id, key))
        done.append(path)
    return done


# ---------------------------------------------------------------------------
# pyarrow KMS client backed by the data keys
# ---------------------------------------------------------------------------

_MASTER_PREFIX = "cm-at-rest-"
#: Master key of the KEYRING_SEALED columns, and the keyring purpose it is derived from (one per
#: key version, like the tokens'). Both names predate the tokens joining the condition fields;
#: they are kept so that files written before read as they did.
_CONDITIONS_PREFIX = "cm-conditions-"
CONDITIONS_PURPOSE = "at-rest-condition-fields"


def conditions_key(home: Home, key_id: str, kek: KEK | None = None) -> bytes:
    """The KEYRING_SEALED columns' master key for ``key_id``: a keyring subkey, never on disk."""
    kek = kek or require_kek(home)
    cache_key = (str(home.root), _kek_tag(kek), "conditions:" + key_id)
    with _lock:
        if cache_key in _keys:
            return _keys[cache_key]
    key = _open(home, kek).subkey(CONDITIONS_PURPOSE, key_id)
    with _lock:
        _keys[cache_key] = key
    return key


class HubKms(pe.KmsClient):
    """pyarrow's key-management hook: wraps pyarrow's keys under our at-rest data keys.

    The master key identifier is ``cm-at-rest-<key_id>``; the wrapped form is
    base64 of ``nonce | AES-GCM(data key, key, aad=identifier)``.
    """

    def __init__(self, config: pe.KmsConnectionConfig) -> None:
        super().__init__()
        conf = config.custom_kms_conf
        self.home = Home(Path(conf["home"]))
        self._kek: KEK | None = _KEKS.get(conf["kek_tag"])

    def _key(self, master_key_identifier: str) -> bytes:
        if master_key_identifier.startswith(_CONDITIONS_PREFIX):
            return conditions_key(self.home, master_key_identifier[len(_CONDITIONS_PREFIX):], self._kek)
        if not master_key_identifier.startswith(_MASTER_PREFIX):
            raise AtRestError(f"unknown master key {master_key_identifier!r}")
        return data_key(self.home, master_key_identifier[len(_MASTER_PREFIX):], self._kek)

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        nonce = os.urandom(12)
        body = AESGCM(self._key(master_key_identifier)).encrypt(nonce, key_bytes, master_key_identifier.encode())
        return base64.b64encode(nonce + body).decode()

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        raw = base64.b64decode(wrapped_key)
        return AESGCM(self._key(master_key_identifier)).decrypt(raw[:12], raw[12:], master_key_identifier.encode())


class StoreKeyOnlyKms(HubKms):
    """The KMS of a reader that holds the at-rest data keys but not the keyring: it refuses the
    KEYRING_SEALED columns' key (the insider of docs/security.md, modelled by the attack suite)."""

    def _key(self, master_key_identifier: str) -> bytes:
        if master_key_identifier.startswith(_CONDITIONS_PREFIX):
            raise AtRestError(f"{master_key_identifier}: the key of tokens and condition fields needs the keyring")
        return super()._key(master_key_identifier)


_KEKS: dict[str, KEK] = {}
_FACTORY = pe.CryptoFactory(lambda config: HubKms(config))
_STORE_KEY_ONLY = pe.CryptoFactory(lambda config: StoreKeyOnlyKms(config))


def _kms_config(home: Home, kek: KEK) -> pe.KmsConnectionConfig:
    tag = _kek_tag(kek).hex()
    _KEKS[tag] = kek
    # The access token scopes pyarrow's own key caches: another KEK never reuses them.
    return pe.KmsConnectionConfig(kms_instance_id=str(home.root), key_access_token=tag,
                                  custom_kms_conf={"home": str(home.root), "kek_tag": tag})


def _home_of(path: Path, home: Home | None) -> Home:
    return home if home is not None else find_home(path)


def encryption_properties(home: Home, columns: Sequence[str]) -> Any:
    kek = require_kek(home)
    kid = active_key_id(home, kek)
    data_key(home, kid, kek, create=True)
    conditions = [c for c in columns if c in KEYRING_SEALED]
    others = [c for c in columns if c not in KEYRING_SEALED]
    # Every column and the footer (schema, statistics, metadata) is encrypted; tokens and
    # condition fields under the keyring's column key, the rest under the at-rest data key.
    keys = {"uniform_encryption": True} if not conditions else {
        "column_keys": {k: v for k, v in ((_MASTER_PREFIX + kid, others),
                                          (_CONDITIONS_PREFIX + kid, conditions)) if v}}
    config = pe.EncryptionConfiguration(
        footer_key=_MASTER_PREFIX + kid,
        **keys,
        plaintext_footer=False,
        double_wrapping=True,
        cache_lifetime=_CACHE_LIFETIME,
        data_key_length_bits=256,
    )
    return _FACTORY.file_encryption_properties(_kms_config(home, kek), config)


def decryption_properties(home: Home, keyring: bool = True) -> Any:
    """Decryption for a reader with the KEK; without ``keyring`` the condition fields stay sealed."""
    kek = require_kek(home)
    config = pe.DecryptionConfiguration(cache_lifetime=_CACHE_LIFETIME)
    return (_FACTORY if keyring else _STORE_KEY_ONLY).file_decryption_properties(_kms_config(home, kek), config)


def forget_pyarrow_caches() -> None:
    """Drop pyarrow's cached keys (after a KEK change in the same process)."""
    _FACTORY.remove_cache_entries_for_all_tokens()
    _STORE_KEY_ONLY.remove_cache_entries_for_all_tokens()
    clear_caches()


# ---------------------------------------------------------------------------
# Parquet
# ---------------------------------------------------------------------------


def write_table(path: Path, table: pa.Table, home: Home | None = None, compression: str = "zstd") -> Path:
    """Write ``table`` as modular-encrypted Parquet, atomically (temporary file, then rename)."""
    path = Path(path)
    home = _home_of(path, home)
    if not _ENCRYPT:
        return atomic_write_with(path, lambda tmp: pq.write_table(table, tmp, compression=compression))
    props = encryption_properties(home, table.column_names)
    return atomic_write_with(path, lambda tmp: pq.write_table(table, tmp, compression=compression,
                                                    encryption_properties=props))


def write_frame(path: Path, frame: pd.DataFrame, home: Home | None = None) -> Path:
    """A DataFrame (index dropped) through :func:`write_table`."""
    return write_table(path, pa.Table.from_pandas(frame, preserve_index=False), home)


def is_encrypted_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(-4, os.SEEK_END)
        tail = fh.read(4)
    return head == PARQUET_MAGIC_ENCRYPTED and tail == PARQUET_MAGIC_ENCRYPTED


def _check_encrypted(path: Path) -> None:
    if _ENCRYPT and not is_encrypted_parquet(path):
        raise AtRestError(f"{path}: not an encrypted councilmatch file (plain Parquet is refused at rest; "
                          "it was not written by the hub, or by a version before encryption at rest)")


def read_table(path: Path, columns: Sequence[str] | None = None, filters: Any = None,
               home: Home | None = None, keyring: bool = True) -> pa.Table:
    """Decrypt and read an encrypted Parquet file (optionally only ``columns``, rows by ``filters``).

    ``keyring=False`` reads as a holder of the at-rest keys alone: asking for a
    KEYRING_SEALED column then fails (:class:`StoreKeyOnlyKms`)."""
    path = Path(path)
    home = _home_of(path, home)
    _check_encrypted(path)
    props = decryption_properties(home, keyring) if _ENCRYPT else None
    try:
        return pq.read_table(path, columns=list(columns) if columns is not None else None, filters=filters,
                             decryption_properties=props)
    except OSError as exc:
        if "decrypt" in str(exc).lower() or "key" in str(exc).lower():
            raise AtRestError(f"{path}: cannot be decrypted with this home's keys ({exc})") from exc
        raise


def iter_tables(path: Path, batch_size: int, home: Home | None = None,
                columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Decrypt and read an encrypted Parquet file ``batch_size`` rows at a time, so that a big
    extract never has to be in memory whole (the plan's scan, a link shard's pick of records).
    ``columns``: only those of these the file has (the others are neither decrypted nor decoded)."""
    path = Path(path)
    home = _home_of(path, home)
    _check_encrypted(path)
    props = decryption_properties(home) if _ENCRYPT else None
    try:
        parquet = pq.ParquetFile(path, decryption_properties=props)
        if columns is not None:
            columns = [c for c in columns if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=batch_size, columns=columns):
            yield pa.Table.from_batches([batch])
    except OSError as exc:
        if "decrypt" in str(exc).lower() or "key" in str(exc).lower():
            raise AtRestError(f"{path}: cannot be decrypted with this home's keys ({exc})") from exc
        raise


def read_frame(path: Path, columns: Sequence[str] | None = None, filters: Any = None,
               home: Home | None = None, keyring: bool = True) -> pd.DataFrame:
    return read_table(path, columns, filters, home, keyring).to_pandas()


def read_metadata(path: Path, home: Home | None = None) -> dict[bytes, bytes]:
    """The schema metadata of an encrypted Parquet file (it sits in the encrypted footer)."""
    path = Path(path)
    home = _home_of(path, home)
    _check_encrypted(path)
    props = decryption_properties(home) if _ENCRYPT else None
    return pq.ParquetFile(path, decryption_properties=props).schema_arrow.metadata or {}


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


def _name_in_home(path: Path, home: Home) -> str:
    try:
        return Path(path).resolve().relative_to(home.root.resolve()).as_posix()
    except ValueError:
        return Path(path).name


def write_json(path: Path, data: Any, home: Home | None = None) -> Path:
    """``data`` as JSON in an AES-GCM envelope under the active at-rest data key (atomic)."""
    path = Path(path)
    home = _home_of(path, home)
    text = json.dumps(data, indent=2, sort_keys=True, default=str).encode()
    if not _ENCRYPT:
        return atomic_write(path, text)
    kek = require_kek(home)
    kid = active_key_id(home, kek)
    blob = seal(data_key(home, kid, kek, create=True), text,
                {"kind": JSON_KIND, "key_id": kid, "name": _name_in_home(path, home)})
    return atomic_write(path, blob)


def read_json(path: Path, home: Home | None = None) -> Any:
    """Decrypt a JSON file written by :func:`write_json` (checks it sits where it was written)."""
    path = Path(path)
    home = _home_of(path, home)
    blob = path.read_bytes()
    if not _ENCRYPT:
        return json.loads(blob)
    header = read_header(blob, str(path))
    if header.get("kind") != JSON_KIND or not isinstance(header.get("key_id"), str):
        raise AtRestError(f"{path}: not an encrypted councilmatch JSON file")
    _, plain = unseal(data_key(home, header["key_id"]), blob, str(path))
    if header.get("name") != _name_in_home(path, home):
        raise TamperedError(f"{path}: was written as {header.get('name')!r}; a file moved or swapped is refused")
    return json.loads(plain)


def reencrypt(path: Path, home: Home | None = None) -> Path:
    """Rewrite one file under the active data key (after ``keys rotate``)."""
    path = Path(path)
    home = _home_of(path, home)
    if path.suffix == ".parquet":
        return write_table(path, read_table(path, home=home), home)
    return write_json(path, read_json(path, home), home)
