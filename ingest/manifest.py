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

from councilmatch.home import Home


def _home(home: Home | Path | str) -> Home:
    return home if isinstance(home, Home) else Home.resolve(home)


def manifest_path(home: Home, feed_id: str, extract_id: str) -> Path:
    council, _, dataset = feed_id.partition("/")
    return _home(home).manifests / council / dataset / f"{extract_id}.json"


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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_manifests(home: Home, feed_id: str) -> list[dict]:
    """All manifests of a feed, oldest ingest first."""
    council, _, dataset = feed_id.partition("/")
    folder = _home(home).manifests / council / dataset
    if not folder.is_dir():
        return []
    found = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json") if not p.name.startswith(".")]
    return sorted(found, key=lambda m: (m.get("ingested_at", ""), m.get("extract_id", "")))
