"""The keyring: versioned matching keys, encrypted at rest under the KEK.

One 256-bit matching key per version ("k1", "k2", ...). Every purpose (a token
column family, a Bloom filter, the vault) gets its own subkey derived with
HKDF-SHA256 (info = purpose), so a token of one purpose never equals a token of
another. Rotation adds a version and makes it active; old versions stay so that
vault data written under them remains readable until retention removes it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from anonymise.crypto import new_key, seal, unseal
from anonymise.errors import (KeyringError, KeyringMissingError, MissingKEKError, TamperedError, UnknownKeyError,
                              WrongKEKError)
from anonymise.kek import (AIRFLOW_CONN_ID, DEV_OPT_IN_VAR, ENV_VAR, KEK, dev_kek_opted_in, find_kek, require_kek,
                           write_dev_kek)
from councilmatch.fileio import atomic_write
from councilmatch.home import Home

KEYRING_NAME = "keyring.json.enc"
FORMAT = 1


@dataclass(frozen=True)
class KeyVersion:
    key_id: str
    created: str  # ISO 8601 UTC
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class Keyring:
    """All key versions; ``key_id`` is the active one (used for new pseudonyms)."""

    versions: tuple[KeyVersion, ...]
    key_id: str

    def __post_init__(self) -> None:
        if self.key_id not in self.key_ids:
            raise KeyringError(f"active key {self.key_id!r} is not in the keyring")

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(v.key_id for v in self.versions)

    def has(self, key_id: str) -> bool:
        return key_id in self.key_ids

    def subkey(self, purpose: str, key_id: str | None = None) -> bytes:
        """The 32-byte subkey for ``purpose`` under ``key_id`` (default: the active key)."""
        kid = key_id or self.key_id
        for v in self.versions:
            if v.key_id == kid:
                return _derive(v.secret, purpose)
        raise UnknownKeyError(f"key {kid!r} is not in the keyring (have: {', '.join(self.key_ids)})")


@lru_cache(maxsize=512)
def _derive(secret: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret)


def keyring_path(home: Home):
    return home.keys / KEYRING_NAME


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _encode(ring: Keyring) -> bytes:
    return json.dumps({
        "format": FORMAT,
        "active": ring.key_id,
        "keys": [{"id": v.key_id, "created": v.created, "secret": base64.b64encode(v.secret).decode()}
                 for v in ring.versions],
    }).encode()


def _save(home: Home, ring: Keyring, kek: KEK) -> None:
    home.keys.mkdir(parents=True, exist_ok=True)
    blob = seal(kek.key, _encode(ring), {"kind": "keyring", "format": FORMAT})
    atomic_write(keyring_path(home), blob)


def _open(home: Home, kek: KEK) -> Keyring:
    path = keyring_path(home)
    if not path.exists():
        raise KeyringMissingError(f"no keyring at {path}: run `councilmatch keys init --home {home.root}`")
    try:
        _, plain = unseal(kek.key, path.read_bytes(), str(path))
    except TamperedError:
        raise WrongKEKError(
            f"keyring {path} does not decrypt with the key-encryption key from {kek.source}: "
            "wrong key-encryption key, or the keyring file was altered"
        ) from None
    data = json.loads(plain)
    versions = tuple(KeyVersion(k["id"], k["created"], base64.b64decode(k["secret"])) for k in data["keys"])
    return Keyring(versions=versions, key_id=data["active"])


def load_keyring(home: Home) -> Keyring:
    """Open the keyring; fails fast (KeyringError) when the KEK is missing or wrong."""
    return _open(home, require_kek(home))


def init_keys(home: Home, dev_kek: bool | None = None) -> str:
    """Create the keyring with key k1; idempotent (an existing keyring is only opened).

    On a fresh home without a configured KEK, writes a development KEK to
    ``home/keys/dev-kek`` only when asked to (``dev_kek=True``, or ``COUNCILMATCH_DEV_KEK=1``
    when ``dev_kek`` is None), and never in production (``COUNCILMATCH_PRODUCTION=1``).
    """
    kek = find_kek(home)
    if keyring_path(home).exists():
        return load_keyring(home).key_id
    if kek is None:
        if not (dev_kek if dev_kek is not None else dev_kek_opted_in()):
            raise MissingKEKError(
                f"no key-encryption key: set {ENV_VAR} (base64 of 32 random bytes) or the Airflow connection "
                f"{AIRFLOW_CONN_ID!r}. For a development home only, opt in to a key file beside the keyring "
                f"with `keys init --dev-kek` (or {DEV_OPT_IN_VAR}=1)")
        kek = write_dev_kek(home)
    ring = Keyring(versions=(KeyVersion("k1", _now(), new_key()),), key_id="k1")
    _save(home, ring, kek)
    return ring.key_id


def ensure_keyring(home: Home) -> Keyring:
    """Open the keyring, creating it first on a fresh home (embedded default)."""
    if not keyring_path(home).exists():
        init_keys(home)
    return load_keyring(home)


def rotate_keys(home: Home) -> str:
    """Add a new key version and make it active; returns its id (e.g. "k2")."""
    kek = require_kek(home)
    ring = _open(home, kek)
    n = max(int(k[1:]) for k in ring.key_ids if k[1:].isdigit()) + 1
    new = KeyVersion(f"k{n}", _now(), new_key())
    _save(home, Keyring(versions=ring.versions + (new,), key_id=new.key_id), kek)
    return new.key_id


def retire_key(home: Home, key_id: str) -> tuple[str, ...]:
    """Remove an old key version (retention): data sealed or tokenised under it becomes
    unreadable for good. The active key cannot be retired. Returns the remaining ids."""
    kek = require_kek(home)
    ring = _open(home, kek)
    if key_id == ring.key_id:
        raise KeyringError(f"key {key_id} is the active key; rotate first, then retire it")
    if not ring.has(key_id):
        raise UnknownKeyError(f"key {key_id!r} is not in the keyring (have: {', '.join(ring.key_ids)})")
    kept = tuple(v for v in ring.versions if v.key_id != key_id)
    _save(home, Keyring(versions=kept, key_id=ring.key_id), kek)
    return tuple(v.key_id for v in kept)


def key_status(home: Home) -> dict:
    """What the keyring holds, without any secret: active id, versions, KEK source."""
    kek = require_kek(home)
    ring = _open(home, kek)
    return {
        "keyring": str(keyring_path(home)),
        "kek_source": kek.source,
        "active": ring.key_id,
        "keys": [{"key_id": v.key_id, "created": v.created, "active": v.key_id == ring.key_id}
                 for v in ring.versions],
    }
