"""Records across extracts: a reference key and a content hash per stored row, kept beside each extract.

A record is known across extracts by its reference (council, data set, record id) and a hash
of its pseudonymised row (every column but the extract id): an incremental night links only
the records whose pair of hashes is new, and retracts the flags of those that are gone
(``matching.incremental``). Hashing a million stored rows takes seconds, every night, though
most extracts did not change; so the hashes of an extract are written when the extract is
(``<extract>.parquet.index``, encrypted like it) and read back instead. An index whose extract
was rewritten since (its metadata names another index) or that another format wrote is not
used: the rows are hashed afresh, as they always could be.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.core.util.hashing import combine_hash_arrays  # pandas' own row combination (see row_hashes)

from anonymise import at_rest
from councilmatch.home import Home

#: bump when the hashes or the file change: an index of another format is hashed afresh
INDEX_FORMAT = 1
_META = b"councilmatch_record_index"
SUFFIX = ".index"


def ref_keys(council: pd.Series, dataset: pd.Series, record_id: pd.Series) -> np.ndarray:
    """uint64 key of each reference (council, data set, record id)."""
    frame = pd.DataFrame({"c": council.astype(str).to_numpy(dtype=object),
                          "d": dataset.astype(str).to_numpy(dtype=object),
                          "r": record_id.astype(str).to_numpy(dtype=object)})
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def arrow_hashes(values: pa.Array | pa.ChunkedArray, key: str | None = None) -> np.ndarray:
    """``pd.util.hash_array`` of an Arrow string or binary column as Python objects (``key``:
    pandas' default when None), without making an object per row: pandas hashes a column's
    distinct values and maps rows to them, missing values to the largest uint64; so does this,
    with Arrow finding the distinct values."""
    encoded = pc.dictionary_encode(values)
    encoded = encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    hashed = (pd.util.hash_array(distinct, categorize=False) if key is None
              else pd.util.hash_array(distinct, hash_key=key, categorize=False))
    codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    out = hashed[codes] if len(hashed) else np.zeros(len(values), dtype=np.uint64)
    out[values.is_null().to_numpy(zero_copy_only=False)] = np.iinfo(np.uint64).max
    return out


def row_hashes(frame: pd.DataFrame, table: pa.Table | None = None) -> np.ndarray:
    """Content hash of each pseudonymised row: every column but the extract id.

    ``table``: the Arrow table ``frame`` was read from, holding columns ``frame`` left out (the
    encodings, never made into Python bytes); they are hashed as pandas hashes them as
    bytes, and every column in the table's order, so the hash is the same either way.
    """
    cols = [c for c in (frame.columns if table is None else table.column_names) if c != "extract_id"]

    def hashed(c: str) -> np.ndarray:
        if c not in frame.columns:
            return arrow_hashes(table.column(c))
        if isinstance(frame[c].dtype, pd.ArrowDtype):  # encodings kept in Arrow (pseudonymised.from_table)
            return arrow_hashes(frame[c].array._pa_array)  # noqa: SLF001
        return pd.util.hash_pandas_object(frame[c], index=False).to_numpy(dtype=np.uint64)

    return combine_hash_arrays((hashed(c) for c in cols), len(cols))  # as hash_pandas_object combines a frame's


def index_frame(refs: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
    """The index's layout: (ref, row) as int64 (Parquet has no uint64 need)."""
    return pd.DataFrame({"ref": np.asarray(refs).view(np.int64), "row": np.asarray(rows).view(np.int64)})


def index_path(extract: Path) -> Path:
    return extract.with_name(extract.name + SUFFIX)


def index_digest(index: pd.DataFrame) -> str:
    """What ties an index to its extract: written into the extract's own metadata too, so an
    extract rewritten since (by any writer) no longer matches its old index."""
    h = hashlib.sha256(f"{INDEX_FORMAT}:{len(index)}:".encode())
    h.update(np.ascontiguousarray(index["ref"].to_numpy(np.int64)).tobytes())
    h.update(np.ascontiguousarray(index["row"].to_numpy(np.int64)).tobytes())
    return h.hexdigest()[:32]


def write_index(extract: Path, index: pd.DataFrame, home: Home) -> None:
    """Keep ``index`` (the rows of ``extract``, in order) beside the extract."""
    table = pa.Table.from_pandas(index[["ref", "row"]], preserve_index=False)
    table = table.replace_schema_metadata({_META: json.dumps({"digest": index_digest(index)}).encode()})
    at_rest.write_table(index_path(extract), table, home)


def read_index(extract: Path, digest: str | None, home: Home) -> pd.DataFrame | None:
    """The kept index of ``extract`` if it is the one ``digest`` (from the extract's metadata)
    names, else None: there is none, the extract was rewritten since, or another format wrote it."""
    path = index_path(extract)
    if not digest or not path.exists():
        return None
    try:
        table = at_rest.read_table(path, home=home)
        kept = json.loads((table.schema.metadata or {}).get(_META, b"{}")).get("digest")
    except Exception:  # noqa: BLE001 - unreadable or foreign: the rows are hashed afresh
        return None
    if kept != digest or table.column_names != ["ref", "row"]:
        return None
    index = table.to_pandas()
    return index if index_digest(index) == digest else None


__all__ = ["INDEX_FORMAT", "arrow_hashes", "index_digest", "index_frame", "index_path", "read_index", "ref_keys",
           "row_hashes", "write_index"]
