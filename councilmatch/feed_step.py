"""One feed's nightly step: newest extract -> ingest -> pseudonymise -> store, vault, quarantine, manifest.

The manifest is written last and acts as the commit marker: an extract whose
manifest exists (same checksum, same key id) is not processed again, so
re-running a night is safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from councilmatch.home import Home
from councilmatch.settings import Settings


def last_good(home: Home, feed_id: str) -> dict[str, Any]:
    """The newest successfully ingested extract of a feed (from its manifests), or {}."""
    from ingest.manifest import read_manifests

    manifests = [m for m in read_manifests(home, feed_id) if m.get("pseudonymised_path")]
    if not manifests:
        return {}
    m = max(manifests, key=lambda m: (m.get("ingested_at", ""), m.get("extract_id", "")))
    return {
        "extract_id": m["extract_id"],
        "path": m["pseudonymised_path"],
        "rows_in": m.get("rows_in", 0),
        "accepted": m.get("accepted", 0),
        "quarantined": m.get("quarantined", 0),
    }


def ingest_newest(home: Home, feed_id: str, settings: Settings) -> dict[str, Any]:
    from anonymise.keys import load_keyring
    from ingest.feeds import feed_path, load_feed, newest_extract

    feed = load_feed(feed_path(home, feed_id))  # only this feed's YAML: another broken one must not stop it
    keyring = load_keyring(home)  # fails fast (missing or wrong KEK) before anything is written
    extract = newest_extract(home, feed)
    if extract is None:
        from anonymise.custody import repseudonymise, stale_manifests

        if stale_manifests(home, keyring.key_id, feed_id):  # after `keys rotate`: re-make from the archive
            failed = [r for r in repseudonymise(home, feed_id, newest_only=True) if r["status"] != "repseudonymised"]
            if failed:
                raise RuntimeError(f"{feed_id}: stored extract(s) under an old key could not be re-pseudonymised: "
                                   + "; ".join(f"{r['extract_id']}: {r.get('error', r['status'])}" for r in failed))
        previous = last_good(home, feed_id)
        if not previous:
            raise FileNotFoundError(f"{feed_id}: no extract in {home.landing / feed.council / feed.dataset} and none ingested before")
        return {"feed_id": feed_id, "status": "no_new_extract", **previous}
    if feed.format == "pseudonymised":
        return _accept_at_source(home, feed, extract, keyring)
    return _ingest_raw(home, feed, extract, keyring, settings)


def _already_done(home: Home, feed_id: str, extract_id: str, key_id: str) -> dict[str, Any] | None:
    from ingest.manifest import read_manifests

    for m in read_manifests(home, feed_id):
        if m.get("extract_id") == extract_id and m.get("key_id") == key_id and Path(m.get("pseudonymised_path", "")).exists():
            return m
    return None


def _ingest_raw(home: Home, feed, extract: Path, keyring, settings: Settings) -> dict[str, Any]:
    from anonymise.store import write_pseudonymised
    from anonymise.tokens import pseudonymise
    from anonymise.vault import Vault, dispose_raw_extract, write_quarantine
    from ingest.extract import ingest_extract
    from ingest.manifest import write_manifest

    result = ingest_extract(feed, extract)
    done = _already_done(home, feed.feed_id, result.extract_id, keyring.key_id)
    if done:
        dispose_raw_extract(home, keyring, extract, settings.raw_extracts)
        return _outcome(feed.feed_id, "unchanged", done)

    frame = pseudonymise(result.accepted, keyring, result.extract_id)
    path = write_pseudonymised(home, frame)
    Vault(home, keyring).store(feed.council, result.extract_id, result.accepted)
    write_quarantine(home, keyring, feed.council, feed.dataset, result.extract_id, result.quarantined)
    manifest = {**result.manifest(), "extract_id": result.extract_id, "key_id": keyring.key_id,
                "pseudonymised_path": str(path)}
    write_manifest(home, manifest)
    dispose_raw_extract(home, keyring, extract, settings.raw_extracts)
    return _outcome(feed.feed_id, "ingested", manifest)


def _accept_at_source(home: Home, feed, extract: Path, keyring) -> dict[str, Any]:
    """A council's own pre-pseudonymised Parquet: checked, then stored as if ingested here."""
    import hashlib
    from datetime import datetime, timezone

    from anonymise.at_source import accept_at_source, at_source_metadata
    from anonymise.store import write_pseudonymised
    from ingest.manifest import write_manifest

    frame = accept_at_source(extract, keyring, feed)
    extract_id = str(frame["extract_id"].iloc[0]) if len(frame) else extract.stem
    done = _already_done(home, feed.feed_id, extract_id, keyring.key_id)
    if done:
        return _outcome(feed.feed_id, "unchanged", done)
    path = write_pseudonymised(home, frame)
    # Only the record references go to the vault (the council keeps the identifiers), so the
    # store's keyed reference of a flagged record still maps back to the council's own id.
    from anonymise.vault import Vault

    if len(frame):
        Vault(home, keyring).store(feed.council, extract_id, frame[["council", "dataset", "record_id"]])
    # The council's own ingest counts travel in the file's metadata, so counts reconcile here too.
    council_manifest = at_source_metadata(extract).get("manifest", {})
    manifest = {
        "feed_id": feed.feed_id, "feed_version": feed.version, "extract_file": extract.name,
        "extract_id": extract_id, "checksum": hashlib.sha256(extract.read_bytes()).hexdigest(),
        "rows_in": int(council_manifest.get("rows_in", len(frame))), "accepted": len(frame),
        "quarantined": int(council_manifest.get("quarantined", 0)),
        "quarantine_reasons": council_manifest.get("quarantine_reasons", {}),
        "mode": "at_source", "key_id": keyring.key_id, "pseudonymised_path": str(path),
        "ingested_at": datetime.now(timezone.utc).isoformat(),
    }
    write_manifest(home, manifest)
    return _outcome(feed.feed_id, "ingested", manifest)


def _outcome(feed_id: str, status: str, manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "status": status,
        "extract_id": manifest.get("extract_id"),
        "path": manifest.get("pseudonymised_path"),
        "rows_in": int(manifest.get("rows_in", 0)),
        "accepted": int(manifest.get("accepted", 0)),
        "quarantined": int(manifest.get("quarantined", 0)),
        "quarantine_reasons": manifest.get("quarantine_reasons", {}),
    }
