"""The nightly job as plain functions: the Airflow DAG and ``councilmatch run`` both call these.

Every function takes the data home and plain values, returns only paths, ids
and counts (safe for XComs), and is idempotent: running it twice for the same
run changes nothing.

    discover_feeds(home)                    -> list[str]          feed ids "<council>/<dataset>"
    ingest_feed(home, feed_id, run_id)      -> dict               ingest + pseudonymise the newest extract
                                                                  (falls back to the last good extract)
    plan_link(home, run_id, full=False)     -> list[dict]         [{"match_type": id, "shard": i, "shards": n}, ...]
                                                                  (reuses or trains each match type's model; links
                                                                  only what changed unless full=True)
    link_shard(home, run_id, match_type, shard, shards) -> dict   candidate flags of one shard
    publish_run(home, run_id)               -> dict               flags parquet + review store
    write_report(home, run_id)              -> dict               reports/<run_id>.html and .json
    run_all(home, run_id=None)              -> dict               all of the above on this machine (feeds and
                                                                  shards spread over its cores)
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from councilmatch.home import Home
from councilmatch.settings import load_settings
from ingest.feeds import load_feeds
from matching.run import collect_flags, plan, run_dir
from matching.run import link_shard as _link_shard
from orchestrate import run_state
from orchestrate.feed_pipeline import ingest_newest, last_good
from orchestrate.parallel import Progress, default_workers, run_tasks
from orchestrate.report import write_run_report

log = logging.getLogger(__name__)

HomeLike = Home | str | Path


def _home(home: HomeLike) -> Home:
    return home if isinstance(home, Home) else Home.resolve(home)


def make_run_id(when: datetime | None = None) -> str:
    """A filesystem-safe run id that sorts by time, e.g. ``20261125T020000``."""
    when = when or datetime.now(timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")


def safe_run_id(run_id: str) -> str:
    """Airflow run ids contain ':' and '+'; keep them readable but path-safe."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_")


# ---------------------------------------------------------------------------
# Feeds: ingest + pseudonymise
# ---------------------------------------------------------------------------


def discover_feeds(home: HomeLike) -> list[str]:
    """Feed ids read from the feed definitions at run time (a new YAML file needs no DAG change).

    A feed whose YAML is broken is still listed (by its path), so that its own
    ingest task fails alone, falls back to its last good extract and is reported.
    """

    home = _home(home)
    invalid: dict = {}
    feeds = set(load_feeds(home, invalid=invalid))
    for path in invalid:
        log.warning("feed definition %s is invalid; its feed will fall back to its last good extract", path)
        feeds.add(f"{Path(path).parent.name}/{Path(path).stem}")
    return sorted(feeds)


def ingest_feed(home: HomeLike, feed_id: str, run_id: str) -> dict[str, Any]:
    """Ingest and pseudonymise a feed's newest extract; on failure fall back to its last good one.

    Never raises for a bad extract: one failing feed must not stop the others.
    The result (and the run state) carries only ids, counts and the error text,
    which names the file and the problem but no row values.
    """

    home = _home(home)
    started = time.perf_counter()
    try:
        outcome = ingest_newest(home, feed_id, load_settings(home))
    except Exception as exc:  # noqa: BLE001 - recorded and reported, never lost
        log.warning("feed %s failed: %s", feed_id, exc)

        outcome = {"feed_id": feed_id, "status": "failed", "error": str(exc), **last_good(home, feed_id)}
        if outcome.get("extract_id"):
            outcome["status"] = "fell_back"
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    run_state.save_feed(home, run_id, outcome)
    return outcome


# ---------------------------------------------------------------------------
# Linking
# ---------------------------------------------------------------------------


def plan_link(home: HomeLike, run_id: str, full: bool = False, retrain: bool = False,
              workers: int | None = None) -> list[dict[str, Any]]:
    """Get each match type's model once (reused, or re-trained when due) and list the shards to
    link: only what changed since the last linked run, unless ``full`` (a full re-run). Models
    due are trained on ``workers`` threads (default: settings.yaml ``workers``, else one per core)."""

    home = _home(home)
    started = time.perf_counter()
    settings = load_settings(home)
    shards = plan(home, run_id, shards=settings.link_shards, full=full, retrain=retrain, settings=settings.models,
                  workers=workers or settings.workers or default_workers())
    planned = run_state.read_json(home, run_dir(home, run_id) / "plan.json")
    run_state.save_stage(home, run_id, "plan", time.perf_counter() - started,
                         {"shards": len(shards), "full_requested": bool(full), "match_types": planned.get("types", {})})
    return shards


def link_shard(home: HomeLike, run_id: str, match_type: str, shard: int, shards: int) -> dict[str, Any]:
    home = _home(home)
    return _link_shard(home, run_id, match_type, shard, shards)


def publish_run(home: HomeLike, run_id: str) -> dict[str, Any]:
    """Collect the shards into ``store/flags/<run_id>.parquet`` and publish to the review store.

    Flags an investigator closed as "no issue" are not raised again unless their
    evidence changed; publishing never overwrites an investigator's decision.
    """
    # the review store's modules (SQLAlchemy, Alembic) are imported by the one task that uses them,
    # not by every feed and shard task that imports this module (tests/e2e/test_task_imports.py)
    from review import audit
    from review.store import publish_flags, suppressed_flags

    home = _home(home)
    started = time.perf_counter()
    db_url = home.review_db_url
    audit.bind(db_url, home.root)  # the review audit key and checkpoints live in the data home
    flags = collect_flags(home, run_id, suppress=partial(suppressed_flags, db_url))
    counts = publish_flags(db_url, flags)
    per_type = flags.groupby("match_type").size().to_dict() if len(flags) else {}
    result = {
        "run_id": run_id,
        "flags": int(len(flags)),
        "flags_path": str(home.flags_path(run_id)),
        "per_match_type": {str(k): int(v) for k, v in per_type.items()},
        "review_store": {k: int(v) for k, v in counts.items()},
        "audit_checkpoint": audit.latest_checkpoint(db_url),  # the signed tip of the review audit trail
    }
    run_state.save_stage(home, run_id, "publish", time.perf_counter() - started, result)
    return result


def write_report(home: HomeLike, run_id: str) -> dict[str, Any]:
    return write_run_report(_home(home), run_id)


# ---------------------------------------------------------------------------
# The whole night, in-process
# ---------------------------------------------------------------------------


def ingest_all(home: HomeLike, run_id: str, workers: int = 1, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every feed's ``ingest_feed``, on up to ``workers`` processes (one feed's failure stops no other)."""
    home = _home(home)
    calls = [(str(home.root), feed_id, run_id) for feed_id in discover_feeds(home)]
    return run_tasks(ingest_feed, calls, workers, progress, "ingest")


def link_all(home: HomeLike, run_id: str, shards: list[dict[str, Any]], workers: int = 1,
             progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every planned shard's ``link_shard``, on up to ``workers`` processes.

    A match type's shards stay together in one process, one after another: they read the same
    data sets, which a process reads once (``matching.run``), not once per worker."""
    home = _home(home)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for s in shards:
        by_type.setdefault(s["match_type"], []).append(s)
    calls = [(str(home.root), run_id, group) for group in by_type.values()]
    done = run_tasks(_link_shards, calls, workers, progress, "link")
    return [result for group in done for result in group]


def _link_shards(home: HomeLike, run_id: str, shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [link_shard(home, run_id, s["match_type"], s["shard"], s["shards"]) for s in shards]


def run_all(home: HomeLike, run_id: str | None = None, progress: Progress | None = None, full: bool = False,
            retrain: bool = False, workers: int | None = None) -> dict[str, Any]:
    """Run every stage on this machine with the same functions the DAG calls (``full``: re-link
    the whole pool; ``retrain``: re-train every model). Feeds and link shards are spread over
    ``workers`` processes (default: settings.yaml ``workers``, else one per core)."""
    home = _home(home)
    run_id = safe_run_id(run_id or make_run_id())
    workers = workers or load_settings(home).workers or default_workers()
    timings: dict[str, float] = {}

    t = time.perf_counter()
    feeds = ingest_all(home, run_id, workers, progress)
    timings["ingest+pseudonymise"] = time.perf_counter() - t

    t = time.perf_counter()
    shards = plan_link(home, run_id, full=full, retrain=retrain, workers=workers)
    timings["plan+train"] = time.perf_counter() - t

    t = time.perf_counter()
    link_all(home, run_id, shards, workers, progress)
    timings["link"] = time.perf_counter() - t
    run_state.save_stage(home, run_id, "link", timings["link"], {"shards": len(shards)})

    t = time.perf_counter()
    published = publish_run(home, run_id)
    timings["publish"] = time.perf_counter() - t

    t = time.perf_counter()
    report = write_report(home, run_id)
    timings["report"] = time.perf_counter() - t

    return {"run_id": run_id, "feeds": feeds, "published": published, "report": report, "timings": timings}
