"""Manifests, the store's commit markers: store/manifests/<council>/<dataset>/<extract_id>.json.

A manifest records what one extract gave (counts and reasons only, never a
value), so a data officer can reconcile every row and the pipeline can fall
back to the last good extract. It is written last, after the extract's
pseudonymised file, vault entry and quarantine, and encrypted at rest like them.
"""

from __future__ import annotations

from pathlib import Path

from anonymise import at_rest
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
    """Write atomically and encrypted at rest (``anonymise.at_rest``): a reader never sees half a manifest."""
    home = _home(home)
    path = manifest_path(home, manifest["feed_id"], manifest["extract_id"])
    return at_rest.write_json(path, manifest, home)


def read_manifests(home: Home, feed_id: str) -> list[dict]:
    """All manifests of a feed, oldest ingest first."""
    council, _, dataset = feed_id.partition("/")
    folder = path_inside(_home(home).manifests, council, dataset, what="manifest folder")
    if not folder.is_dir():
        return []
    found = [at_rest.read_json(p, _home(home)) for p in folder.glob("*.json") if not p.name.startswith(".")]
    return sorted(found, key=lambda m: (m.get("ingested_at", ""), m.get("extract_id", "")))
