"""End to end: every feed the generator writes passes ``feeds check`` and the counts reconcile
with the generator's truth (exactly its planted invalid rows are quarantined)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from councilmatch.contracts import CANONICAL_COLUMNS
from councilmatch.home import Home
from ingest.extract import ingest_extract
from ingest.feeds import load_feeds, newest_extract
from orchestrate.cli import app

generate_mod = pytest.importorskip("synthetic.generate")


@pytest.fixture(scope="module", params=["default", "heldout"])
def generated(tmp_path_factory, request) -> Home:
    home = Home(tmp_path_factory.mktemp("synthetic") / "home")
    generate_mod.generate(home, boroughs=3, people=1000, seed=11, noise_profile=request.param)
    return home


def test_every_generated_feed_ingests_and_reconciles_with_truth(generated: Home) -> None:
    feeds = load_feeds(generated)
    assert len(feeds) >= 9 and "central/deceased" in feeds
    truth = pd.read_parquet(generated.truth / "records.parquet")
    truth["council"] = truth["council"].astype(str)
    quarantined, accepted = [], []
    for feed_id, feed in feeds.items():
        extract = newest_extract(generated, feed)
        assert extract is not None, feed_id
        result = ingest_extract(feed, extract)
        m = result.manifest()
        assert m["rows_in"] == m["accepted"] + m["quarantined"], feed_id
        assert result.warnings == [], (feed_id, result.warnings)
        assert list(result.accepted.columns) == list(CANONICAL_COLUMNS)
        rows = truth[(truth["council"] == feed.council) & (truth["dataset"] == feed.dataset)]
        assert m["rows_in"] == len(rows), feed_id
        quarantined += [(feed.council, feed.dataset, r) for r in result.quarantined["record_id"]]
        accepted += [(feed.council, feed.dataset, r) for r in result.accepted["record_id"]]
    invalid = truth[truth["invalid_reason"].notna()]
    # a placeholder date of birth (1900-01-01, never on a record a flag needs) may be quarantined as
    # too old or accepted as a missing date of birth: either reconciles
    placeholder = truth[truth["variations"].astype(str).str.contains("dob_placeholder", regex=False)]
    placeholder = set(zip(placeholder["council"], placeholder["dataset"], placeholder["record_id"]))
    assert sorted(set(quarantined) - placeholder) == sorted(zip(invalid["council"], invalid["dataset"], invalid["record_id"]))
    assert len(accepted) == len(set(accepted)) == len(truth) - len(invalid) - len(set(quarantined) & placeholder)


def test_feeds_check_exits_0_for_every_generated_feed(generated: Home) -> None:
    runner = CliRunner()
    for feed_id in load_feeds(generated):
        r = runner.invoke(app, ["feeds", "check", feed_id, "--home", str(generated.root)], env={"COLUMNS": "200"})
        assert r.exit_code == 0, (feed_id, r.output)
        assert "reconciled" in r.output and "usable:" in r.output
    r = runner.invoke(app, ["feeds", "list", "--home", str(generated.root)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "central/deceased" in r.output
