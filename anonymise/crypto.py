"""AES-256-GCM envelopes: the one place that encrypts and decrypts bytes.

An envelope is ``MAGIC | len(header) | header JSON | nonce | ciphertext+tag``.
The header (which key, what the blob is) travels in clear but is bound to the
ciphertext as associated data, so changing either is detected on open.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from anonymise.errors import TamperedError
from councilmatch.commit import place

MAGIC = b"CMENC1\n"
NONCE_BYTES = 12
KEY_BYTES = 32


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, header: dict[str, Any]) -> bytes:
    """Encrypt ``plaintext`` under ``key``; ``header`` is authenticated, not secret."""
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    nonce = os.urandom(NONCE_BYTES)
    prefix = MAGIC + struct.pack(">I", len(head)) + head
    return prefix + nonce + AESGCM(key).encrypt(nonce, plaintext, prefix)


def read_header(blob: bytes, what: str = "encrypted blob") -> dict[str, Any]:
    """The (unauthenticated until :func:`unseal`) header of an envelope."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise TamperedError(f"{what}: not a councilmatch encrypted file (bad magic)")
    (n,) = struct.unpack(">I", blob[len(MAGIC): len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        return json.loads(blob[start: start + n])
    except ValueError as exc:
        raise TamperedError(f"{what}: header is corrupt") from exc


def unseal(key: bytes, blob: bytes, what: str = "encrypted blob") -> tuple[dict[str, Any], bytes]:
    """Decrypt an envelope; raise :class:`TamperedError` if anything was altered."""
    header = read_header(blob, what)
    (n,) = struct.unpack(">I", blob[len(MAGIC): len(MAGIC) + 4])
    cut = len(MAGIC) + 4 + n
    prefix, nonce, body = blob[:cut], blob[cut: cut + NONCE_BYTES], blob[cut + NONCE_BYTES:]
    try:
        return header, AESGCM(key).decrypt(nonce, body, prefix)
    except (InvalidTag, ValueError) as exc:
        raise TamperedError(
            f"{what}: authentication failed (AES-GCM tag mismatch): the file was altered, "
            "truncated, or encrypted under a different key"
        ) from exc


def write_once(path: Path, data: bytes) -> None:
    """Publish ``data`` at ``path`` (0600) unless a file is already there, race-free.

    Written to a temporary file, then hard-linked into place: of two processes creating the
    same key at once, the first link wins and both go on to read that one file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won: use its file
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    """Write ``data`` to ``path`` via a temporary file and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        place(tmp, path)  # now, or at the end of the feed's staged commit
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
