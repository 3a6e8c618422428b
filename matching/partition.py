"""Each link shard's records: found by a scan, or written once by the plan as the shard's own file.

A full link of a large data set is split into shard tasks. A pair belongs to the shard of the
blocking key of the first rule that finds it (:mod:`matching.blocking`), so a shard needs only
the records with some rule's key in it: about ``1 - (1 - 1/shards)^rules`` of them.

Two ways to give a shard task those records, with the same rows in the same order:

* :func:`scan_shard` reads every extract of the match type in batches and keeps the shard's
  rows. Memory follows the shard's share, but every shard task decrypts the whole data set:
  ``shards × N`` reads, most of a shard's time at ten million records.
* :func:`write_partitions` (the plan, once per full night) reads each extract once and writes
  every shard's rows to its own encrypted file; :func:`read_partition` (the shard task) reads
  only that file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from anonymise import at_rest
from anonymise.pseudonymised import from_table
from councilmatch.home import Home
from matching.blocking import blocking_key, shard_of
from matching.comparisons import Side
from matching.matchtype import MatchType

#: rows decrypted and converted at a time when the records of a shard are picked out
READ_BATCH = 65_536
#: a shard's rows are written once this many have gathered (bounds the plan's buffers)
WRITE_BATCH = 8_192
#: called with (extract path, the rows read from it) so the caller can check key ids
Note = Callable[[Path, pd.DataFrame], None]


def shard_rows(side: Side, rules: list[list[str]], shards: int) -> list[np.ndarray]:
    """Per shard, the sorted row positions of ``side`` with some rule's blocking key in it."""
    n = side.n
    codes = []
    for rule in rules:
        key, present = blocking_key(side, rule)
        rows = np.flatnonzero(present)
        codes.append(shard_of(key[rows], shards) * n + rows)
    flat = np.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)
    shard, rows = np.divmod(flat, max(n, 1))
    bounds = np.searchsorted(shard, np.arange(shards + 1))
    return [rows[bounds[s]:bounds[s + 1]] for s in range(shards)]


def _rule_columns(mt: MatchType) -> list[str]:
    return list(dict.fromkeys(c for rule in mt.linkage.blocking for c in rule))


def _batches(home: Home, files: list[Path], dataset: str) -> Iterator[tuple[Path, pa.Table]]:
    """The data set's extracts (in ``files`` order), decrypted ``READ_BATCH`` rows at a time."""
    props = at_rest.decryption_properties(home) if at_rest._ENCRYPT else None
    for path in (p for p in files if p.parent.parent.name == dataset):
        at_rest._check_encrypted(path)
        for batch in pq.ParquetFile(path, decryption_properties=props).iter_batches(batch_size=READ_BATCH):
            yield path, pa.Table.from_batches([batch])


def _side(table: pa.Table, columns: list[str]) -> Side:
    return Side(table.select([c for c in columns if c in table.column_names]).to_pandas())


def scan_shard(home: Home, files: list[Path], mt: MatchType, shard: int, shards: int,
               note: Note) -> dict[str, pd.DataFrame]:
    """The shard's records of each of the match type's data sets, picked out of a full scan."""
    columns = _rule_columns(mt)
    out: dict[str, pd.DataFrame] = {}
    for ds in sorted({mt.left, mt.right}):
        parts = []
        for path, table in _batches(home, files, ds):
            frame = from_table(table.take(shard_rows(_side(table, columns), mt.linkage.blocking, shards)[shard]))
            note(path, frame)
            parts.append(frame)
        out[ds] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out


def partition_path(folder: Path, match_type: str, shard: int, shards: int, dataset: str) -> Path:
    """Named by the shard count too: a run re-planned with another count never reads old files."""
    return folder / "partitions" / match_type / str(shards) / f"{shard}-{dataset}.parquet"


def write_partitions(home: Home, files: list[Path], mt: MatchType, shards: int, folder: Path) -> dict[str, int]:
    """Every shard's records of each data set in its own encrypted file; rows written per data set.

    One pass over the extracts whatever the shard count; a record is written once for each
    shard one of its blocking keys falls in. Files appear whole or not at all (a temporary
    name, renamed when complete), so a plan retried after a crash rewrites them cleanly.
    """
    columns = _rule_columns(mt)
    written: dict[str, int] = {}
    for ds in sorted({mt.left, mt.right}):
        writers: dict[int, pq.ParquetWriter] = {}
        buffers: dict[int, list[pa.Table]] = {s: [] for s in range(shards)}
        pending = np.zeros(shards, dtype=np.int64)
        schema: pa.Schema | None = None
        total = 0
        temp = {s: partition_path(folder, mt.id, s, shards, ds).with_name(f".{s}-{ds}.parquet.tmp") for s in range(shards)}

        def flush(s: int) -> None:
            if not buffers[s]:
                return
            if s not in writers:
                temp[s].parent.mkdir(parents=True, exist_ok=True)
                props = at_rest.encryption_properties(home, schema.names) if at_rest._ENCRYPT else None
                writers[s] = pq.ParquetWriter(temp[s], schema, compression="zstd", encryption_properties=props)
            writers[s].write_table(pa.concat_tables(buffers[s]))
            buffers[s], pending[s] = [], 0

        try:
            for _, table in _batches(home, files, ds):
                schema = schema or table.schema
                for s, rows in enumerate(shard_rows(_side(table, columns), mt.linkage.blocking, shards)):
                    if len(rows):
                        buffers[s].append(table.take(rows))
                        pending[s] += len(rows)
                        total += len(rows)
                        if pending[s] >= WRITE_BATCH:
                            flush(s)
            for s in range(shards):
                flush(s)
        finally:
            for w in writers.values():
                w.close()
        for s in range(shards):
            final = partition_path(folder, mt.id, s, shards, ds)
            if s in writers:
                os.replace(temp[s], final)
            else:  # no record of this data set in the shard: an empty file says so
                final.parent.mkdir(parents=True, exist_ok=True)
                at_rest.write_table(final, (schema or pa.schema([])).empty_table(), home)
        written[ds] = total
    return written


def read_partition(home: Home, folder: Path, mt: MatchType, shard: int, shards: int,
                   note: Note) -> dict[str, pd.DataFrame] | None:
    """The shard's records as the plan wrote them, or None if it wrote none for this shard."""
    paths = {ds: partition_path(folder, mt.id, shard, shards, ds) for ds in sorted({mt.left, mt.right})}
    if not all(p.exists() for p in paths.values()):
        return None
    out: dict[str, pd.DataFrame] = {}
    for ds, path in paths.items():
        table = at_rest.read_table(path, home=home)
        frame = from_table(table) if table.num_columns else pd.DataFrame()
        if len(frame):
            note(path, frame)
        out[ds] = frame
    return out
