"""At-source mode: a council pseudonymises on its own machine and sends only tokens.

Council side (``councilmatch pseudonymise``): ingest the raw extract with the feed
definition, tokenise with the shared keyring, write one pseudonymised Parquet file
(key id, schema version and the ingest counts in its metadata); quarantined rows
stay with the council, encrypted in its own home. Hub side: a feed with
``format: pseudonymised`` has such files in its landing folder and
``accept_at_source`` checks each one strictly before it enters the store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from anonymise.errors import SchemaError, UnknownKeyError
from anonymise.keys import Keyring, load_keyring
from anonymise.pseudonymised import META_KEY, SCHEMA, SCHEMA_VERSION, check_key_ids, from_table, to_table, write_table
from anonymise.quarantine import write_quarantine
from anonymise.reuse import RAW_DIGEST_PURPOSE
from anonymise.tokens import ENCODING, pseudonymise
from councilmatch.home import Home
from councilmatch.safepath import is_safe_name
from ingest.extract import RowMemory, ingest_extract
from ingest.feeds import load_feed
from ingest.validate import has_control_characters

MODE = "at_source"


def pseudonymise_at_source(home: Home, feed_path: Path, extract: Path, out: Path) -> dict:
    """Ingest + pseudonymise one extract locally; write only ``out`` (Parquet). Returns the counts."""
    feed = load_feed(Path(feed_path))
    if feed.format == "pseudonymised":
        raise SchemaError(f"{feed_path}: at-source mode needs the feed of the raw extract "
                          "(csv/xlsx/parquet), not the hub's 'pseudonymised' feed")
    keyring = load_keyring(home)  # fail fast before any work
    # as the hub ingests: placeholders judged over the extract and tokenised as missing
    result = ingest_extract(feed, Path(extract), rows=RowMemory(keyring.subkey(RAW_DIGEST_PURPOSE)))
    frame = pseudonymise(result.for_pseudonymising(), keyring, result.extract_id)
    manifest = result.manifest()
    table = to_table(frame, key_id=keyring.key_id, extract_id=result.extract_id)
    write_table(table, Path(out), extra_meta={
        "mode": MODE, "encoding": ENCODING, "council": feed.council, "dataset": feed.dataset,
        "feed_version": feed.version,
        "rows_in": result.rows_in, "quarantined": len(result.quarantined), "manifest": manifest,
    })
    if len(result.quarantined):
        write_quarantine(home, keyring, feed.council, feed.dataset, result.extract_id, result.quarantined)
    return {"out": str(out), "extract_id": result.extract_id, "key_id": keyring.key_id,
            "rows_in": result.rows_in, "accepted": len(frame), "quarantined": len(result.quarantined)}


def at_source_metadata(path: Path) -> dict:
    """The councilmatch metadata of an at-source file (counts and ingest manifest, no values)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SchemaError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = (schema.metadata or {}).get(META_KEY)
    if not raw:
        raise SchemaError(f"{path}: no councilmatch metadata; not produced by `councilmatch pseudonymise`")
    return json.loads(raw)


def accept_at_source(path: Path, keyring: Keyring, feed) -> pd.DataFrame:
    """Check an at-source file against the contract and the feed; return it as the hub would have made it.

    Refuses (SchemaError / UnknownKeyError, naming the file) on: other columns or types, a
    schema version or council/data set that does not match the feed, or an unknown key id.
    """
    path = Path(path)
    meta = at_source_metadata(path)
    if not isinstance(meta, dict):
        raise SchemaError(f"{path}: councilmatch metadata is not a mapping")
    # the council controls these names; the hub files the extract under them, so they must be
    # plain names (an extract_id of '../E09000007/tenancy_x' would overwrite another council's file)
    if not is_safe_name(meta.get("extract_id")):
        raise SchemaError(f"{path}: extract_id {str(meta.get('extract_id'))[:80]!r} in the file metadata is not a safe "
                          "name (letters, digits, _ . - only, not starting with a dot); refused")
    if not is_safe_name(meta.get("key_id")):
        raise SchemaError(f"{path}: key_id {str(meta.get('key_id'))[:80]!r} in the file metadata is not a safe name; refused")
    if str(meta.get("schema_version")) != SCHEMA_VERSION:
        raise SchemaError(f"{path}: schema version {meta.get('schema_version')!r}; this hub reads {SCHEMA_VERSION!r}")
    if meta.get("encoding") != ENCODING:
        # same columns, another derivation (an upgrade's scanned-address reading): its tokens would
        # silently never meet the hub's
        raise SchemaError(f"{path}: tokens of encoding {str(meta.get('encoding'))[:40]!r}, this hub makes "
                          f"{ENCODING!r}: tokens of two encodings do not compare; re-make the file with the "
                          "hub's version of `councilmatch pseudonymise`")
    schema = pq.read_schema(path)
    got = [(f.name, str(f.type)) for f in schema]
    want = [(f.name, str(f.type)) for f in SCHEMA]
    if got != want:
        diff = sorted(set(got) ^ set(want))[:6] or "column order"
        raise SchemaError(f"{path}: columns/types differ from the pseudonymised contract: {diff}")
    for field in ("council", "dataset"):
        if meta.get(field) != getattr(feed, field):
            raise SchemaError(f"{path}: file is for {field} {meta.get(field)!r}, feed {feed.feed_id} expects "
                              f"{getattr(feed, field)!r}")
    if not keyring.has(str(meta.get("key_id"))):
        raise UnknownKeyError(f"{path}: made under key id {meta.get('key_id')!r}, which the hub keyring "
                              f"does not hold (have {list(keyring.key_ids)})")
    frame = from_table(pq.read_table(path))
    for field in ("council", "dataset"):
        bad = frame[field] != getattr(feed, field)
        if bad.any():
            raise SchemaError(f"{path}: row {int(bad.to_numpy().argmax())} has {field} "
                              f"{frame[field][bad].iloc[0]!r}; feed {feed.feed_id} expects {getattr(feed, field)!r}")
    if len(frame):
        if set(frame["extract_id"]) != {meta.get("extract_id")}:
            raise SchemaError(f"{path}: extract_id column disagrees with the file metadata")
        if set(frame["key_id"]) != {meta.get("key_id")}:
            raise SchemaError(f"{path}: key_id column disagrees with the file metadata")
        check_key_ids([frame], keyring)

        for column in ("record_id",):
            text = frame[column].astype("string[pyarrow]")
            bad = (has_control_characters(text, is_id=True) | text.isna()).to_numpy(dtype=bool)
            if bad.any():
                raise SchemaError(f"{path}: row {int(bad.argmax())} has a missing {column} or one holding a "
                                  "control character; `councilmatch pseudonymise` quarantines those, so the file "
                                  "was not made by it; refused")
    return frame
