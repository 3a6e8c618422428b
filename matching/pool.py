"""Reading the pool: the newest pseudonymised extracts, whole or only the records a task needs.

    read_inputs(home, files)                         -> {dataset: frame}, every record
    kept_record_index(home, files)                   -> the record index, from each extract's kept index
    shard_inputs(home, files, mt, shard, shards)     -> the records a full-link shard's pairs can hold
    neighbourhood(home, files, mt, left, right)      -> changed records and those sharing a blocking key

Every reader refuses extracts made under several key ids, or under one this home's keyring
lacks (tokens of different keys never match), and joins a data set's extracts in file order,
so a record's row position is the same whichever reader made the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from anonymise import at_rest
from anonymise.keys import load_keyring
from anonymise.pseudonymised import from_table, kept_index
from councilmatch.contracts import ENCODED_BYTES
from councilmatch.home import Home
from councilmatch.memory import release_unused
from matching import incremental as inc
from matching.blocking import blocking_key, shard_of
from matching.comparisons import Side
from matching.matchtype import MatchType


class InputError(RuntimeError):
    """The pseudonymised store cannot be linked as it is (e.g. mixed key ids)."""


def known_key_ids(home: Home) -> tuple[str, ...] | None:
    """Key ids of the home's keyring, or None if the keyring cannot be opened here."""
    try:

        return tuple(load_keyring(home).key_ids)
    except Exception:  # noqa: BLE001 - no keyring/KEK here: only the mixed-key check applies
        return None


def read_inputs(home: Home, files: list[Path]) -> dict[str, pd.DataFrame]:
    """Read extracts into one frame per data set; refuse mixed or unknown key ids.

    A data set's files are joined as Arrow tables (no copy) and made one frame, each column's
    Arrow memory freed as it is converted: joining a frame per file copied every numeric and
    reference column of the pool once more."""
    out: dict[str, pd.DataFrame] = {}
    key_files: dict[str, list[str]] = {}
    for ds, paths in sorted(by_dataset(files).items()):
        parts = []
        for path in paths:
            parts.append(at_rest.read_table(path, home=home).replace_schema_metadata(None))
            note_key_ids(home, key_files, path, key_ids_of(parts[-1]))
        out[ds] = joined(parts)
        del parts
    check_key_ids(home, key_files)
    release_unused()  # the decrypted files' Arrow buffers
    return out


def joined(parts: list[pa.Table]) -> pd.DataFrame:
    """One frame of a data set's tables (columns of one name made one type, as pandas would);
    tables whose columns cannot be made one Arrow type are joined as frames."""
    try:
        table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.concat([from_table(t, arrow_encodings=True) for t in parts], ignore_index=True)
    parts.clear()  # the caller's list: the joined table is the only reference left
    for i, field in enumerate(table.schema):
        if field.name in ENCODED_BYTES and table.column(i).num_chunks > 1:
            # one buffer per encoding column: a take from a chunked column joins its chunks
            # first, a copy of the whole column for every subset linking takes
            table = table.set_column(i, field, pa.chunked_array([table.column(i).combine_chunks()]))
    return from_table(table, arrow_encodings=True, consume=True)


def key_ids_of(table: pa.Table) -> list[str]:
    """The distinct key ids of a stored table; "(none)" for a file without them."""
    if "key_id" not in table.column_names:
        return ["(none)"]
    return [str(k) for k in table.column("key_id").drop_null().unique().to_pylist()]


def note_key_ids(home: Home, key_files: dict[str, list[str]], path: Path, key_ids: list[str]) -> None:
    for kid in key_ids:
        key_files.setdefault(kid, []).append(str(path.relative_to(home.root)) if path.is_relative_to(home.root) else str(path))


def check_key_ids(home: Home, key_files: dict[str, list[str]]) -> None:
    """Refuse extracts made under several key ids, or under one this home's keyring lacks."""
    if len(key_files) > 1:
        detail = "; ".join(f"{k}: {', '.join(v[:3])}{' …' if len(v) > 3 else ''}" for k, v in sorted(key_files.items()))
        raise InputError(
            f"pseudonymised extracts were made under different keys ({detail}); tokens of different "
            "keys never match. Re-pseudonymise the older extracts under the active key "
            "(re-ingest them) before linking.")
    known = known_key_ids(home)
    if known is not None:
        unknown = sorted(set(key_files) - set(known))
        if unknown:
            raise InputError(f"pseudonymised extracts use key id(s) {unknown} that are not in this home's "
                             f"keyring (has {list(known)}): {key_files[unknown[0]][:3]}")


#: rows decrypted and converted at a time when a shard reads its records
READ_BATCH = 65_536


def records_in(home: Home, files: list[Path]) -> int:
    """Rows of the files, from their (encrypted) Parquet footers: no row is read."""
    import pyarrow.parquet as pq

    props = at_rest.decryption_properties(home) if at_rest._ENCRYPT else None
    return sum(pq.ParquetFile(p, decryption_properties=props).metadata.num_rows for p in files)


def blocking_columns(mt: MatchType) -> list[str]:
    """The columns a match type's blocking rules read, each once."""
    return list(dict.fromkeys(c for rule in mt.linkage.blocking for c in rule))


#: picks rows of a batch: (data set, the batch's blocking columns as a Side, the batch's first
#: row in the data set) -> a bool per row of the batch
Pick = Callable[[str, Side, int], np.ndarray]


def picked(home: Home, files: list[Path], datasets: set[str], columns: list[str],
           pick: Pick) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    """Each data set's rows that ``pick`` keeps (in the data set's order) and their positions in it.

    Each extract is read in batches of ``READ_BATCH`` rows (decrypted by pyarrow); ``pick`` sees
    a batch's ``columns`` and only the rows it keeps become pandas rows, so the reader's memory
    follows the rows kept, not the pool."""
    out: dict[str, pd.DataFrame] = {}
    positions: dict[str, np.ndarray] = {}
    key_files: dict[str, list[str]] = {}
    for ds in sorted(datasets):
        parts, kept, start = [], [], 0
        for path in by_dataset(files).get(ds, []):
            for table in at_rest.iter_tables(path, READ_BATCH, home):
                side = Side(table.select([c for c in columns if c in table.column_names]).to_pandas())
                rows = np.flatnonzero(pick(ds, side, start))
                parts.append(table.take(rows).replace_schema_metadata(None))
                note_key_ids(home, key_files, path, key_ids_of(parts[-1]))
                kept.append(rows + start)
                start += table.num_rows
        out[ds] = joined(parts) if parts else pd.DataFrame()
        positions[ds] = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    check_key_ids(home, key_files)
    release_unused()  # the decrypted batches' Arrow buffers
    return out, positions


def shard_inputs(home: Home, files: list[Path], mt: MatchType, shard: int,
                 shards: int) -> dict[str, pd.DataFrame]:
    """The match type's data sets, only the records that can be in this shard's candidate pairs.

    A pair belongs to the shard of the blocking key of the first rule that finds it
    (:mod:`matching.blocking`), so only records with some rule's key in this shard can be in
    one: about 1 - (1 - 1/shards)^rules of them. So a shard task's memory follows its share of
    the records, not the pool: more shards, less memory each. A match type judging households
    (the single person discount) judges each left record among all its right candidates, in
    whatever shard their pair falls: every right record sharing a key with one of the shard's
    left records is read too. Rows keep the data set's order, so the pairs, scores and flags
    are those of a whole-data-set read (a test compares them).
    """
    rules, columns = mt.linkage.blocking, blocking_columns(mt)

    def in_shard(side: Side, start: int = 0) -> np.ndarray:
        keep = np.zeros(side.n, dtype=bool)
        for rule in rules:
            key, present = blocking_key(side, rule)
            keep |= present & (shard_of(key, shards) == shard)
        return keep

    if mt.left_person_missing is None or mt.left == mt.right:
        return picked(home, files, {mt.left, mt.right}, columns, lambda ds, side, start: in_shard(side))[0]
    left_rows, left_keys = _found(home, by_dataset(files).get(mt.left, []), in_shard, columns, rules)
    none = np.zeros(0, dtype=np.int64)

    def pick(ds: str, side: Side, start: int) -> np.ndarray:
        if ds == mt.left:
            return _kept(side, start, left_rows, None, rules)
        return _kept(side, start, none, left_keys, rules)

    return picked(home, files, {mt.left, mt.right}, columns, pick)[0]


def neighbourhood(home: Home, files: list[Path], mt: MatchType, left_rows: np.ndarray,
                  right_rows: np.ndarray) -> tuple[dict[str, pd.DataFrame], np.ndarray, np.ndarray]:
    """The records every candidate pair touching the given rows can hold, and those rows'
    positions among them (left, right).

    ``left_rows`` / ``right_rows``: sorted row positions in the match type's data sets (an
    incremental night's changed records). A pair touching one of them pairs it with a record
    that shares a blocking key with it, on the other side (on the same, deduplicating): so
    those records, found by their keys batch by batch, and the rows themselves are all a
    shard needs, not the data sets. A match type judging households (the single person
    discount) judges each left record of a pair among all its right candidates: those are
    read too. Rows keep the data set's order, so the pairs found among them are the pairs
    found in the whole data sets, in the same order (a test compares the flags)."""
    rules, columns, by_ds = mt.linkage.blocking, blocking_columns(mt), by_dataset(files)
    left_rows, right_rows = np.asarray(left_rows, np.int64), np.asarray(right_rows, np.int64)
    own = {mt.left: left_rows, mt.right: right_rows} if mt.left != mt.right else \
        {mt.left: np.union1d(left_rows, right_rows)}
    def keys_of(ds: str, among: list[np.ndarray] | None) -> tuple[np.ndarray, list[np.ndarray]]:
        return _found(home, by_ds.get(ds, []), partial(_kept, own=own[ds], among=among, rules=rules), columns, rules)

    if mt.left_person_missing is not None and mt.left != mt.right:
        # every left record a pair can hold (a given one, or sharing a key with a given right
        # one), and then every right record sharing a key with one of them
        keys = {mt.right: keys_of(mt.right, None)[1]}
        own[mt.left], keys[mt.left] = keys_of(mt.left, keys[mt.right])
    else:
        keys = {ds: keys_of(ds, None)[1] for ds in own}
    # a record is needed on one side if it shares a key with a given row of the other (of its own
    # data set when both sides read one)
    partner_keys = {ds: keys[mt.right if ds == mt.left else mt.left] for ds in own}

    def near(ds: str, side: Side, start: int) -> np.ndarray:
        return _kept(side, start, own[ds], partner_keys[ds], rules)

    data, positions = picked(home, files, set(own), columns, near)
    return (data, np.searchsorted(positions[mt.left], left_rows),
            np.searchsorted(positions[mt.right], right_rows))


def _kept(side: Side, start: int, own: np.ndarray, among: list[np.ndarray] | None,
          rules: list[list[str]]) -> np.ndarray:
    """Rows of a batch (first row ``start`` of its data set) among ``own`` (sorted positions) or
    sharing a key of a rule with ``among`` (that rule's distinct keys)."""
    keep = np.zeros(side.n, dtype=bool)
    lo, hi = np.searchsorted(own, [start, start + side.n])
    keep[own[lo:hi] - start] = True
    for rule, keys in zip(rules, among or []):
        if len(keys):
            key, present = blocking_key(side, rule)
            keep |= present & inc.member(key.view(np.int64), keys)
    return keep


def _found(home: Home, files: list[Path], keep: Callable[[Side, int], np.ndarray], columns: list[str],
           rules: list[list[str]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The positions of a data set's rows that ``keep`` (a batch's blocking columns as a Side, its
    first row) keeps, and per rule their distinct keys; only the blocking columns are read."""
    positions, found, start = [], [[] for _ in rules], 0
    for path in files:
        for table in at_rest.iter_tables(path, READ_BATCH, home, columns=columns):
            side = Side(table.to_pandas())
            rows = np.flatnonzero(keep(side, start))
            if len(rows):
                positions.append(rows + start)
                for i, rule in enumerate(rules):
                    key, present = blocking_key(side, rule)
                    found[i].append(np.unique(key[rows][present[rows]].view(np.int64)))
            start += table.num_rows
    return (np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64),
            [np.unique(np.concatenate(k)) if k else np.zeros(0, dtype=np.int64) for k in found])


def rows_of(home: Home, files: list[Path], rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``columns`` of a data set's rows ``rows`` (sorted positions; ``files``: its extracts in
    order), reading only those columns."""
    parts, start = [], 0
    for path in files:
        for table in at_rest.iter_tables(path, READ_BATCH, home, columns=columns):
            lo, hi = np.searchsorted(rows, [start, start + table.num_rows])
            if hi > lo:
                parts.append(table.take(rows[lo:hi] - start))
            start += table.num_rows
    return pa.concat_tables(parts, promote_options="permissive").to_pandas() if parts else pd.DataFrame()


def columns_of(home: Home, files: list[Path], columns: list[str]) -> pd.DataFrame:
    """``columns`` of every row of a data set (``files``: its extracts in order), reading only those."""
    parts = [table for path in files for table in at_rest.iter_tables(path, READ_BATCH, home, columns=columns)]
    return pa.concat_tables(parts, promote_options="permissive").to_pandas() if parts else pd.DataFrame()


@dataclass
class KeptIndex:
    """The pool's record index (:func:`matching.incremental.record_index`), read without its records."""

    index: pd.DataFrame
    #: each data set's reference keys (int64), in the order of its rows
    refs: dict[str, np.ndarray]
    key_id: str


def kept_record_index(home: Home, files: list[Path]) -> KeptIndex:
    """The record index from the indexes kept beside the extracts (an extract without its own is
    read and hashed alone), and the key id from the key id columns alone: an incremental night
    finds its changed records without reading the pool (16 bytes a record)."""
    parts: list[pd.DataFrame] = []
    refs: dict[str, np.ndarray] = {}
    key_files: dict[str, list[str]] = {}
    for ds, paths in by_dataset(files).items():
        pieces = []
        for path in paths:
            piece = kept_index(path, home)
            if piece is None:
                table = at_rest.read_table(path, home=home).replace_schema_metadata(None)
                plain = table.drop_columns([c for c in ENCODED_BYTES if c in table.column_names])
                piece = inc.index_of(from_table(plain), table)  # its row hash covers the encodings too
            pieces.append(piece)
            for table in at_rest.iter_tables(path, READ_BATCH, home, columns=["key_id"]):
                note_key_ids(home, key_files, path, key_ids_of(table) if table.num_columns else ["(none)"])
        parts += pieces
        refs[ds] = np.concatenate([p["ref"].to_numpy(np.int64) for p in pieces])
    check_key_ids(home, key_files)
    index = (pd.concat(parts, ignore_index=True) if parts
             else pd.DataFrame({"ref": pd.Series(dtype="int64"), "row": pd.Series(dtype="int64")}))
    return KeptIndex(index, refs, next((k for k in key_files if k != "(none)"), ""))


def by_dataset(files: list[Path]) -> dict[str, list[Path]]:
    """Each data set's extracts, in the order :func:`read_inputs` joins their rows."""
    out: dict[str, list[Path]] = {}
    for p in files:
        out.setdefault(p.parent.parent.name, []).append(p)
    return out
