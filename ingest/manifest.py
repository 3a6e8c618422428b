"""Ingest manifests: store/manifests/<council>/<dataset>/<extract_id>.json.

A manifest records what one extract gave (counts and reasons only, never a
value), so a data officer can reconcile every row and the pipeline can fall
back to the last good extract.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from councilmatch.commit import place
from councilmatch.home import Home
from councilmatch.safepath import path_inside, safe_name


def _home(home: Home | Path | str) -> Home:
    return home if isinstance(home, Home) else Home.resolve(home)


def manifest_path(home: Home, feed_id: str, extract_id: str) -> Path:
    """Raises ``UnsafePathError`` for a council, data set or extract id that could leave the folder."""
    council, _, dataset = feed_id.partition("/")
    return path_inside(_home(home).manifests, safe_name(council, "council"), safe_name(dataset, "dataset"),
                       safe_name(extract_id, "extract id") + ".json", what="manifest")


def write_manifest(home: Home, manifest: dict) -> Path:
    """Write atomically (temp file + rename): a reader never sees half a manifest."""
    path = manifest_path(home, manifest["feed_id"], manifest["extract_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        place(tmp, path)  # now, or last in the feed's staged commit
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_manifests(home: Home, feed_id: str) -> list[dict]:
    """All manifests of a feed, oldest ingest first."""
    council, _, dataset = feed_id.partition("/")
    folder = path_inside(_home(home).manifests, council, dataset, what="manifest folder")
    if not folder.is_dir():
        return []
    found = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json") if not p.name.startswith(".")]
    return sorted(found, key=lambda m: (m.get("ingested_at", ""), m.get("extract_id", "")))
