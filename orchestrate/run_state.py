"""What a run did, kept as small JSON files under ``store/runs/<run_id>/``.

Written by the pipeline (``orchestrate.pipeline``: feed outcomes, stage timings; matching
adds each match type's model under ``model/``), read by the run report. Only ids, counts, timings and
error texts (which name files and problems, never row values) go here, and
even so every file is encrypted at rest (``anonymise.at_rest``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anonymise import at_rest
from councilmatch.home import Home
from councilmatch.safepath import path_inside, sanitise_name
from matching.run import run_dir


def read_json(home: Home, path: Path) -> Any:
    """One run-state file, decrypted."""
    return at_rest.read_json(path, home)


def feed_file(home: Home, run_id: str, feed_id: str) -> Path:
    # feed ids of broken feed definitions come from folder names: made safe, never trusted
    return path_inside(run_dir(home, run_id), "feeds", sanitise_name(feed_id.replace("/", "__")) + ".json",
                       what="run state file")


def save_feed(home: Home, run_id: str, outcome: dict[str, Any]) -> None:
    at_rest.write_json(feed_file(home, run_id, outcome["feed_id"]), outcome, home)


def load_feeds(home: Home, run_id: str) -> list[dict[str, Any]]:
    folder = run_dir(home, run_id) / "feeds"
    return [read_json(home, p) for p in sorted(folder.glob("*.json"))]


def save_stage(home: Home, run_id: str, stage: str, seconds: float, detail: dict[str, Any]) -> None:
    at_rest.write_json(run_dir(home, run_id) / "stages" / f"{stage}.json",
                       {"stage": stage, "seconds": round(seconds, 3), **detail}, home)


def load_stages(home: Home, run_id: str) -> dict[str, dict[str, Any]]:
    folder = run_dir(home, run_id) / "stages"
    return {p.stem: read_json(home, p) for p in sorted(folder.glob("*.json"))}


def previous_run_id(home: Home, run_id: str) -> str | None:
    """The latest earlier run that published flags."""
    earlier = sorted(p.stem for p in home.flags.glob("*.parquet") if p.stem < run_id)
    return earlier[-1] if earlier else None
