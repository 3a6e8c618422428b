"""Where the key-encryption key (KEK) comes from. Never from the repo, never logged.

Order: ``COUNCILMATCH_KEK`` (base64 of 32 bytes), then the password of the
Airflow connection ``councilmatch_kek`` (only when Airflow is installed and
configured), then — for the embedded development default only — the file
``home/keys/dev-kek`` that ``keys init`` writes on a fresh home.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from councilmatch.home import Home

from anonymise.crypto import KEY_BYTES, atomic_write, new_key
from anonymise.errors import InvalidKEKError, MissingKEKError

ENV_VAR = "COUNCILMATCH_KEK"
AIRFLOW_CONN_ID = "councilmatch_kek"
DEV_KEK_NAME = "dev-kek"


@dataclass(frozen=True)
class KEK:
    key: bytes
    #: where it came from, for messages ("COUNCILMATCH_KEK", "Airflow connection ...", a path)
    source: str

    def __repr__(self) -> str:  # never print the key
        return f"KEK(source={self.source!r})"


def dev_kek_path(home: Home) -> Path:
    return home.keys / DEV_KEK_NAME


def decode_kek(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKEKError(f"key-encryption key from {source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise InvalidKEKError(
            f"key-encryption key from {source} decodes to {len(key)} bytes; expected {KEY_BYTES} "
            "(generate one with: python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\")"
        )
    return key


def _from_airflow() -> str | None:
    """The connection's password, if Airflow is importable and configured to hold it."""
    configured = os.environ.get("AIRFLOW_CONN_" + AIRFLOW_CONN_ID.upper()) or os.environ.get("AIRFLOW_HOME")
    if not configured:
        return None
    try:
        from airflow.sdk import BaseHook  # type: ignore[attr-defined]
    except Exception:
        try:
            from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
        except Exception:
            return None
    try:
        return BaseHook.get_connection(AIRFLOW_CONN_ID).password or None
    except Exception:  # not defined, no DB, no API server: not configured
        return None


def find_kek(home: Home) -> KEK | None:
    """The configured KEK, or None when there is none."""
    env = os.environ.get(ENV_VAR)
    if env:
        return KEK(decode_kek(env, ENV_VAR), ENV_VAR)
    password = _from_airflow()
    if password:
        source = f"Airflow connection {AIRFLOW_CONN_ID!r}"
        return KEK(decode_kek(password, source), source)
    path = dev_kek_path(home)
    if path.exists():
        return KEK(decode_kek(path.read_text(), str(path)), str(path))
    return None


def require_kek(home: Home) -> KEK:
    kek = find_kek(home)
    if kek is None:
        raise MissingKEKError(
            f"no key-encryption key: set {ENV_VAR} (base64 of 32 random bytes) or the password of "
            f"the Airflow connection {AIRFLOW_CONN_ID!r}; the keyring in {home.keys} cannot be opened without it"
        )
    return kek


def write_dev_kek(home: Home) -> KEK:
    """Create the development KEK file (mode 0600). Only ``keys init`` on a fresh home calls this."""
    path = dev_kek_path(home)
    home.keys.mkdir(parents=True, exist_ok=True)
    os.chmod(home.keys, 0o700)
    atomic_write(path, base64.b64encode(new_key()) + b"\n", mode=0o600)
    return KEK(decode_kek(path.read_text(), str(path)), str(path))
