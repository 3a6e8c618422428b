"""AES-256-GCM envelopes: the one place that encrypts and decrypts bytes.

An envelope is ``MAGIC | len(header) | header JSON | nonce | ciphertext+tag``.
The header (which key, what the blob is) travels in clear but is bound to the
ciphertext as associated data, so changing either is detected on open.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from anonymise.errors import TamperedError

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
