"""What the insider reads: every pseudonymised extract under ``store/``, decrypted.

All reads go through :func:`read_store`, whose ``reader`` reads one file. The store is
encrypted at rest; the default reader (``anonymise.pseudonymised.read_pseudonymised``)
decrypts with the KEK in the environment: the insider of item 4(b) is exactly the one who
can decrypt but holds no keyring. ``--reader MODULE:FUNCTION`` swaps in another.
"""

from __future__ import annotations

import hashlib

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from councilmatch.home import Home

Reader = Callable[[Path], pd.DataFrame]


def _plain_reader(path: Path) -> pd.DataFrame:
    from anonymise.pseudonymised import read_pseudonymised

    return read_pseudonymised(path)


#: The one place to change when the store is encrypted at rest.
DEFAULT_READER: Reader = _plain_reader


def read_store(home: Home, reader: Reader | None = None) -> pd.DataFrame:
    """Every pseudonymised file under ``home.pseudonymised`` as one frame (newest extract per feed).

    A feed's older extracts repeat its records; the attack scores each record once, on its
    newest extract (largest extract id of its council and data set).
    """
    read = reader or DEFAULT_READER
    paths = sorted(home.pseudonymised.glob("*/*/*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no pseudonymised extract under {home.pseudonymised}")
    frames = [read(p) for p in paths]
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True)
    newest = frame.groupby(["council", "dataset"])["extract_id"].transform("max")
    return frame[frame["extract_id"] == newest].reset_index(drop=True)


def token_columns(frame: pd.DataFrame) -> list[str]:
    """Integer token columns (``t_*``), found from the data, not from the contract."""
    return [c for c in frame.columns if c.startswith("t_") and pd.api.types.is_integer_dtype(frame[c])]


def bloom_columns(frame: pd.DataFrame) -> list[str]:
    """Fixed-length byte columns (``bf_*``)."""
    return [c for c in frame.columns if c.startswith("bf_") and frame[c].map(
        lambda v: isinstance(v, (bytes, bytearray)), na_action="ignore").any()]


def edit_columns(frame: pd.DataFrame) -> list[str]:
    """One-edit neighbourhood columns (``ed_*``)."""
    return [c for c in frame.columns if c.startswith("ed_")]


def edit_tokens(col: pd.Series) -> np.ndarray:
    """Each neighbourhood's bytes as one int64 (0 where empty): equal names, equal values."""
    values = col.to_numpy(dtype=object)
    return np.fromiter((int.from_bytes(hashlib.blake2b(v, digest_size=8).digest(), "big", signed=True) or 1
                        if isinstance(v, (bytes, bytearray)) and any(v) else 0 for v in values), np.int64, len(values))


def bits(col: pd.Series) -> np.ndarray:
    """A column of fixed-length bytes as an (n, nbits) bool matrix (little bit order); missing -> zeros."""
    values = col.to_numpy(dtype=object)
    width = max((len(v) for v in values if isinstance(v, (bytes, bytearray))), default=0)
    buf = b"".join(v if isinstance(v, (bytes, bytearray)) and len(v) == width else bytes(width) for v in values)
    m = np.frombuffer(buf, dtype=np.uint8).reshape(len(values), width)
    return np.unpackbits(m, axis=1, bitorder="little").astype(bool)
