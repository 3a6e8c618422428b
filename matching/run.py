"""What the pipeline and the Airflow DAG call. Idempotent; returns only paths, ids and counts.

    load_inputs(home)                                   -> {dataset: pseudonymised frame}
    plan(home, run_id, shards=4)                        -> [{"match_type", "shard", "shards"}, ...]
    link_shard(home, run_id, match_type, shard, shards) -> {"path", "candidates", "flags", ...}
    collect_flags(home, run_id, suppress=None)          -> flags frame (also store/flags/<run_id>.parquet)

``plan`` fixes the run's inputs (store/runs/<run_id>/inputs.json) and gets each match
type's model once (reused from store/models/, or trained; copied to
store/runs/<run_id>/model/<match_type>.json), so every shard task of the run reads the
same extracts and the same model whatever the shard count. Unless told ``full``, it links
incrementally: only the candidate pairs touching records added, changed or removed since
the last linked run, keeping that run's other flags (see :mod:`matching.incremental`).
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from councilmatch.contracts import ENCODED_BYTES, FLAG_COLUMNS
from councilmatch.environment import environment, variable
from councilmatch.home import Home
from councilmatch.memory import ARENAS, release_unused, return_freed_memory, reuse_freed_pages
from matching.flags import SHARD_COLUMNS, empty_flags, first_seen_dates, read_parquet_at_rest, write_parquet_atomic
from matching import incremental as inc
from matching.comparisons import RELEASED, Side, bloom_matrix_from_arrow
from matching.inputs import share_with_pool
from matching.linker import (DegenerateFit, LinkInputs, TrainingContext, in_scope, link, load_models, pool_inputs,
                             train)
from matching.matchtype import MatchType, load_matchtypes
from matching import pool
from matching.pool import InputError, read_inputs
from anonymise import at_rest
from anonymise.pseudonymised import from_table, kept_index
from councilmatch.safepath import path_inside
from councilmatch.settings import Models as ModelSettings

log = logging.getLogger(__name__)


def _home(home: Home | str | Path) -> Home:
    return home if isinstance(home, Home) else Home.resolve(home)


def run_dir(home: Home, run_id: str) -> Path:
    return path_inside(home.runs, run_id, what="run folder")


def _write_json(home: Home, path: Path, data: Any) -> None:
    """Run state is encrypted at rest (anonymise.at_rest), like every store file."""
    at_rest.write_json(path, data, home)


def _read_json(home: Home, path: Path) -> Any:
    return at_rest.read_json(path, home)


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def newest_extracts(home: Home) -> list[Path]:
    """The newest extract per feed: store/pseudonymised/<dataset>/<council>/<extract_id>.parquet.

    Extract ids sort by time, so the newest is the last by name.
    """
    files = []
    if not home.pseudonymised.is_dir():
        return files
    for council_dir in sorted(p for p in home.pseudonymised.glob("*/*") if p.is_dir()):
        extracts = sorted(council_dir.glob("*.parquet"))
        if extracts:
            files.append(extracts[-1])
    return files


def load_inputs(home: Home | str | Path) -> dict[str, pd.DataFrame]:
    """Newest pseudonymised extract per feed, concatenated per data set."""
    home = _home(home)
    return read_inputs(home, newest_extracts(home))


_LAST_INPUTS: dict[tuple, dict[str, pd.DataFrame]] = {}


def _run_files(home: Home, run_id: str) -> list[Path]:
    listing = run_dir(home, run_id) / "inputs.json"
    if not listing.exists():
        raise InputError(f"run {run_id} has no {listing}: call plan() for the run first")
    return [home.root / p for p in _read_json(home, listing)["files"]]


#: a full-link shard task reads only its own records (see :func:`pool.shard_inputs`) once its match
#: type's data sets hold this many records; below it, the whole data sets (cached for the next
#: shard when one process links them all, as ``councilmatch run`` does)
SHARD_SUBSET_MIN_RECORDS = 500_000
#: ... and a full shard of a household match type from this many: its shard reads every right
#: candidate of its left records too, most of the records at a few shards, and decrypts the data
#: sets once per shard (at 1M, 4 shards: the full link 6.4 -> 9.5 s); whole, a million records
#: fit a 2 GiB task
HOUSEHOLD_SUBSET_MIN_RECORDS = 1_000_000
#: rows of an extract the plan's scan (record index and training sample) holds at a time
SCAN_READ_BATCH = 200_000


def _inputs_key(home: Home, run_id: str, files: list[Path]) -> tuple:
    return str(home.root), run_id, tuple((str(p), p.stat().st_mtime_ns) for p in files if p.exists())


def _run_inputs(home: Home, run_id: str, datasets: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """The inputs plan() fixed for this run (so shard tasks never see a newer extract).

    ``datasets``: read only these data sets' extracts (a shard task needs its match type's
    one or two, not the pool). What was read stays in memory (one dict per run, filled as
    needed), so shards linked one after another in one process (``councilmatch run``) read
    each extract once; Airflow tasks each read their own.
    """
    files = _run_files(home, run_id)
    key = _inputs_key(home, run_id, files)
    if key not in _LAST_INPUTS:
        _LAST_INPUTS.clear()
        _LAST_INPUTS[key] = {}
    data = _LAST_INPUTS[key]
    by_dataset = pool.by_dataset(files)
    wanted = [ds for ds in sorted(set(datasets) if datasets is not None else by_dataset) if ds not in data]
    if wanted:
        data.update(read_inputs(home, [p for ds in wanted for p in by_dataset.get(ds, [])]))
    return data


def _holds_inputs(home: Home, run_id: str, files: list[Path], datasets: tuple[str, ...]) -> bool:
    """Whether this process holds these data sets of the run (``files``: its inputs) read whole
    already (the plan read the pool, and ``councilmatch run`` forked this worker from it)."""
    data = _LAST_INPUTS.get(_inputs_key(home, run_id, files), {})
    return all(ds in data for ds in datasets)


# ---------------------------------------------------------------------------
# Plan, link, collect
# ---------------------------------------------------------------------------


def _runnable(types: dict[str, MatchType], counts: dict[str, int]) -> list[MatchType]:
    """The match types with records on both sides (``counts``: records per data set)."""
    out = []
    for mt in types.values():
        if any(not counts.get(ds) for ds in (mt.left, mt.right)):
            log.info("match type %s skipped: no records for %s / %s", mt.id, mt.left, mt.right)
            continue
        out.append(mt)
    return out


def plan(home: Home | str | Path, run_id: str, shards: int = 4, *, full: bool = False,
         retrain: bool = False, settings: Any = None, workers: int = 1) -> list[dict[str, Any]]:
    """Fix the run's inputs, get every match type's model, and list the shard tasks.

    Each match type reuses its saved model (``store/models/<id>.json``) unless re-training is
    due (:func:`matching.incremental.retrain_reason`), and links incrementally against the
    last linked run unless ``full``, there is no such run, or its model changed since.
    ``settings``: the home's ``models`` settings (re-training schedule and drift threshold);
    ``workers``: threads that scan the pool and train match types at once.
    """

    home = _home(home)
    settings = settings or ModelSettings()
    files = newest_extracts(home)
    folder = run_dir(home, run_id)
    listing = {"files": [str(p.relative_to(home.root)) for p in files],
               "stat": [[p.stat().st_size, p.stat().st_mtime_ns] for p in files]}
    _write_json(home, folder / "inputs.json", listing)
    types = load_matchtypes(home)
    previous = previous_state(home, run_id)
    loaded: dict[str, dict[str, pd.DataFrame]] = {}

    def inputs() -> dict[str, pd.DataFrame]:
        """The pool, read on first use: a night whose extracts are all last night's may need none.
        (Read as the run's inputs: link shards run in this process, or forked from it by
        ``councilmatch run``, find it read already.)"""
        if "data" not in loaded:
            loaded["data"] = _run_inputs(home, run_id)
        return loaded["data"]

    cap = getattr(settings, "training_max_records", TRAINING_MAX_RECORDS)

    def records_per_dataset() -> dict[str, int]:
        """Records per data set (from the extracts' metadata), read on first use."""
        if "counts" not in loaded:
            loaded["counts"] = _records_per_dataset(home, files)
        return loaded["counts"]

    def training_data() -> dict[str, pd.DataFrame]:
        """What models are trained on: the pool, or past ``cap`` records a sample of it."""
        if "sample" not in loaded:
            counts = records_per_dataset()
            fractions = loaded["fractions"] = _sample_fractions(counts, cap)
            if sum(counts.values()) <= cap:
                loaded["sample"] = None
            else:
                scan = _scan_pool(home, files, fractions, workers)
                loaded["sample"], loaded["matrices"], loaded["whole"] = scan.sample, scan.matrices, scan.whole
        return loaded["sample"] or inputs()

    def dirty_rows(ds: str) -> np.ndarray:
        """Row positions of a data set's dirty records (in its rows' order, as the pool's frame holds them)."""
        if len(dirty) == 0:
            return np.zeros(0, dtype=np.int64)
        if "refs" in loaded:
            return np.flatnonzero(inc.member(loaded["refs"].get(ds, np.zeros(0, np.int64)), dirty))
        return inc.rows_of(inputs()[ds], dirty)

    if (previous is not None and previous.get("listing") == listing and previous.get("key_id") is not None
            and previous.get("runnable") is not None):
        # the very files the last run linked (same paths, sizes, times): no record changed
        write_parquet_atomic(previous["records"], folder / "records.parquet", home)
        dirty = np.zeros(0, dtype=np.int64)
        key_id = previous["key_id"]
        runnable = [types[t] for t in types if t in previous["runnable"]]
        if any(t not in previous["seen"] for t in types):  # a match type added since: check it has records
            runnable = _runnable(types, records_per_dataset())
    else:
        counts = records_per_dataset()
        if sum(counts.values()) <= cap:
            data = inputs()
            index = inc.record_index(data, pool.by_dataset(files), home)
            key_id = _key_id(data)
            loaded["sample"] = None
        elif previous is not None and not full:
            # an incremental night over the cap: the record index from the indexes kept beside the
            # extracts; its changed records and those near them are read later, never the pool
            kept = pool.kept_record_index(home, files)
            index, key_id, loaded["refs"] = kept.index, kept.key_id, kept.refs
            del kept
        else:
            # a pool too big to hold: the record index file by file, and a sample to train on
            loaded["fractions"] = _sample_fractions(counts, cap)
            scan = _scan_pool(home, files, loaded["fractions"], workers)
            index, key_id, loaded["sample"], loaded["matrices"] = scan.index, scan.key_id, scan.sample, scan.matrices
            loaded["whole"] = scan.whole
            del scan
        write_parquet_atomic(index, folder / "records.parquet", home)
        dirty = inc.dirty_refs(previous.pop("records"), index) if previous else None
        del index  # 16 bytes a record of the pool, twice with last night's: not held through training
        runnable = _runnable(types, counts)
    today = run_date(run_id)
    tasks: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    due: dict[str, tuple[dict[str, Any] | None, inc.Drift, str | None, np.ndarray | None, np.ndarray | None]] = {}
    for mt in runnable:
        saved = inc.load_saved(home, mt.id)
        left_rows = right_rows = None
        drift = inc.Drift()
        # a full night over the training cap skips the changed rows and drift: it re-links every
        # record, and its scan keeps no data set's references
        if dirty is not None and not (full and loaded.get("sample")):
            left_rows = dirty_rows(mt.left)
            right_rows = left_rows if mt.dedupe else dirty_rows(mt.right)
            if saved is not None and (len(left_rows) or len(right_rows)):
                drift = _drift(home, files, mt, saved, left_rows, right_rows, None if "refs" in loaded else inputs)
        due[mt.id] = (saved, drift, inc.retrain_reason(saved, mt, key_id, today, settings, retrain, drift),
                      left_rows, right_rows)
    training = [mt for mt in runnable if due[mt.id][2] is not None]
    trained: dict[str, tuple[Any, int] | DegenerateFit] = {}
    if training:
        # a pool over ``cap`` records trains on its sample (u from random pairs and m by EM need a
        # sample, not the pool); the drift measure above and linking use every record
        training_records = training_data()
        ctx = TrainingContext(pool_inputs(training_records, loaded.pop("whole", None)) if training_records else None,
                              sampled=loaded["fractions"] if loaded.get("sample") else {})
        if loaded["sample"] and ctx.pool is not None:  # the sample serves training only
            share_with_pool(ctx.pool, training_records, loaded.pop("matrices", None))
            release_unused()  # the matrices' batch parts, now one matrix a column
        if not _many_times_the_sample(loaded.get("fractions", {})):
            # training frees and makes again arrays of a few MB: keep their pages (not where the
            # pool is many times the sample, whose plan must stay within its memory bound)
            reuse_freed_pages()
        trained = _train_all(training, training_records, ctx, inputs, workers, {mt.id: due[mt.id][2] for mt in training})
    for mt in runnable:
        saved, drift, reason, left_rows, right_rows = due.pop(mt.id)
        if reason is not None:
            result = trained.pop(mt.id)
            if isinstance(result, DegenerateFit):
                # loud, not silent: the match type raises no flag tonight and the report says why
                log.error("%s", result)
                _write_json(home, folder / "model" / f"{mt.id}.json",
                            {"match_type": mt.id, "fit_check": {"passed": False, "fallback": True,
                                                                "degenerate": True, "reasons": [str(result)]}})
                summary[mt.id] = {"mode": "none", "retrained": reason, "degenerate": True}
                continue
            models, records = result
            saved = inc.save_model(home, mt, models, run_id, today, key_id, records)
        mid = inc.model_id(saved)
        prev_type = (previous or {}).get("types", {}).get(mt.id)
        why_full = ("requested" if full else "no earlier linked run" if previous is None
                    else "not linked in the last run" if prev_type is None
                    else "new model" if prev_type.get("model_id") != mid else None)
        entry: dict[str, Any] = {"model_id": mid, "carried": None}
        if not why_full:
            try:
                near = _near_whole(mt, inputs, right_rows) if "refs" not in loaded else \
                    _near_read(home, files, mt, loaded["refs"][mt.left], right_rows)
                left_rows, right_rows, carried = _incremental_work(home, mt, near, previous, prev_type, dirty,
                                                                   left_rows, right_rows, run_id)
            except InputError as exc:  # the last run's state is incomplete: this match type re-links in full
                log.warning("match type %s: %s; re-linking in full", mt.id, exc)
                why_full = str(exc)
        if why_full:
            dirty_path(home, run_id, mt.id).unlink(missing_ok=True)  # a re-planned night: no stale list
            mt_tasks = [{"match_type": mt.id, "shard": i, "shards": int(shards)} for i in range(int(shards))]
        else:
            entry["carried"] = str(write_parquet_atomic(carried, carried_path(home, run_id, mt.id), home)
                                   .relative_to(home.root))
            _save_rows(home, dirty_path(home, run_id, mt.id), left_rows, right_rows)
            entry.update(dirty_left=int(len(left_rows)), dirty_right=int(len(right_rows)), carried_flags=len(carried))
            # a shard task per INCREMENTAL_ROWS_PER_SHARD dirty records (none when nothing changed)
            n = min(int(shards), math.ceil((len(left_rows) + len(right_rows)) / INCREMENTAL_ROWS_PER_SHARD))
            mt_tasks = [{"match_type": mt.id, "shard": i, "shards": n} for i in range(n)]
        reuse = {"mode": "full" if why_full else "incremental", "full_because": why_full,
                 "model_id": mid, "trained_run": saved["trained_run"], "trained_on": saved["trained_on"],
                 "age_days": inc.age_days(saved, today), "retrained": reason, "drift": drift.to_json(),
                 "drift_threshold": settings.drift_threshold}
        entry["mode"] = reuse["mode"]
        _write_model_copy(home, folder, mt, saved, reuse)
        entry["shards"] = [str(shard_path(home, run_id, t["match_type"], t["shard"]).relative_to(home.root))
                           for t in mt_tasks]
        summary[mt.id] = {**entry, **{k: reuse[k] for k in ("age_days", "retrained", "drift", "full_because")}}
        tasks += mt_tasks
    # the biggest match types' shards first: `councilmatch run` gives a type's shards to one worker,
    # and the worker that takes the biggest last finishes the night alone (1M: the household type's
    # shards took 4.2 s, the six others 0.4-0.9 s each)
    if tasks:
        size = records_per_dataset()
        weight = {mt.id: size.get(mt.left, 0) + (0 if mt.dedupe else size.get(mt.right, 0)) for mt in runnable}
        tasks.sort(key=lambda t: -weight[t["match_type"]])  # stable: a type's shards stay in order
    _write_json(home, folder / "plan.json", {"tasks": tasks, "types": {k: v for k, v in summary.items() if "model_id" in v},
                                       "key_id": key_id, "runnable": [mt.id for mt in runnable],
                                       "seen": sorted(types)})
    return tasks


def _train_all(training: list[MatchType], pool: dict[str, pd.DataFrame], ctx: TrainingContext, inputs: Callable,
               workers: int, reasons: dict[str, str]) -> dict[str, tuple[Any, int] | DegenerateFit]:
    """Each match type's trained models (and the records trained on), or its DegenerateFit.

    Match types train on ``workers`` threads sharing the run's context: their sides are views of
    the pool's arrays, and numpy lets go of the interpreter in the comparisons and EM, so two
    threads train in about two thirds of the time one does, with the same models."""
    def one(mt: MatchType) -> tuple[Any, int] | DegenerateFit:
        log.info("match type %s: training (%s)", mt.id, reasons[mt.id])
        inp = LinkInputs(mt, pool, ctx.pool) if ctx.pool is not None else _link_inputs(mt, inputs())
        try:
            return train(mt, inp, ctx), inp.records
        except DegenerateFit as exc:
            return exc

    if workers <= 1 or len(training) <= 1:
        return {mt.id: one(mt) for mt in training}
    # the pool's pairs the match types share first, spread over the threads (TrainingContext.pooled_work)
    shared = ctx.pooled_work([lk for mt in training for lk in (mt.linkage, mt.person) if lk is not None])
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="train") as threads:
        for done in [threads.submit(work) for work in shared]:
            done.result()
        return dict(zip((mt.id for mt in training), threads.map(one, training)))


#: Training reads at most about this many records of the pool (all data sets together): past
#: it, each data set is sampled (see :func:`_sample_fractions`), so the plan task's memory is
#: bounded whatever the pool's size. ``settings.yaml`` ``models: {training_max_records: N}``.
TRAINING_MAX_RECORDS = 1_000_000
#: ... but a data set keeps at least this many records (small feeds, e.g. deaths, stay whole)
TRAINING_MIN_RECORDS_PER_DATASET = 50_000


def _records_per_dataset(home: Home, files: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in files:
        counts[p.parent.parent.name] = counts.get(p.parent.parent.name, 0) + pool.records_in(home, [p])
    return counts


def _sample_fractions(counts: dict[str, int], cap: int) -> dict[str, float]:
    """Share of each data set's records to train on: the pool scaled down to ``cap`` records,
    no data set below ``TRAINING_MIN_RECORDS_PER_DATASET`` (or whole if smaller)."""
    share = min(1.0, cap / max(sum(counts.values()), 1))
    return {ds: min(1.0, max(share, TRAINING_MIN_RECORDS_PER_DATASET / max(n, 1))) for ds, n in counts.items()}


def _many_times_the_sample(fractions: dict[str, float]) -> bool:
    """Whether some data set is sampled to under half: the pool is then many times what training
    holds, and the plan's memory, not its speed, decides how malloc is set (councilmatch.memory)."""
    return min(fractions.values(), default=1.0) < 0.5


def _in_sample(refs: np.ndarray, fraction: float) -> np.ndarray:
    """Deterministic sample by record reference (the same records night after night)."""
    if fraction >= 1.0:
        return np.ones(len(refs), dtype=bool)
    return (np.asarray(refs, np.int64).view(np.uint64) % np.uint64(1 << 20)) < np.uint64(fraction * (1 << 20))


@dataclass
class PoolScan:
    """What :func:`_scan_pool` found: the pool's record index and key id, and a training sample
    whose encodings are already matrices (``matrices``: column -> data set -> parts), not bytes."""

    index: pd.DataFrame
    key_id: str
    sample: dict[str, pd.DataFrame]
    matrices: dict[str, dict[str, list[np.ndarray]]]
    #: every data set's sample in one frame, in ``sample``'s order (each ``sample`` frame is a view
    #: of its rows): the training pool, so that it is not concatenated a second time
    whole: pd.DataFrame | None = None


def _scan_pool(home: Home, files: list[Path], fractions: dict[str, float], threads: int = 1) -> PoolScan:
    """Read the pool a batch of one extract at a time: its record index, key id and training sample.

    Only ``SCAN_READ_BATCH`` rows (a batch per thread) and the sample are in memory at once, with
    the index (16 bytes a record); key ids are checked as :func:`read_inputs` checks them. The
    sample's encodings go from Arrow straight into matrices, batch by batch: the sample never
    holds them as Python bytes objects, nor does the batch (its content hash reads them from Arrow).
    Extracts are read on ``threads`` threads (decryption, Parquet decoding and the row hashes
    let go of the interpreter) and gathered in file order, so the result does not depend on them.
    """
    # a pool too big to hold is where memory binds: from here on what the task frees goes back to
    # the system (at the cost of a page fault per big array, which a pool that fits does not pay);
    # sampled to under half, the threads also share malloc arenas (slower, see councilmatch.memory)
    return_freed_memory(arenas=ARENAS if _many_times_the_sample(fractions) else None)
    index: list[pd.DataFrame] = []
    sample: dict[str, list[pd.DataFrame]] = {}
    matrices: dict[str, dict[str, list[np.ndarray]]] = {c: {} for c in ENCODED_BYTES}
    key_files: dict[str, list[str]] = {}
    threads = max(1, threads)
    scan = partial(_scan_extract, home, fractions=fractions, batch=max(1, SCAN_READ_BATCH // threads))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scan") as executor:
        for path, batches in zip(files, executor.map(scan, files)):
            ds = path.parent.parent.name
            for batch in batches:
                pool.note_key_ids(home, key_files, path, batch.key_ids)
                index.append(batch.index)
                sample.setdefault(ds, []).append(batch.sample)
                for column, matrix in batch.matrices.items():
                    matrices[column].setdefault(ds, []).append(matrix)
    pool.check_key_ids(home, key_files)
    key_id = next((k for k in key_files if k != "(none)"), "")
    records = (pd.concat(index, ignore_index=True) if index
               else pd.DataFrame({"ref": pd.Series(dtype="int64"), "row": pd.Series(dtype="int64")}))
    # one concatenation into the training pool, each data set a view of its rows: the sample is
    # held once (per-data-set frames concatenated again into the pool held it twice, +0.3 GB at 1M)
    order = sorted(sample)
    sizes = [sum(len(part) for part in sample[ds]) for ds in order]
    whole = (pd.concat([part for ds in order for part in sample.pop(ds)], ignore_index=True) if order
             else pd.DataFrame())
    whole.attrs[RELEASED] = True  # its encodings are only in ``matrices``
    frames, start = {}, 0
    for ds, n in zip(order, sizes):
        frames[ds] = whole.iloc[start:start + n].set_axis(pd.RangeIndex(n), axis=0, copy=False)
        frames[ds].attrs[RELEASED] = True
        start += n
    release_unused()  # the decrypted batches' buffers, kept by the allocators (0.4 GiB at 1M)
    return PoolScan(records, key_id, frames, matrices, whole)


@dataclass
class _ScannedBatch:
    key_ids: list[str]
    index: pd.DataFrame
    sample: pd.DataFrame
    matrices: dict[str, np.ndarray]


def _scan_extract(home: Home, path: Path, fractions: dict[str, float], batch: int) -> list[_ScannedBatch]:
    """One extract's share of :func:`_scan_pool`, batch by batch."""
    ds = path.parent.parent.name
    out = []
    kept, start = kept_index(path, home), 0
    for table in at_rest.iter_tables(path, batch, home):  # an extract may be millions of rows
        encoded = [c for c in ENCODED_BYTES if c in table.column_names]
        plain = table.drop_columns(encoded)  # the encodings stay Arrow: no bytes object a row
        if kept is not None and start + len(table) <= len(kept):  # the index kept beside the extract
            part, frame = kept.iloc[start:start + len(table)].reset_index(drop=True), None
        else:
            frame = from_table(plain)
            part = inc.index_of(frame, table)  # its row hash covers the encodings too
        start += len(table)
        keep = _in_sample(part["ref"].to_numpy(), fractions.get(ds, 1.0))
        chosen = pa.array(keep)
        sample = frame[keep] if frame is not None else from_table(plain.filter(chosen))
        key_ids = pool.key_ids_of(plain)
        out.append(_ScannedBatch(
            key_ids, part, sample,
            {column: bloom_matrix_from_arrow(table.column(column).filter(chosen), nbytes) if column in encoded
             else np.zeros((int(keep.sum()), nbytes), np.uint8) for column, nbytes in ENCODED_BYTES.items()}))
        del frame, table
    return out


#: dirty records per incremental shard task: a handful of changes is one task, not ``shards``
INCREMENTAL_ROWS_PER_SHARD = 20_000


def _key_id(data: dict[str, pd.DataFrame]) -> str:
    for frame in data.values():
        if "key_id" in frame and len(frame):
            return str(frame["key_id"].iloc[0])
    return ""


def _write_model_copy(home: Home, folder: Path, mt: MatchType, saved: dict[str, Any], reuse: dict[str, Any]) -> None:
    """The run's copy of the model (what its shards score with and its report shows)."""
    body = {k: v for k, v in saved.items() if k not in ("settings", "patterns")}
    _write_json(home, folder / "model" / f"{mt.id}.json", {**body, "reuse": reuse})
    # decrypted and re-encrypted (under the active at-rest key), never copied plain
    at_rest.write_table(folder / "model" / f"{mt.id}.tf.parquet", at_rest.read_table(inc.tf_path(home, mt.id), home=home),
                        home)
    if "person" in saved:  # the run report charts every file in model/
        _write_json(home, folder / "model" / f"{mt.id}.person.json",
                    {"match_type": mt.id, "model": "person (within the address-linked pairs)",
                     **saved["person"]})


def carried_path(home: Home, run_id: str, match_type: str) -> Path:
    return run_dir(home, run_id) / "shards" / f"{match_type}-carried.parquet"


def dirty_path(home: Home, run_id: str, match_type: str) -> Path:
    return run_dir(home, run_id) / "dirty" / f"{match_type}.parquet"


def _save_rows(home: Home, path: Path, left: np.ndarray, right: np.ndarray) -> None:
    """The dirty row positions of each side, as one encrypted Parquet file (side 0 = left, 1 = right)."""
    left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
    frame = pd.DataFrame({"side": np.concatenate([np.zeros(len(left), np.int8), np.ones(len(right), np.int8)]),
                          "row": np.concatenate([left, right])})
    write_parquet_atomic(frame, path, home)


def _load_rows(home: Home, path: Path) -> tuple[np.ndarray, np.ndarray]:
    frame = read_parquet_at_rest(path, home)
    side, row = frame["side"].to_numpy(), frame["row"].to_numpy(dtype=np.int64)
    return row[side == 0], row[side == 1]


def previous_state(home: Home, run_id: str) -> dict[str, Any] | None:
    """The last run before ``run_id`` whose flags were collected and that recorded what it
    linked (records.parquet, plan.json with types), or None."""
    if not home.runs.is_dir():
        return None
    for folder in sorted((p for p in home.runs.iterdir() if p.is_dir() and p.name < run_id), reverse=True):
        plan_file, records = folder / "plan.json", folder / "records.parquet"
        if not (plan_file.exists() and records.exists() and home.flags_path(folder.name).exists()):
            continue
        state = _read_json(home, plan_file)
        if "types" not in state:
            return None  # linked before runs recorded their state: the next night is full
        listing = _read_json(home, folder / "inputs.json")
        return {"run_id": folder.name, "types": state["types"], "records": read_parquet_at_rest(records, home),
                "inputs": listing["files"], "listing": listing, "key_id": state.get("key_id"),
                "runnable": state.get("runnable"), "seen": state.get("seen", [])}
    return None


def _previous_flags(home: Home, prev_type: dict[str, Any]) -> pd.DataFrame | None:
    """The flags (before suppression) a match type raised in the last linked run, or None if lost."""
    paths = [home.root / p for p in prev_type.get("shards", [])]
    if prev_type.get("carried"):
        paths.append(home.root / prev_type["carried"])
    if any(not p.exists() for p in paths):
        return None
    parts = [f for f in (read_parquet_at_rest(p, home) for p in paths) if len(f)]
    flags = pd.concat(parts, ignore_index=True) if parts else empty_flags(SHARD_COLUMNS)
    return flags.drop_duplicates("flag_id").reset_index(drop=True)


#: what the household step reads of a match type, on first use: the left side's blocking keys
#: (a Side), the dirty right records' blocking columns, and the left records' reference keys (int64)
Near = Callable[[], tuple[Side, pd.DataFrame, np.ndarray]]


def _near_whole(mt: MatchType, inputs: Callable[[], dict[str, pd.DataFrame]], right_rows: np.ndarray) -> Near:
    """:data:`Near` from the pool read whole."""
    def near() -> tuple[Side, pd.DataFrame, np.ndarray]:
        data = inputs()
        inp = _link_inputs(mt, data)
        return (inp.left, data[mt.right].iloc[right_rows].reset_index(drop=True),
                inc.frame_ref_keys(inp.left_frame).view(np.int64))
    return near


def _near_read(home: Home, files: list[Path], mt: MatchType, left_refs: np.ndarray, right_rows: np.ndarray) -> Near:
    """:data:`Near` read from the extracts: the blocking columns only (a pool too big to hold)."""
    def near() -> tuple[Side, pd.DataFrame, np.ndarray]:
        columns, by_ds = pool.blocking_columns(mt), pool.by_dataset(files)
        return (Side(pool.columns_of(home, by_ds.get(mt.left, []), columns)),
                pool.rows_of(home, by_ds.get(mt.right, []), right_rows, columns), left_refs)
    return near


def _drift(home: Home, files: list[Path], mt: MatchType, saved: dict[str, Any], left_rows: np.ndarray,
           right_rows: np.ndarray, inputs: Callable[[], dict[str, pd.DataFrame]] | None) -> inc.Drift:
    """Tonight's drift for a match type: its sampled dirty rows' pairs, from the pool read whole
    (``inputs``) or, with None, from those rows and the records sharing a blocking key with them."""
    left_rows, right_rows, sampled = inc.drift_rows(left_rows, right_rows)
    if inputs is not None:
        inp = _link_inputs(mt, inputs())
    else:
        data, left_rows, right_rows = pool.neighbourhood(home, files, mt, left_rows, right_rows)
        inp = LinkInputs(mt, data) if all(len(data[ds]) for ds in (mt.left, mt.right)) else None
    return inc.measure_drift(mt, inp, saved, left_rows, right_rows, in_scope, sampled)


def _incremental_work(home: Home, mt: MatchType, near: Near, previous: dict[str, Any],
                      prev_type: dict[str, Any], dirty: np.ndarray, left_rows: np.ndarray,
                      right_rows: np.ndarray, run_id: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Rows to re-link on each side, and the last run's flags that stand (all records clean)."""
    flags = _previous_flags(home, prev_type)
    if flags is None:
        raise InputError(f"the flags of run {previous['run_id']} for {mt.id} are gone")
    stale = inc.flag_touches(flags, dirty, "left") | inc.flag_touches(flags, dirty, "right")
    if mt.left_person_missing is not None and len(right_rows):
        # household judgement: a left record's flags depend on every right record at its address,
        # so re-link whole each left record near a dirty right record, now or in the last run
        left, right_dirty, left_refs = near()
        near_rows = [inc.rows_sharing_keys(left, Side(right_dirty), mt.linkage.blocking)]
        old = _previous_records(home, previous, mt.right, dirty, run_id, columns=pool.blocking_columns(mt))
        if len(old):
            near_rows.append(inc.rows_sharing_keys(left, Side(old), mt.linkage.blocking))
        household = np.unique(np.concatenate(near_rows))
        left_rows = np.union1d(left_rows, household)
        stale |= inc.member(inc.ref_keys(flags["left_council"], flags["left_dataset"], flags["left_record_id"])
                         .view(np.int64), left_refs[household])
    carried = flags[~stale].assign(run_id=run_id).reset_index(drop=True)
    return np.asarray(left_rows, np.int64), np.asarray(right_rows, np.int64), carried


def _previous_records(home: Home, previous: dict[str, Any], dataset: str, dirty: np.ndarray,
                      run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The last run's version of the dirty records of ``dataset`` (from its input extracts).

    ``columns``: read only these (and the reference and key id) from the files, decrypted by
    pyarrow column by column, and turn only the dirty rows into pandas rows."""
    # an extract file tonight's run reads too holds no dirty record: only last night's other files
    tonight = set(_read_json(home, run_dir(home, run_id) / "inputs.json")["files"])
    files = [home.root / p for p in previous["inputs"] if Path(p).parent.parent.name == dataset and p not in tonight]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise InputError(f"run {previous['run_id']}'s extract {missing[0]} is gone")
    if columns is not None:
        return _dirty_rows_of(home, files, dirty, columns)
    frames = read_inputs(home, files).get(dataset) if files else None
    if frames is None or frames.empty:
        return pd.DataFrame()
    return frames.iloc[inc.rows_of(frames, dirty)].reset_index(drop=True)


def _dirty_rows_of(home: Home, files: list[Path], dirty: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The rows of ``files`` whose reference is in ``dirty``, with only ``columns`` (plus the
    reference and key id): the key ids are checked as ``read_inputs`` does."""
    wanted = list(dict.fromkeys(["council", "dataset", "record_id", "key_id", *columns]))
    key_files: dict[str, list[str]] = {}
    parts = []
    for path in files:
        table = at_rest.read_table(path, columns=wanted, home=home)
        pool.note_key_ids(home, key_files, path, pool.key_ids_of(table))
        frame = table.to_pandas()  # the store's columns
        parts.append(frame.iloc[inc.rows_of(frame, dirty)])
    pool.check_key_ids(home, key_files)
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


_LAST_LINK_INPUTS: dict[str, tuple[dict, LinkInputs]] = {}


def _link_inputs(mt: MatchType, data: dict[str, pd.DataFrame]) -> LinkInputs:
    """The match type's sides, kept for the next shard of the same match type in this process
    (their token arrays and Bloom matrices are converted once)."""
    key = mt.model_dump_json()
    cached = _LAST_LINK_INPUTS.get(key)
    if cached is None or cached[0] is not data:
        _LAST_LINK_INPUTS.clear()
        _LAST_LINK_INPUTS[key] = (data, LinkInputs(mt, data))
    return _LAST_LINK_INPUTS[key][1]


def shard_path(home: Home, run_id: str, match_type: str, shard: int) -> Path:
    return run_dir(home, run_id) / "shards" / f"{match_type}-{shard}.parquet"


def link_shard(home: Home | str | Path, run_id: str, match_type: str, shard: int, shards: int) -> dict[str, Any]:
    """Score one shard of one match type; writes its candidate flags (atomically).

    On an incremental night the shard holds the candidate pairs touching its share of the
    dirty records (row position mod ``shards``), each scored against the whole pool (read as
    the records sharing a blocking key with those, :func:`matching.pool.neighbourhood`)."""
    home = _home(home)
    types = load_matchtypes(home)
    if match_type not in types:
        raise KeyError(f"unknown match type {match_type!r} (known: {', '.join(types)})")
    mt = types[match_type]
    folder = run_dir(home, run_id)
    model_file = folder / "model" / f"{match_type}.json"
    if not model_file.exists():
        raise InputError(f"no trained model {model_file}: call plan() for run {run_id} first")
    tf_file = folder / "model" / f"{match_type}.tf.parquet"
    dirty_file = dirty_path(home, run_id, match_type)
    run_files = _run_files(home, run_id)
    files = [p for p in run_files if p.parent.parent.name in (mt.left, mt.right)]
    dirty = _load_rows(home, dirty_file) if dirty_file.exists() else None
    if dirty is not None:
        left, right = (rows[rows % shards == shard] for rows in dirty)
    # a big match type reads only the records its shard's pairs can hold (the model's TF tables
    # come from its file, not the data): a full shard those with a blocking key in the shard, an
    # incremental one the neighbourhood of its changed records, unless this process holds the
    # data sets already (the plan read them, and councilmatch run forked this worker from it)
    records = pool.records_in(home, files) if tf_file.exists() else 0
    bounded = (records >= SHARD_SUBSET_MIN_RECORDS
               and (shards > 1 and (mt.left_person_missing is None or records >= HOUSEHOLD_SUBSET_MIN_RECORDS)
                    if dirty is None else not _holds_inputs(home, run_id, run_files, (mt.left, mt.right))))
    if bounded:
        if dirty is None:
            data = pool.shard_inputs(home, files, mt, shard, shards)
        else:
            data, left, right = pool.neighbourhood(home, files, mt, left, right)
        if any(data[ds].empty for ds in (mt.left, mt.right)):  # no record of one side: no pair
            path = write_parquet_atomic(empty_flags(SHARD_COLUMNS), shard_path(home, run_id, match_type, shard), home)
            return {"match_type": match_type, "shard": shard, "shards": shards, "path": str(path),
                    "mode": "full" if dirty is None else "incremental",
                    "candidates": 0, "meeting_conditions": 0, "flags": 0, "records_read": 0}
        inp = LinkInputs(mt, data)
    else:
        inp = _link_inputs(mt, _run_inputs(home, run_id, (mt.left, mt.right)))
    tf = inc.read_tf(tf_file, home) if tf_file.exists() else None
    models = load_models(mt, _read_json(home, model_file), inp, tf)
    cands = None
    if dirty is not None:
        cands = inc.touching_pairs(inp.left, inp.right, mt.linkage.blocking, inp.dedupe, left, right)
    flags, stats = link(mt, models, inp, run_id, shard, shards, cands=cands)
    _test_shard_gate(match_type, shard)
    path = write_parquet_atomic(flags, shard_path(home, run_id, match_type, shard), home)
    return {"match_type": match_type, "shard": shard, "shards": shards, "path": str(path),
            "mode": "incremental" if cands is not None else "full",
            "records_read": int(sum(len(f) for f in inp.frames())), **stats}


#: Test hook, never set in production: a folder. The worker-kill test of the native Celery
#: topology sets it on one worker only, to hold a shard there mid-flight (see _test_shard_gate).
SHARD_GATE_VARIABLE = variable("test_shard_gate")
#: how long a held shard waits for the test to kill its worker before going on by itself
SHARD_GATE_SECONDS = 900


def _test_shard_gate(match_type: str, shard: int) -> None:
    """Hold this process's second link shard (scored, not yet written) until ``<gate>/release``.

    Why: the worker-kill test must know that a shard is in flight on a given worker when
    it kills it, without racing. Every shard linked under the gate leaves ``started-*``;
    the second one (the worker has then finished a shard, so it took part in the night)
    claims ``held`` (once, atomically: its retry elsewhere, or a later shard, passes) and
    waits. Without the variable this does nothing.
    """
    folder = environment().test_shard_gate
    if not folder:
        return
    gate = Path(folder)
    earlier = list(gate.glob("started-*"))
    (gate / f"started-{match_type}-{shard}-{os.getpid()}").write_text("")
    if not earlier:
        return
    try:
        fd = os.open(gate / "held", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(f"{match_type} {shard} {os.getpid()}\n")
    deadline = time.monotonic() + SHARD_GATE_SECONDS
    while not (gate / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def run_date(run_id: str) -> str:
    """The ISO date a run id stands for (20261125T020000 or 2026-11-25...), else today (UTC)."""
    m = re.search(r"(\d{4})-?(\d{2})-?(\d{2})", run_id)
    if m:
        try:
            return datetime(int(m[1]), int(m[2]), int(m[3])).date().isoformat()
        except ValueError:
            pass
    return datetime.now(timezone.utc).date().isoformat()


def collect_flags(home: Home | str | Path, run_id: str,
                  suppress: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> pd.DataFrame:
    """Union the run's shards into store/flags/<run_id>.parquet, with first_seen/last_seen.

    ``suppress``: given the raised flags' (flag_id, evidence_hash), the rows closed as no issue
    with that same evidence (the review store's ``suppressed_flags``); they are not raised
    again, a flag whose evidence changed is.
    """
    home = _home(home)
    plan_file = run_dir(home, run_id) / "plan.json"
    if not plan_file.exists():
        raise InputError(f"run {run_id} has no {plan_file}: call plan() and link_shard() first")
    planned = _read_json(home, plan_file)
    paths = [shard_path(home, run_id, t["match_type"], t["shard"]) for t in planned["tasks"]]
    # an incremental night's flags that stand from the last run
    paths += [home.root / t["carried"] for t in planned.get("types", {}).values() if t.get("carried")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"run {run_id}: {len(missing)} shard(s) not linked yet, e.g. {missing[0]}")
    parts = [read_parquet_at_rest(p, home) for p in paths]
    parts = [p for p in parts if len(p)]
    flags = pd.concat(parts, ignore_index=True) if parts else empty_flags(SHARD_COLUMNS)
    flags = flags.drop_duplicates("flag_id")
    if suppress is not None and len(flags):
        closed = suppress(flags[["flag_id", "evidence_hash"]])
        if len(closed):
            closed = pd.MultiIndex.from_frame(closed[["flag_id", "evidence_hash"]].astype(str))
            flags = flags[~pd.MultiIndex.from_frame(flags[["flag_id", "evidence_hash"]].astype(str)).isin(closed)]
    today = run_date(run_id)
    earlier = first_seen_dates(home.flags, run_id, home)
    flags = flags.assign(
        first_seen=flags["flag_id"].map(earlier).fillna(today).astype(str) if len(flags) else pd.Series(dtype=object),
        last_seen=today,
    )
    flags = flags.sort_values(["priority", "match_type", "match_probability", "flag_id"],
                              ascending=[True, True, False, True], kind="stable").reset_index(drop=True)
    flags = flags[list(FLAG_COLUMNS)]
    write_parquet_atomic(flags, home.flags_path(run_id), home)
    return flags
