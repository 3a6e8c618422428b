"""One feed's nightly step: newest extract -> ingest -> pseudonymise -> store, vault, quarantine, manifest.

The manifest is written last and acts as the commit marker: an extract whose
manifest exists (same checksum, same key id) is not processed again, so
re-running a night is safe.

Hostile input: the extract is read in a child process under resource limits
(``orchestrate.isolate``), so even an abort of a native reader fails only this
feed; vault, quarantine, pseudonymised file and manifest are then written as one
staged commit (``councilmatch.fileio``), so a feed that fails leaves nothing behind.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from anonymise import reuse
from anonymise.at_source import MODE as AT_SOURCE, accept_at_source, at_source_metadata
from anonymise.custody import is_current, repseudonymise, stale_manifests
from anonymise.errors import SchemaError
from anonymise.keys import load_keyring
from anonymise.manifest import read_manifests, write_manifest
from anonymise.pseudonymised import write_pseudonymised, write_pseudonymised_table
from anonymise.quarantine import dispose_raw_extract, write_quarantine
from anonymise.tokens import ENCODING
from anonymise.vault import Vault
from councilmatch.fileio import staged
from councilmatch.home import Home
from councilmatch.safepath import safe_name
from councilmatch.settings import HomeSettings
from ingest.extract import ingest_extract
from ingest.feeds import feed_path, load_feed, newest_extract
from ingest.quality import with_change
from matching.minimisation import store_policy
from orchestrate.isolate import run_isolated


def last_good(home: Home, feed_id: str) -> dict[str, Any]:
    """The newest successfully ingested extract of a feed (from its manifests), or {}."""
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


def ingest_newest(home: Home, feed_id: str, settings: HomeSettings) -> dict[str, Any]:
    feed = load_feed(feed_path(home, feed_id))  # only this feed's YAML: another broken one must not stop it
    keyring = load_keyring(home)  # fails fast (missing or wrong KEK) before anything is written
    extract = newest_extract(home, feed)
    if extract is None:

        if stale_manifests(home, keyring.key_id, feed_id):  # after `keys rotate` or an upgrade: re-make from the archive
            failed = [r for r in repseudonymise(home, store_policy(home), feed_id, newest_only=True) if r["status"] != "repseudonymised"]
            if failed:
                raise RuntimeError(f"{feed_id}: stored extract(s) under an old key or encoding could not be re-pseudonymised: "
                                   + "; ".join(f"{r['extract_id']}: {r.get('error', r['status'])}" for r in failed))
        previous = last_good(home, feed_id)
        if not previous:
            raise FileNotFoundError(f"{feed_id}: no extract in {home.landing / feed.council / feed.dataset} and none ingested before")
        return {"feed_id": feed_id, "status": "no_new_extract", **previous}
    if feed.format == "pseudonymised":
        return _accept_at_source(home, feed, extract, keyring, settings)
    return _ingest_raw(home, feed, extract, keyring, settings)


def _already_done(home: Home, feed_id: str, extract_id: str, key_id: str) -> dict[str, Any] | None:
    """The manifest of this extract, if it is stored and current (``custody.is_current``), or None."""
    for m in read_manifests(home, feed_id):
        if (m.get("extract_id") == extract_id and is_current(m, key_id)
                and Path(m.get("pseudonymised_path", "")).exists()):
            return m
    return None


def read_isolated(fn, *args: Any, extract: Path, settings: HomeSettings) -> Any:
    """``fn(*args)`` (a reader of council files) in a child process under the home's limits."""
    if not settings.ingest.isolate_readers:
        return fn(*args)
    return run_isolated(fn, *args, what=str(extract), memory_mb=settings.ingest.reader_memory_mb,
                        timeout_s=settings.ingest.reader_timeout_seconds)


def _ingest_raw(home: Home, feed, extract: Path, keyring, settings: HomeSettings) -> dict[str, Any]:
    # a re-sent extract: rows the feed's last extract accepted unchanged are not validated, standardised,
    # pseudonymised or profiled again (anonymise.reuse); every row is still accepted or quarantined
    policy = store_policy(home)
    last = last_good(home, feed.feed_id)
    previous = reuse.load_previous(home, feed.feed_id, last.get("extract_id"), last.get("path"), keyring, policy)
    memory = reuse.row_memory(home, feed.council, feed.dataset, keyring, previous)
    result = read_isolated(partial(ingest_extract, rows=memory), feed, extract, extract=extract, settings=settings)
    done = _already_done(home, feed.feed_id, result.extract_id, keyring.key_id)
    if done:
        dispose_raw_extract(home, keyring, extract, settings.raw_extracts)
        return _outcome(feed.feed_id, "unchanged", done)

    rows = result.rows
    frame, digests, reused = reuse.pseudonymise_reusing(result.for_pseudonymising(), keyring, result.extract_id, home,
                                                        previous, policy)
    table, digests = reuse.with_skipped_rows(frame, digests, rows, previous, result.extract_id, keyring.key_id)
    # one commit, in this order: a crash during the renames can leave a vault entry
    # without its pseudonymised file, never a pseudonymised record nobody can re-identify

    with staged():
        vault = Vault(home, keyring)
        clear, carried = reuse.vault_rows(result.vault_frame(), rows, memory, vault, feed.council, feed.dataset,
                                          previous)
        vault.store(feed.council, result.extract_id, clear, carried,  # optional values as sent
                    refs=table.column("record_id"))  # the references the store holds, made once
        write_quarantine(home, keyring, feed.council, feed.dataset, result.extract_id, result.quarantined)
        path = write_pseudonymised_table(home, table, reuse.skipped_index(rows, previous))
        if table.num_rows:
            reuse.save_digests(home, feed.feed_id, result.extract_id, keyring, digests, policy, rows)
        manifest = {**result.manifest(), "extract_id": result.extract_id, "key_id": keyring.key_id,
                    "encoding": ENCODING, "pseudonymised_path": str(path), "rows_reused": reused + rows.reused,
                    "rows_skipped": rows.reused}
        manifest["quality"] = with_change(read_manifests(home, feed.feed_id), result.extract_id, result.quality)
        write_manifest(home, manifest)
    dispose_raw_extract(home, keyring, extract, settings.raw_extracts)
    return _outcome(feed.feed_id, "ingested", manifest)


def _council_counts(extract: Path, meta: dict[str, Any], accepted: int) -> dict[str, Any]:
    """The counts a council's at-source file declares, checked: integers and a reason -> count map."""
    manifest = meta.get("manifest", {})
    manifest = manifest if isinstance(manifest, dict) else {}
    rows_in, quarantined = manifest.get("rows_in", accepted), manifest.get("quarantined", 0)
    reasons = manifest.get("quarantine_reasons", {})
    if not (isinstance(rows_in, int) and isinstance(quarantined, int) and 0 <= quarantined <= rows_in
            and isinstance(reasons, dict) and len(reasons) <= 1000
            and all(isinstance(k, str) and len(k) <= 200 and isinstance(v, int) for k, v in reasons.items())):
        raise SchemaError(f"{extract}: the ingest counts in the file metadata are not valid (integers and a "
                          "map of reason -> count expected); refused")
    set_missing = manifest.get("set_missing", {})
    quality = manifest.get("quality", {})
    if not (isinstance(set_missing, dict) and len(set_missing) <= 1000 and isinstance(quality, dict)
            and len(str(quality)) <= 200_000):
        raise SchemaError(f"{extract}: the data-quality figures in the file metadata are not valid; refused")
    return {"rows_in": rows_in, "quarantined": quarantined, "quarantine_reasons": reasons,
            "set_missing": set_missing, "quality": quality}


def _read_at_source(extract: Path, keyring, feed) -> tuple[Any, dict[str, Any]]:
    """The checked frame and the metadata of an at-source file: both read in the reader process,
    so the hub process never parses the council's Parquet itself."""

    return accept_at_source(extract, keyring, feed), at_source_metadata(extract)


def _accept_at_source(home: Home, feed, extract: Path, keyring, settings: HomeSettings) -> dict[str, Any]:
    """A council's own pre-pseudonymised Parquet: checked (in a child process), then stored as if ingested here."""
    import hashlib
    from datetime import datetime, timezone


    frame, meta = read_isolated(_read_at_source, extract, keyring, feed, extract=extract, settings=settings)
    extract_id = safe_name(str(meta.get("extract_id")), "extract id")  # accept_at_source checked it; never trusted twice
    done = _already_done(home, feed.feed_id, extract_id, keyring.key_id)
    if done:
        return _outcome(feed.feed_id, "unchanged", done)
    # The council's own ingest counts travel in the file's metadata, so counts reconcile here too.
    council_manifest = _council_counts(extract, meta, len(frame))

    with staged():
        # Only the record references go to the vault (the council keeps the identifiers), so the
        # store's keyed reference of a flagged record still maps back to the council's own id.
        if len(frame):
            Vault(home, keyring).store(feed.council, extract_id, frame[["council", "dataset", "record_id"]])
        path = write_pseudonymised(home, frame, store_policy(home))
        manifest = {
            "feed_id": feed.feed_id, "feed_version": feed.version, "extract_file": extract.name,
            "extract_id": extract_id, "checksum": hashlib.sha256(extract.read_bytes()).hexdigest(),
            "rows_in": council_manifest["rows_in"], "accepted": len(frame),
            "quarantined": council_manifest["quarantined"],
            "quarantine_reasons": council_manifest["quarantine_reasons"],
            "set_missing": council_manifest["set_missing"], "quality": council_manifest["quality"],
            "mode": AT_SOURCE, "key_id": keyring.key_id, "pseudonymised_path": str(path),
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
        "rows_reused": int(manifest.get("rows_reused", 0)),
        "rows_skipped": int(manifest.get("rows_skipped", 0)),
        "quarantined": int(manifest.get("quarantined", 0)),
        "quarantine_reasons": manifest.get("quarantine_reasons", {}),
        "set_missing": manifest.get("set_missing", {}),
        "quality": manifest.get("quality", {}),
    }
