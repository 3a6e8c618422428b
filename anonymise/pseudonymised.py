"""The pseudonymised store: one Parquet file per extract, written atomically and
encrypted at rest (``anonymise.at_rest``: Parquet modular encryption under the KEK).

Bloom columns are Arrow ``fixed_size_binary``; the file metadata carries the key
id the tokens were made under and the schema version, so matching can refuse
data it cannot compare (``check_key_ids``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from anonymise import at_rest
from anonymise.errors import SchemaError, UnknownKeyError
from anonymise.keys import Keyring
from anonymise.minimise import Policy, minimise
from anonymise.record_index import index_digest, index_frame, read_index, ref_keys, row_hashes, write_index
from anonymise.tokens import NON_IDENTIFYING_DTYPES
from councilmatch.contracts import ENCODED_BYTES, NON_IDENTIFYING, PSEUDONYMISED_COLUMNS, REFERENCE, TOKEN_COLUMNS
from councilmatch.fileio import atomic_write_with
from councilmatch.home import Home

SCHEMA_VERSION = "1"
META_KEY = b"councilmatch"
#: the key, in an extract's metadata, of the digest of its kept record index (anonymise.record_index)
INDEX_META = "record_index"


def _arrow_type(column: str) -> pa.DataType:
    if column in TOKEN_COLUMNS:
        return pa.int64()
    if column in ENCODED_BYTES:
        return pa.binary(ENCODED_BYTES[column])
    if column in NON_IDENTIFYING:
        return {"datetime64[ns]": pa.timestamp("ns"), "boolean": pa.bool_(), "float64": pa.float64()}[
            NON_IDENTIFYING_DTYPES[column]]
    return pa.string()


#: The Arrow schema of a pseudonymised file (without metadata).
SCHEMA = pa.schema([pa.field(c, _arrow_type(c), nullable=c not in TOKEN_COLUMNS) for c in PSEUDONYMISED_COLUMNS])


def _single(table: pa.Table, column: str) -> str:
    values = pc.unique(table.column(column)).to_pylist()
    if len(values) != 1:
        raise SchemaError(f"pseudonymised frame must hold one {column}; found {sorted(map(str, values))[:5]}")
    return str(values[0])


def validate_frame(frame: pd.DataFrame) -> None:
    """Exactly PSEUDONYMISED_COLUMNS in order, with the contracted types."""
    if tuple(frame.columns) != PSEUDONYMISED_COLUMNS:
        extra = sorted(set(frame.columns) - set(PSEUDONYMISED_COLUMNS))
        lacking = [c for c in PSEUDONYMISED_COLUMNS if c not in frame.columns]
        raise SchemaError(f"pseudonymised frame columns differ from the contract: extra {extra}, missing {lacking}")
    for c in TOKEN_COLUMNS:
        if frame[c].dtype != "int64":
            raise SchemaError(f"token column {c} has dtype {frame[c].dtype}; expected int64")


def to_table(frame: pd.DataFrame, key_id: str | None = None, extract_id: str | None = None) -> pa.Table:
    """The frame as an Arrow table of SCHEMA, with key id and schema version in its metadata.

    ``key_id``/``extract_id`` are only needed for an empty frame (no row to read them from).
    """
    validate_frame(frame)
    try:
        table = pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(f"pseudonymised frame does not fit the store schema: {exc}") from exc
    meta = {
        "schema_version": SCHEMA_VERSION,
        "key_id": _single(table, "key_id") if len(frame) else (key_id or ""),
        "extract_id": _single(table, "extract_id") if len(frame) else (extract_id or ""),
        "rows": len(frame),
    }
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def write_table(table: pa.Table, path: Path, extra_meta: dict | None = None) -> Path:
    """Atomic Parquet write (temporary file in the same folder, then rename)."""
    if extra_meta:
        meta = json.loads(table.schema.metadata[META_KEY]) | extra_meta
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    return atomic_write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_pseudonymised(home: Home, frame: pd.DataFrame, policy: Policy,
                        known: tuple[np.ndarray, pd.DataFrame] | None = None) -> Path:
    """Write one extract's pseudonymised frame, minimised by ``policy`` and encrypted, to
    ``home.pseudonymised_path(...)`` (idempotent), with its record index (``known``: see
    :func:`table_index`)."""
    validate_frame(frame)
    return write_pseudonymised_table(home, to_table(minimise(frame, home, policy)), known)


def write_pseudonymised_table(home: Home, table: pa.Table, known: tuple[np.ndarray, pd.DataFrame] | None = None
                              ) -> Path:
    """Write one extract's table (:func:`to_table`'s schema and metadata, minimised already: a
    re-sent extract's rows are mostly its last extract's stored rows, kept in Arrow) as
    :func:`write_pseudonymised` does."""
    if table.num_rows == 0:
        raise SchemaError("refusing to write an empty pseudonymised frame (no council/dataset/extract to file it under)")
    if table.schema.remove_metadata() != SCHEMA:
        raise SchemaError(f"pseudonymised table does not have the store schema: {table.schema.remove_metadata()}")
    path = home.pseudonymised_path(*(_single(table, c) for c in ("dataset", "council", "extract_id")))
    index = table_index(table, known)  # the night's record index reads it instead of hashing the rows
    meta = json.loads(table.schema.metadata[META_KEY]) | {INDEX_META: index_digest(index)}
    at_rest.write_table(path, table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), home)
    write_index(path, index, home)
    return path


def table_index(table: pa.Table, known: tuple[np.ndarray, pd.DataFrame] | None = None) -> pd.DataFrame:
    """(ref, row) of a stored extract's table (:mod:`anonymise.record_index`), its encodings hashed
    straight from Arrow. ``known``: (positions, their index rows) of rows whose index is known
    already (a re-sent extract's unchanged rows are stored as they were: their rows of the last
    extract's index); only the others are hashed."""
    refs, rows = np.zeros(len(table), np.int64), np.zeros(len(table), np.int64)
    fresh = np.ones(len(table), dtype=bool)
    if known is not None:
        fresh[known[0]] = False
        refs[known[0]], rows[known[0]] = known[1]["ref"].to_numpy(np.int64), known[1]["row"].to_numpy(np.int64)
    if fresh.any():
        part = table if fresh.all() else table.filter(pa.array(fresh))
        frame = from_table(part.drop_columns([c for c in ENCODED_BYTES if c in part.column_names]))
        refs[fresh] = ref_keys(frame["council"], frame["dataset"], frame["record_id"]).view(np.int64)
        rows[fresh] = row_hashes(frame, part).view(np.int64)
    return index_frame(refs, rows)


def kept_index(path: Path, home: Home) -> pd.DataFrame | None:
    """The record index kept beside a stored extract, if it is still the extract's own."""
    try:
        digest = file_metadata(path, home).get(INDEX_META)
    except Exception:  # noqa: BLE001 - an unreadable footer: the rows are hashed afresh
        return None
    return read_index(path, digest, home)


def file_metadata(path: Path, home: Home | None = None) -> dict:
    """The councilmatch metadata of a pseudonymised (encrypted) Parquet file ({} if absent)."""
    raw = at_rest.read_metadata(path, home).get(META_KEY)
    return json.loads(raw) if raw else {}


def from_table(table: pa.Table, arrow_encodings: bool = False, consume: bool = False) -> pd.DataFrame:
    """The frame of a stored table. ``arrow_encodings``: the encoding columns stay Arrow
    (``pd.ArrowDtype``) instead of a Python bytes object per cell: a million records' six
    encodings cost seconds to make into objects and to concatenate, and linking reads them
    straight from Arrow's buffer into matrices (``matching.comparisons.bloom_matrix``).
    ``consume``: the caller drops ``table``; each column's Arrow memory is freed once converted
    (a column a block: no second copy of the numeric columns while the frame is made)."""
    frame = table.to_pandas(types_mapper=_arrow_encoding if arrow_encodings else None,
                            **({"split_blocks": True, "self_destruct": True} if consume else {}))
    for c in NON_IDENTIFYING:
        frame[c] = frame[c].astype(NON_IDENTIFYING_DTYPES[c])
    for c in REFERENCE + ("extract_id", "key_id"):
        frame[c] = frame[c].astype(object)
    return frame


def _arrow_encoding(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    binary = pa.types.is_fixed_size_binary(arrow_type) or pa.types.is_binary(arrow_type)
    return pd.ArrowDtype(arrow_type) if binary else None


def read_pseudonymised(path: Path, home: Home | None = None, arrow_encodings: bool = False) -> pd.DataFrame:
    """A pseudonymised file as the frame ``pseudonymise`` returned (bloom columns as bytes, or
    with ``arrow_encodings`` as Arrow: see :func:`from_table`), decrypted."""
    return from_table(at_rest.read_table(path, home=home), arrow_encodings)


def check_key_ids(frames: Iterable[pd.DataFrame], keyring: Keyring) -> str:
    """The one key id all ``frames`` were made under; raise if they mix ids or use an unknown one."""
    ids: set[str] = set()
    for f in frames:
        ids.update(map(str, f["key_id"].unique()))
    unknown = sorted(i for i in ids if not keyring.has(i))
    if unknown:
        raise UnknownKeyError(
            f"pseudonymised data was made under key id(s) {unknown} that the keyring does not hold "
            f"(keyring has {list(keyring.key_ids)}): it cannot be matched with this keyring"
        )
    if len(ids) > 1:
        raise UnknownKeyError(
            f"pseudonymised data mixes key ids {sorted(ids)}: tokens made under different keys never match; "
            "re-pseudonymise the older extracts under the active key before matching"
        )
    return ids.pop() if ids else keyring.key_id
