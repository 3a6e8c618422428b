"""At-source mode: a council pseudonymises locally; the hub accepts only a file that fits."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anonymise.at_source import accept_at_source, at_source_metadata
from anonymise.errors import SchemaError, UnknownKeyError
from anonymise.keys import init_keys, keyring_path, load_keyring
from anonymise.pseudonymised import from_table, read_pseudonymised, to_table
from anonymise.tokens import pseudonymise
from councilmatch.home import Home
from ingest.extract import RowMemory, ingest_extract
from ingest.feed import FeedDefinition
from ingest.feeds import load_feed
from matching.minimisation import store_policy
from orchestrate.cli import app

BAD_ROW = ["E999", "Zebedee", "Quill", "31/02/1980", "XX", "1 Road", "London", "E1 6AN", "", "", "", "", "01/04/2024"]


@pytest.fixture
def council_side(home, tmp_path, people, helpers):
    """A council's own home holding a copy of the hub's keyring, a feed and a raw extract."""
    council_home = Home(tmp_path / "council").ensure()
    council_home.keys.mkdir(parents=True)
    shutil.copy(keyring_path(home), keyring_path(council_home))
    feed, extract = helpers.write_payroll(council_home, helpers.CAMDEN, people[:15], extra_rows=[BAD_ROW])
    return council_home, feed, extract


def _run_cli(council_home, feed, extract, out):
    result = CliRunner().invoke(app, ["pseudonymise", "--feed", str(feed), "--extract", str(extract),
                                      "--out", str(out), "--home", str(council_home.root)])
    assert result.exit_code == 0, result.output
    return result


def test_at_source_output_equals_hub_side_pseudonymisation(home, council_side, tmp_path, helpers) -> None:
    council_home, feed_path, extract = council_side
    out = tmp_path / "to_hub" / "payroll.parquet"
    result = _run_cli(council_home, feed_path, extract, out)
    assert '"quarantined": 1' in result.output and '"accepted": 15' in result.output
    meta = at_source_metadata(out)
    assert meta["key_id"] == "k1" and meta["schema_version"] == "1" and meta["rows_in"] == 16
    assert meta["manifest"]["quarantined"] == 1
    # only the pseudonymised file left the council: its clear values are not in it
    data = out.read_bytes()
    assert b"QUILL" not in data.upper() and b"ZEBEDEE" not in data.upper()

    hub_feed = FeedDefinition(council=helpers.CAMDEN, dataset="payroll", format="pseudonymised")
    accepted = accept_at_source(out, load_keyring(home), hub_feed)
    # what the hub would have made from the raw extract itself (orchestrate.feed_pipeline)
    ingested = ingest_extract(load_feed(feed_path), extract, rows=RowMemory(b"any"))
    hub = pseudonymise(ingested.for_pseudonymising(), load_keyring(home), ingested.extract_id)
    expected = from_table(to_table(hub))
    pd.testing.assert_frame_equal(accepted, expected)
    # quarantined rows stayed at the council, encrypted
    assert list(council_home.quarantine.rglob("*.enc"))


def test_at_source_tokenises_a_placeholder_as_missing_as_the_hub_does(home, tmp_path, people, helpers) -> None:
    """A forename 'UNKNOWN' is a placeholder: at source as at the hub its token is 0 (missing), so
    two records holding it do not agree on a forename."""
    council_home = Home(tmp_path / "council").ensure()
    council_home.keys.mkdir(parents=True)
    shutil.copy(keyring_path(home), keyring_path(council_home))
    named = people[:15]
    named[3] = dataclasses.replace(named[3], forenames="Unknown")
    feed, extract = helpers.write_payroll(council_home, helpers.CAMDEN, named)
    out = tmp_path / "payroll.parquet"
    _run_cli(council_home, feed, extract, out)
    hub_feed = FeedDefinition(council=helpers.CAMDEN, dataset="payroll", format="pseudonymised")
    frame = accept_at_source(out, load_keyring(home), hub_feed).set_index("record_id")
    assert len(frame) == 15
    assert frame.loc["E3", "t_forename"] == 0 and frame.loc["E3", "t_surname"] != 0
    assert (frame.drop(index="E3")["t_forename"] != 0).all()


def test_hub_refuses_an_at_source_file_of_another_encoding(home, council_side, tmp_path, helpers) -> None:
    """Tokens of another encoding (an older `councilmatch pseudonymise`, same columns, another
    derivation) would never meet the hub's: the file is refused, naming the encoding."""
    import json

    council_home, feed_path, extract = council_side
    out = tmp_path / "payroll.parquet"
    _run_cli(council_home, feed_path, extract, out)
    feed = FeedDefinition(council=helpers.CAMDEN, dataset="payroll", format="pseudonymised")
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[b"councilmatch"])
    for name, changed in (("older", meta | {"encoding": "0123456789ab"}),
                          ("unrecorded", {k: v for k, v in meta.items() if k != "encoding"})):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table.replace_schema_metadata({b"councilmatch": json.dumps(changed).encode()}), path)
        with pytest.raises(SchemaError, match="encoding"):
            accept_at_source(path, load_keyring(home), feed)
    assert len(accept_at_source(out, load_keyring(home), feed)) == 15


def test_hub_refuses_files_that_do_not_fit(home, council_side, tmp_path, helpers) -> None:
    council_home, feed_path, extract = council_side
    out = tmp_path / "payroll.parquet"
    _run_cli(council_home, feed_path, extract, out)
    ring = load_keyring(home)
    with pytest.raises(SchemaError, match="council 'E09000007', feed E09000012/payroll"):
        accept_at_source(out, ring, FeedDefinition(council=helpers.HACKNEY, dataset="payroll", format="pseudonymised"))
    with pytest.raises(SchemaError, match="dataset"):
        accept_at_source(out, ring, FeedDefinition(council=helpers.CAMDEN, dataset="tenancy", format="pseudonymised"))

    feed = FeedDefinition(council=helpers.CAMDEN, dataset="payroll", format="pseudonymised")
    table = pq.read_table(out)
    dropped = tmp_path / "dropped.parquet"
    pq.write_table(table.drop(["t_nino"]), dropped)
    with pytest.raises(SchemaError, match="t_nino"):
        accept_at_source(dropped, ring, feed)
    retyped = tmp_path / "retyped.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("t_dob"), "t_dob",
                                    table.column("t_dob").cast("string")), retyped)
    with pytest.raises(SchemaError, match="t_dob"):
        accept_at_source(retyped, ring, feed)
    plain = tmp_path / "plain.parquet"
    pq.write_table(table.replace_schema_metadata({}), plain)
    with pytest.raises(SchemaError, match="no councilmatch metadata"):
        accept_at_source(plain, ring, feed)
    notparquet = tmp_path / "junk.parquet"
    notparquet.write_text("Surname,NI\n")
    assert b"QUILL" not in out.read_bytes()
    with pytest.raises(SchemaError, match="not a readable Parquet"):
        accept_at_source(notparquet, ring, feed)

    other_hub = Home(tmp_path / "other").ensure()
    init_keys(other_hub)
    other_hub_ring = load_keyring(other_hub)
    # same id "k1" but a different key is indistinguishable by id: ids must be unique per hub;
    # an id the hub does not have at all is refused
    bumped = tmp_path / "k9.parquet"
    import json
    meta = json.loads(table.schema.metadata[b"councilmatch"]) | {"key_id": "k9"}
    pq.write_table(table.replace_schema_metadata({b"councilmatch": json.dumps(meta).encode()}), bumped)
    with pytest.raises(UnknownKeyError, match="k9"):
        accept_at_source(bumped, other_hub_ring, feed)


def test_at_source_needs_the_raw_feed_and_a_keyring(council_side, tmp_path, helpers, monkeypatch) -> None:
    council_home, feed_path, extract = council_side
    hub_style = tmp_path / "hub_feed.yaml"
    hub_style.write_text(feed_path.read_text().replace("format: csv", "format: pseudonymised"))
    r = CliRunner().invoke(app, ["pseudonymise", "--feed", str(hub_style), "--extract", str(extract),
                                 "--out", str(tmp_path / "o.parquet"), "--home", str(council_home.root)])
    assert r.exit_code == 1 and "raw extract" in r.output
    monkeypatch.setenv("COUNCILMATCH_KEK", helpers.new_kek())
    r = CliRunner().invoke(app, ["pseudonymise", "--feed", str(feed_path), "--extract", str(extract),
                                 "--out", str(tmp_path / "o.parquet"), "--home", str(council_home.root)])
    assert r.exit_code == 1 and "does not decrypt" in r.output
    assert not (tmp_path / "o.parquet").exists()


def test_hub_pipeline_takes_at_source_files_from_landing(home, council_side, helpers) -> None:
    """A feed of format `pseudonymised`: its landing folder holds at-source files."""
    from orchestrate.pipeline import ingest_feed

    council_home, feed_path, extract = council_side
    landing = home.landing / helpers.CAMDEN / "payroll"
    landing.mkdir(parents=True)
    out = landing / "payroll_20261125.parquet"
    _run_cli(council_home, feed_path, extract, out)
    hub_feed = home.feeds / helpers.CAMDEN / "payroll.yaml"
    hub_feed.parent.mkdir(parents=True, exist_ok=True)
    hub_feed.write_text(f"council: {helpers.CAMDEN}\ndataset: payroll\nformat: pseudonymised\n")

    outcome = ingest_feed(home, f"{helpers.CAMDEN}/payroll", "r1")
    assert outcome["status"] == "ingested", outcome
    stored = read_pseudonymised(Path(outcome["path"]))
    from anonymise.minimise import minimise
    from anonymise.vault import Vault

    accepted = accept_at_source(out, load_keyring(home), load_feed(hub_feed))
    pd.testing.assert_frame_equal(stored, minimise(accepted, home, store_policy(home)))  # record ids as keyed references
    # the hub never held the clear identifiers: its vault maps a reference back to the council's id only
    record = Vault(home, load_keyring(home)).reidentify(helpers.CAMDEN, stored["record_id"].iloc[0], "t", "test")
    assert record["record_id"] == accepted["record_id"].iloc[0]
    assert all(record[c] is None for c in ("surname", "forenames", "dob", "nino", "postcode"))
    assert ingest_feed(home, f"{helpers.CAMDEN}/payroll", "r2")["status"] in ("unchanged", "no_new_extract")
