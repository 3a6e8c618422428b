"""What the pipeline and the Airflow DAG call. Idempotent; returns only paths, ids and counts.

    load_inputs(home)                                   -> {dataset: pseudonymised frame}
    plan(home, run_id, shards=4)                        -> [{"match_type", "shard", "shards"}, ...]
    link_shard(home, run_id, match_type, shard, shards) -> {"path", "candidates", "flags", ...}
    collect_flags(home, run_id, suppressed=None)        -> flags frame (also store/flags/<run_id>.parquet)

``plan`` fixes the run's inputs (store/runs/<run_id>/inputs.json) and trains each
match type once (store/runs/<run_id>/model/<match_type>.json), so every shard task
of the run reads the same extracts and the same model whatever the shard count.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from councilmatch.contracts import FLAG_COLUMNS
from councilmatch.home import Home
from matching.flags import SHARD_COLUMNS, empty_flags, first_seen_dates, read_parquet_at_rest, write_parquet_atomic
from matching.linker import DegenerateFit, LinkInputs, TrainingContext, link, load_models, pool_inputs, train
from matching.matchtype import MatchType, load_matchtypes

log = logging.getLogger(__name__)


class InputError(RuntimeError):
    """The pseudonymised store cannot be linked as it is (e.g. mixed key ids)."""


def _home(home: Home | str | Path) -> Home:
    return home if isinstance(home, Home) else Home.resolve(home)


def run_dir(home: Home, run_id: str) -> Path:
    from councilmatch.safepath import path_inside

    return path_inside(home.runs, run_id, what="run folder")


def _write_json(home: Home, path: Path, data: Any) -> None:
    """Run state is encrypted at rest (anonymise.at_rest), like every store file."""
    from anonymise import at_rest

    at_rest.write_json(path, data, home)


def _read_json(home: Home, path: Path) -> Any:
    from anonymise import at_rest

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


def _read(home: Home, path: Path) -> pd.DataFrame:
    from anonymise.store import read_pseudonymised

    return read_pseudonymised(path, home)


def _known_key_ids(home: Home) -> tuple[str, ...] | None:
    """Key ids of the home's keyring, or None if the keyring cannot be opened here."""
    try:
        from anonymise.keys import load_keyring

        return tuple(load_keyring(home).key_ids)
    except Exception:  # noqa: BLE001 - no keyring/KEK here: only the mixed-key check applies
        return None


def read_inputs(home: Home, files: list[Path]) -> dict[str, pd.DataFrame]:
    """Read extracts into one frame per data set; refuse mixed or unknown key ids."""
    frames: dict[str, list[pd.DataFrame]] = {}
    key_files: dict[str, list[str]] = {}
    for path in files:
        frame = _read(home, path)
        dataset = path.parent.parent.name
        for kid in frame["key_id"].dropna().astype(str).unique() if "key_id" in frame else ["(none)"]:
            key_files.setdefault(kid, []).append(str(path.relative_to(home.root)) if path.is_relative_to(home.root) else str(path))
        frames.setdefault(dataset, []).append(frame)
    if len(key_files) > 1:
        detail = "; ".join(f"{k}: {', '.join(v[:3])}{' …' if len(v) > 3 else ''}" for k, v in sorted(key_files.items()))
        raise InputError(
            f"pseudonymised extracts were made under different keys ({detail}); tokens of different "
            "keys never match. Re-pseudonymise the older extracts under the active key "
            "(re-ingest them) before linking.")
    known = _known_key_ids(home)
    if known is not None:
        unknown = sorted(set(key_files) - set(known))
        if unknown:
            raise InputError(f"pseudonymised extracts use key id(s) {unknown} that are not in this home's "
                             f"keyring (has {list(known)}): {key_files[unknown[0]][:3]}")
    return {ds: pd.concat(parts, ignore_index=True) for ds, parts in sorted(frames.items())}


def load_inputs(home: Home | str | Path) -> dict[str, pd.DataFrame]:
    """Newest pseudonymised extract per feed, concatenated per data set."""
    home = _home(home)
    return read_inputs(home, newest_extracts(home))


_LAST_INPUTS: dict[tuple, dict[str, pd.DataFrame]] = {}


def _run_inputs(home: Home, run_id: str) -> dict[str, pd.DataFrame]:
    """The inputs plan() fixed for this run (so shard tasks never see a newer extract).

    The last run's inputs stay in memory, so shards linked one after another in one
    process (``councilmatch run``) read the store once; Airflow tasks each read their own.
    """
    listing = run_dir(home, run_id) / "inputs.json"
    if not listing.exists():
        raise InputError(f"run {run_id} has no {listing}: call plan() for the run first")
    files = [home.root / p for p in _read_json(home, listing)["files"]]
    key = (str(home.root), run_id, tuple((str(p), p.stat().st_mtime_ns) for p in files if p.exists()))
    if key not in _LAST_INPUTS:
        data = read_inputs(home, files)
        _LAST_INPUTS.clear()
        _LAST_INPUTS[key] = data
    return _LAST_INPUTS[key]


# ---------------------------------------------------------------------------
# Plan, link, collect
# ---------------------------------------------------------------------------


def _runnable(types: dict[str, MatchType], data: dict[str, pd.DataFrame]) -> list[MatchType]:
    out = []
    for mt in types.values():
        if any(ds not in data or data[ds].empty for ds in (mt.left, mt.right)):
            log.info("match type %s skipped: no records for %s / %s", mt.id, mt.left, mt.right)
            continue
        out.append(mt)
    return out


def plan(home: Home | str | Path, run_id: str, shards: int = 4) -> list[dict[str, Any]]:
    """Fix the run's inputs, train every match type once, and list the shard tasks."""
    home = _home(home)
    files = newest_extracts(home)
    folder = run_dir(home, run_id)
    _write_json(home, folder / "inputs.json", {"files": [str(p.relative_to(home.root)) for p in files]})
    data = read_inputs(home, files)
    types = load_matchtypes(home)
    tasks = []
    ctx = TrainingContext(pool_inputs(data) if data else None)
    for mt in _runnable(types, data):
        try:
            models = train(mt, LinkInputs(mt, data), ctx)
        except DegenerateFit as exc:
            # loud, not silent: the match type raises no flag tonight and the report says why
            log.error("%s", exc)
            _write_json(home, folder / "model" / f"{mt.id}.json",
                        {"match_type": mt.id, "fit_check": {"passed": False, "fallback": True,
                                                            "degenerate": True, "reasons": [str(exc)]}})
            continue
        _write_json(home, folder / "model" / f"{mt.id}.json", {"match_type": mt.id, **models.to_json()})
        if models.person is not None:  # the run report charts every file in model/
            _write_json(home, folder / "model" / f"{mt.id}.person.json",
                        {"match_type": mt.id, "model": "person (within the address-linked pairs)",
                         **models.person.to_json()})
        tasks += [{"match_type": mt.id, "shard": i, "shards": int(shards)} for i in range(int(shards))]
    _write_json(home, folder / "plan.json", {"tasks": tasks})
    return tasks


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
    """Score one shard of one match type; writes its candidate flags (atomically)."""
    home = _home(home)
    types = load_matchtypes(home)
    if match_type not in types:
        raise KeyError(f"unknown match type {match_type!r} (known: {', '.join(types)})")
    mt = types[match_type]
    model_file = run_dir(home, run_id) / "model" / f"{match_type}.json"
    if not model_file.exists():
        raise InputError(f"no trained model {model_file}: call plan() for run {run_id} first")
    inp = _link_inputs(mt, _run_inputs(home, run_id))
    models = load_models(mt, _read_json(home, model_file), inp)
    flags, stats = link(mt, models, inp, run_id, shard, shards)
    path = write_parquet_atomic(flags, shard_path(home, run_id, match_type, shard), home)
    return {"match_type": match_type, "shard": shard, "shards": shards, "path": str(path), **stats}


def run_date(run_id: str) -> str:
    """The ISO date a run id stands for (20261125T020000 or 2026-11-25...), else today (UTC)."""
    m = re.search(r"(\d{4})-?(\d{2})-?(\d{2})", run_id)
    if m:
        try:
            return datetime(int(m[1]), int(m[2]), int(m[3])).date().isoformat()
        except ValueError:
            pass
    return datetime.now(timezone.utc).date().isoformat()


def collect_flags(home: Home | str | Path, run_id: str, suppressed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Union the run's shards into store/flags/<run_id>.parquet, with first_seen/last_seen.

    ``suppressed``: (flag_id, evidence_hash) rows closed as no issue; a flag with
    the same evidence is not raised again, one whose evidence changed is.
    """
    home = _home(home)
    plan_file = run_dir(home, run_id) / "plan.json"
    if not plan_file.exists():
        raise InputError(f"run {run_id} has no {plan_file}: call plan() and link_shard() first")
    tasks = _read_json(home, plan_file)["tasks"]
    paths = [shard_path(home, run_id, t["match_type"], t["shard"]) for t in tasks]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"run {run_id}: {len(missing)} shard(s) not linked yet, e.g. {missing[0]}")
    parts = [read_parquet_at_rest(p, home) for p in paths]
    parts = [p for p in parts if len(p)]
    flags = pd.concat(parts, ignore_index=True) if parts else empty_flags(SHARD_COLUMNS)
    flags = flags.drop_duplicates("flag_id")
    if suppressed is not None and len(suppressed) and len(flags):
        closed = pd.MultiIndex.from_frame(suppressed[["flag_id", "evidence_hash"]].astype(str))
        flags = flags[~pd.MultiIndex.from_frame(flags[["flag_id", "evidence_hash"]]).isin(closed)]
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
