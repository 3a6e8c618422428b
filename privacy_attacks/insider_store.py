"""What the insider reads: every pseudonymised extract under ``store/``, decrypted.

All reads go through :func:`read_store`, whose ``reader`` reads one file. The store is
encrypted at rest; the default reader decrypts with the KEK in the environment and the
at-rest data keys but **without the keyring**: the insider of item 4(b) is exactly the one
who can decrypt but holds no keyring. Columns whose key needs the keyring (the condition
fields, ``anonymise.at_rest``) are refused to it: the reader tries every column, keeps what
opens and lists what did not in ``frame.attrs["sealed"]``, so a column that stops being
sealed is attacked again. ``--reader MODULE:FUNCTION`` swaps in another reader.
"""

from __future__ import annotations

import hashlib

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from councilmatch.home import Home

Reader = Callable[[Path], pd.DataFrame]


def _without_keyring(path: Path) -> pd.DataFrame:
    from anonymise import at_rest

    try:
        table = at_rest.read_table(path, keyring=False)
        sealed: list[str] = []
    except at_rest.AtRestError:
        import pyarrow.parquet as pq

        names = pq.ParquetFile(path, decryption_properties=at_rest.decryption_properties(
            at_rest.find_home(path), keyring=False)).schema_arrow.names
        opened, sealed = {}, []
        for name in names:
            try:
                opened[name] = at_rest.read_table(path, columns=[name], keyring=False).column(name)
            except at_rest.AtRestError:
                sealed.append(name)
        table = pa.table(opened)
    frame = table.to_pandas()
    for c in ("council", "dataset", "record_id", "extract_id", "key_id"):
        if c in frame.columns:
            frame[c] = frame[c].astype(object)
    frame.attrs["sealed"] = sealed
    return frame


#: The one place to change when the store's encryption changes.
DEFAULT_READER: Reader = _without_keyring


def read_store(home: Home, reader: Reader | None = None) -> pd.DataFrame:
    """Every pseudonymised file under ``home.pseudonymised`` as one frame (newest extract per feed).

    A feed's older extracts repeat its records; the attack scores each record once, on its
    newest extract (largest extract id of its council and data set). ``attrs["sealed"]``:
    the columns some file refused to this reader.
    """
    read = reader or DEFAULT_READER
    paths = sorted(home.pseudonymised.glob("*/*/*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no pseudonymised extract under {home.pseudonymised}")
    frames = [read(p) for p in paths]
    sealed = sorted({c for f in frames for c in f.attrs.get("sealed", [])})
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True)
    newest = frame.groupby(["council", "dataset"])["extract_id"].transform("max")
    out = frame[frame["extract_id"] == newest].reset_index(drop=True)
    out.attrs["sealed"] = sealed
    return out


def token_columns(frame: pd.DataFrame) -> list[str]:
    """Integer token columns (``t_*``), found from the data, not from the contract."""
    return [c for c in frame.columns if c.startswith("t_") and pd.api.types.is_integer_dtype(frame[c])]


def bloom_columns(frame: pd.DataFrame) -> list[str]:
    """Fixed-length byte columns (``bf_*``)."""
    return [c for c in frame.columns if c.startswith("bf_") and frame[c].map(
        lambda v: isinstance(v, (bytes, bytearray)), na_action="ignore").any()]


def neighbourhood_columns(frame: pd.DataFrame) -> list[str]:
    """Neighbourhood columns: one-edit (``ed_*``), nickname (``nk_*``) and forename-word (``nf_*``)."""
    return [c for c in frame.columns if c.startswith(("ed_", "nk_", "nf_"))]


def neighbourhood_tokens(col: pd.Series) -> np.ndarray:
    """Each neighbourhood's bytes as one int64 (0 where empty): equal names, equal values."""
    values = col.to_numpy(dtype=object)
    return np.fromiter((int.from_bytes(hashlib.blake2b(v, digest_size=8).digest(), "big", signed=True) or 1
                        if isinstance(v, (bytes, bytearray)) and any(v) else 0 for v in values), np.int64, len(values))


def byte_matrix(col: pd.Series) -> np.ndarray:
    """A column of fixed-length bytes as an (n, nbytes) uint8 matrix; missing -> zeros."""
    values = col.to_numpy(dtype=object)
    width = max((len(v) for v in values if isinstance(v, (bytes, bytearray))), default=0)
    buf = b"".join(v if isinstance(v, (bytes, bytearray)) and len(v) == width else bytes(width) for v in values)
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(values), width)


def bits(col: pd.Series) -> np.ndarray:
    """A column of fixed-length bytes as an (n, nbits) bool matrix (little bit order); missing -> zeros."""
    return np.unpackbits(byte_matrix(col), axis=1, bitorder="little").astype(bool)
