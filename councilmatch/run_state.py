"""What a run did, kept as small JSON files under ``store/runs/<run_id>/``.

Written by the stages, read by the run report. Only ids, counts, timings and
error texts (which name files and problems, never row values) go here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from councilmatch.home import Home
from councilmatch.safepath import path_inside, sanitise_name


def run_dir(home: Home, run_id: str) -> Path:
    return path_inside(home.runs, run_id, what="run folder")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def feed_file(home: Home, run_id: str, feed_id: str) -> Path:
    # feed ids of broken feed definitions come from folder names: made safe, never trusted
    return path_inside(run_dir(home, run_id), "feeds", sanitise_name(feed_id.replace("/", "__")) + ".json",
                       what="run state file")


def save_feed(home: Home, run_id: str, outcome: dict[str, Any]) -> None:
    _write_json(feed_file(home, run_id, outcome["feed_id"]), outcome)


def load_feeds(home: Home, run_id: str) -> list[dict[str, Any]]:
    folder = run_dir(home, run_id) / "feeds"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def save_stage(home: Home, run_id: str, stage: str, seconds: float, detail: dict[str, Any]) -> None:
    _write_json(run_dir(home, run_id) / "stages" / f"{stage}.json",
                {"stage": stage, "seconds": round(seconds, 3), **detail})


def load_stages(home: Home, run_id: str) -> dict[str, dict[str, Any]]:
    folder = run_dir(home, run_id) / "stages"
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def previous_run_id(home: Home, run_id: str) -> str | None:
    """The latest earlier run that published flags."""
    earlier = sorted(p.stem for p in home.flags.glob("*.parquet") if p.stem < run_id)
    return earlier[-1] if earlier else None
