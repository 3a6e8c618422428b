"""Re-sent extracts: pseudonymise only the rows that changed since the feed's last extract.

Councils re-send whole extracts every night and a few per cent of the rows change, yet
pseudonymising is most of a feed's cost (several keyed hashes and Bloom filters per
record). Each accepted row gets a keyed digest of all its standardised fields (the record
id included); the digests of a feed's last extract are kept beside the store, encrypted
like it (``store/row_digests/<council>/<dataset>.parquet``). The next extract's rows whose digest is
among them take their pseudonymised row from the last extract's stored file; the others
are pseudonymised afresh. The result equals pseudonymising everything
(``tests/anonymise/test_reuse.py``), because a row's pseudonyms depend only on its own
fields, the key and the minimisation policy, and reuse requires the same key id and policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.core.util.hashing import combine_hash_arrays  # pandas' own row combination (see row_digests)

from councilmatch.home import Home
from councilmatch.safepath import path_inside
from ingest.extract import AcceptedRows, PreviousRows, RowMemory

from anonymise import at_rest
from anonymise.keys import Keyring
from anonymise.minimise import Policy, minimise
from anonymise.pseudonymised import META_KEY, from_table, kept_index, to_table
from anonymise.record_index import arrow_hashes
from anonymise.tokens import ENCODING, pseudonymise
from anonymise.vault import VAULT_COLUMNS, Vault, last_then_fresh, vault_table

ROW_DIGEST_PURPOSE = "row_digest"
RAW_DIGEST_PURPOSE = "raw_row_digest"
_META = b"councilmatch_row_digests"


def row_digests(canonical: pd.DataFrame, keyring: Keyring) -> np.ndarray:
    """uint64 per row: a keyed hash of every standardised field (columns in name order).

    pandas' row hash (SipHash, keyed with 64 bits of the keyring's subkey for text columns), as
    ``hash_pandas_object`` gives it once every non-numeric column is cast to Python objects; a
    dictionary of guessed rows is useless without the key. Used only to tell a re-sent row from
    a changed one, so the value must never change: :func:`_column_hashes` reaches the same
    numbers without making a Python object per cell (a test compares them).
    """
    key = keyring.subkey(ROW_DIGEST_PURPOSE)[:8].hex()
    frame = canonical[sorted(canonical.columns)].reset_index(drop=True)
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=np.uint64)
    return combine_hash_arrays((_column_hashes(frame[c], key) for c in frame.columns), frame.shape[1])


def _column_hashes(col: pd.Series, key: str) -> np.ndarray:
    """One column's share of :func:`row_digests`. Cast to objects, pandas hashes the column's
    distinct values and maps rows to them, missing values to the largest uint64; Arrow strings
    and nanosecond dates go that way straight from their arrays."""
    if isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow":
        return arrow_hashes(col.array._pa_array, key)  # noqa: SLF001
    if col.dtype == np.dtype("datetime64[ns]"):
        out = pd.util.hash_array(col.to_numpy(), hash_key=key, categorize=False)
        out[col.isna().to_numpy()] = np.iinfo(np.uint64).max
        return out
    if not pd.api.types.is_numeric_dtype(col):
        col = col.astype(object)
    return pd.util.hash_pandas_object(col, index=False, hash_key=key).to_numpy(np.uint64)


def policy_tag(policy: Policy) -> str:
    return hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()[:16]


def digests_path(home: Home, feed_id: str) -> Path:
    """store/row_digests/<council>/<dataset>.parquet"""
    council, _, dataset = feed_id.partition("/")
    return path_inside(home.store / "row_digests", council, f"{dataset}.parquet", what="row digests")


@dataclass
class Previous:
    """The feed's last extract as stored (minimised), with the digest of each of its rows."""

    extract_id: str
    digests: np.ndarray
    #: its stored rows, as Arrow: a re-sent extract's unchanged rows (nearly all) are taken from
    #: here into the new extract's table without a pandas row (a Python bytes object per encoding)
    stored: pa.Table
    #: what ingest needs to skip the rows again (None for digests kept before raw-row digests)
    table: pa.Table | None = None
    today: str | None = None
    #: its record index as kept beside it (anonymise.record_index), if it still matches
    index: pd.DataFrame | None = None


def load_previous(home: Home, feed_id: str, extract_id: str | None, pseudonymised_path: str | None,
                  keyring: Keyring, policy: Policy) -> Previous | None:
    """The last extract, if its rows can be reused: same extract, key id, encoding and minimisation policy."""
    path = digests_path(home, feed_id)
    if not (extract_id and pseudonymised_path and path.exists() and Path(pseudonymised_path).exists()):
        return None
    meta = json.loads(at_rest.read_metadata(path, home).get(_META, b"{}"))
    if (meta.get("extract_id"), meta.get("key_id"), meta.get("encoding"), meta.get("policy")) != (
            extract_id, keyring.key_id, ENCODING, policy_tag(policy)):
        return None
    table = at_rest.read_table(path, home=home)
    digests = table.column("digest").to_numpy().astype(np.uint64)
    stored = at_rest.read_table(Path(pseudonymised_path), home=home)
    if stored.num_rows != len(digests):
        return None
    has_raw = {"raw", "cleared", "reasons", "placeholders"} <= set(table.column_names) and meta.get("today")
    return Previous(extract_id, digests, stored, table if has_raw else None, meta.get("today"),
                    kept_index(Path(pseudonymised_path), home))


def _stored_rows(previous: Previous, rows: np.ndarray, extract_id: str,
                 fresh: pa.Table | None = None) -> pa.Table:
    """Rows ``rows`` of the last stored extract, filed under ``extract_id`` (nothing else about a
    stored row depends on its extract), without the file's metadata. ``fresh``: rows of the
    same schema that ``rows`` may also name, numbered after the stored ones (one take of both,
    in Arrow, puts a re-sent extract's rows in file order)."""
    tables = [previous.stored.replace_schema_metadata(None)]
    if fresh is not None:
        tables.append(fresh.replace_schema_metadata(None))
    kept = (pa.concat_tables(tables) if len(tables) > 1 else tables[0]).take(pa.array(rows, pa.int64()))
    column = kept.schema.get_field_index("extract_id")
    return kept.set_column(column, kept.schema.field(column),
                           pa.array(np.full(len(rows), extract_id, dtype=object), pa.string()))


def row_memory(home: Home, council: str, dataset: str, keyring: Keyring, previous: Previous | None) -> RowMemory:
    """What ingest needs to skip the rows of a re-sent extract that the feed's last extract
    accepted unchanged (``ingest.extract.RowMemory``): their raw-row digests and, for the data-quality
    profile and the placeholder rules, their vaulted clear values (read from the feed's own last vault
    entry by the hub process, never shown to anyone, so not a re-identification)."""
    key = keyring.subkey(RAW_DIGEST_PURPOSE)
    if previous is None or previous.table is None:
        return RowMemory(key)
    vault = Vault(home, keyring)
    if not vault.blob_path(council, dataset, previous.extract_id).exists():
        return RowMemory(key)
    clear = vault.read_extract(council, dataset, previous.extract_id)
    if len(clear) != len(previous.digests):
        return RowMemory(key)
    t = previous.table
    return RowMemory(key, PreviousRows(
        digests=t.column("raw").to_numpy().astype(np.uint64),
        cleared=t.column("cleared").to_numpy().astype(np.uint32),
        reasons=t.column("reasons").to_numpy(zero_copy_only=False).astype(object),
        placeholders=t.column("placeholders").to_numpy().astype(np.uint16),
        vault=clear, today=str(previous.today)))


def with_skipped_rows(fresh: pd.DataFrame, fresh_digests: np.ndarray, rows: AcceptedRows,
                      previous: Previous | None, extract_id: str, key_id: str) -> tuple[pa.Table, np.ndarray]:
    """The extract's whole pseudonymised table (the store's schema and metadata) and row digests:
    the fresh rows (pseudonymised, in file order) and the rows ingest skipped, taken from the
    feed's last stored extract as Arrow rows. Both are minimised already (the fresh rows by
    :func:`pseudonymise_reusing`, the stored ones under the same policy, which reuse requires)."""
    origin = rows.reused_from
    skipped = origin >= 0
    table = to_table(fresh, key_id, extract_id)
    if not skipped.any():
        return table, fresh_digests
    if previous is None:
        raise RuntimeError("rows were skipped without a previous extract to take them from")
    meta = json.loads(table.schema.metadata[META_KEY]) | {"rows": len(origin), "extract_id": extract_id}
    merged = _stored_rows(previous, last_then_fresh(origin, previous.stored.num_rows), extract_id, table)
    digests = np.zeros(len(origin), dtype=np.uint64)
    digests[~skipped] = fresh_digests
    digests[skipped] = previous.digests[origin[skipped]]
    return merged.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), digests


def skipped_index(rows: AcceptedRows, previous: Previous | None) -> tuple[np.ndarray, pd.DataFrame] | None:
    """(positions, index rows) of the rows ingest skipped: each is stored as it was in the feed's
    last extract (the extract id aside), so its record index rows are that extract's."""
    origin = rows.reused_from
    skipped = origin >= 0
    if previous is None or previous.index is None or not skipped.any():
        return None
    return np.flatnonzero(skipped), previous.index.iloc[origin[skipped]]


def vault_rows(fresh: pd.DataFrame, rows: AcceptedRows, memory: RowMemory, vault: Vault, council: str,
               dataset: str, previous: Previous | None) -> tuple[pd.DataFrame | pa.Table, tuple[np.ndarray, pa.Table] | None]:
    """Every accepted row's clear values for the extract's vault entry: the fresh rows' (optional values
    as sent), the skipped rows' as the feed's last vault entry holds them, put in row order in Arrow
    (:func:`anonymise.vault.vault_table`); and the skipped rows' index rows (``Vault.store``'s
    ``carried``), so their keyed hashes are not made again."""
    origin = rows.reused_from
    skipped = origin >= 0
    if not skipped.any():
        return fresh, None
    if memory.previous is None or previous is None:
        raise RuntimeError("rows were skipped without a previous vault entry to take them from")
    old = memory.previous.vault
    last = pa.table({c: old[c].array._pa_array.cast(pa.string()) if c in old.columns  # noqa: SLF001
                     else pa.nulls(len(old), pa.string()) for c in VAULT_COLUMNS})
    table = pa.concat_tables([last, vault_table(fresh)]).take(pa.array(last_then_fresh(origin, len(old))))
    index = vault.read_index(council, dataset, previous.extract_id)
    if index is None or index.num_rows != len(old):
        return table, None
    return table, (np.flatnonzero(skipped), index.take(pa.array(origin[skipped])))


def pseudonymise_reusing(canonical: pd.DataFrame, keyring: Keyring, extract_id: str, home: Home,
                         previous: Previous | None, policy: Policy) -> tuple[pd.DataFrame, np.ndarray, int]:
    """The extract's frame minimised by ``policy`` (the match types', see
    ``matching.minimisation``), its row digests and how many rows were reused.

    Fresh rows are minimised here so they can sit beside the stored (already minimised) ones:
    :func:`with_skipped_rows` joins the two and the store writes the table as it is."""
    canonical = canonical.reset_index(drop=True)
    digests = row_digests(canonical, keyring)
    reused = np.zeros(len(canonical), dtype=bool)
    source = np.zeros(len(canonical), dtype=np.int64)
    if previous is not None and len(previous.digests):
        order = np.argsort(previous.digests, kind="stable")
        ranked = previous.digests[order]
        pos = np.minimum(np.searchsorted(ranked, digests), len(ranked) - 1)
        reused = ranked[pos] == digests
        source = order[pos]
    parts = []
    if (~reused).any():
        fresh = pseudonymise(canonical[~reused], keyring, extract_id)
        parts.append(minimise(fresh, home, policy).set_axis(np.flatnonzero(~reused)))
    if reused.any():
        kept = from_table(_stored_rows(previous, source[reused], extract_id))
        parts.append(kept.set_axis(np.flatnonzero(reused)))
    frame = pd.concat(parts).sort_index() if parts else pseudonymise(canonical, keyring, extract_id)
    return frame, digests, int(reused.sum())


def save_digests(home: Home, feed_id: str, extract_id: str, keyring: Keyring, digests: np.ndarray,
                 policy: Policy, rows: AcceptedRows | None = None) -> Path:
    """Keep this extract's row digests for the feed's next extract (encrypted, atomic); with ``rows``
    (from ingest) also its raw-row digests, so the next extract's unchanged rows are not validated."""
    columns = {"digest": pa.array(digests.astype(np.uint64))}
    meta = {"extract_id": extract_id, "key_id": keyring.key_id, "encoding": ENCODING, "policy": policy_tag(policy)}
    if rows is not None:
        columns |= {"raw": pa.array(rows.digests.astype(np.uint64)),
                    "cleared": pa.array(rows.cleared.astype(np.uint32)),
                    "reasons": pa.array(rows.reasons, type=pa.string()),
                    "placeholders": pa.array(rows.placeholders.astype(np.uint16))}
        meta["today"] = dt.date.today().isoformat()
    table = pa.table(columns)
    table = table.replace_schema_metadata({_META: json.dumps(meta).encode()})
    return at_rest.write_table(digests_path(home, feed_id), table, home)
