"""One broken feed fails alone: its error is recorded and the night falls back to its last good extract."""

from __future__ import annotations

from pathlib import Path

import pytest

from anonymise.keys import init_keys
from councilmatch.home import Home
from orchestrate import pipeline, run_state
from synthetic import generate


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.delenv("COUNCILMATCH_KEK", raising=False)
    home = Home.resolve(tmp_path / "home")
    generate(home, boroughs=1, people=800, seed=3)
    init_keys(home)
    return home


def test_broken_feed_definition_fails_alone_then_falls_back(home: Home) -> None:
    feed_id = "E09000007/tenancy"
    first = pipeline.ingest_feed(home, feed_id, "night1")
    assert first["status"] == "ingested" and first["rows_in"] == first["accepted"] + first["quarantined"]

    yaml_path = home.feeds / "E09000007" / "tenancy.yaml"
    yaml_path.write_text(yaml_path.read_text() + "\nnot_a_key: 1\n")
    assert feed_id in pipeline.discover_feeds(home)

    second = pipeline.ingest_feed(home, feed_id, "night2")
    assert second["status"] == "fell_back"
    assert "tenancy.yaml" in second["error"] and "not_a_key" in second["error"]
    assert second["extract_id"] == first["extract_id"]

    other = pipeline.ingest_feed(home, "E09000007/payroll", "night2")
    assert other["status"] == "ingested"
    recorded = {f["feed_id"]: f["status"] for f in run_state.load_feeds(home, "night2")}
    assert recorded == {feed_id: "fell_back", "E09000007/payroll": "ingested"}


def test_a_feed_never_ingested_fails_without_fallback(home: Home) -> None:
    for extract in (home.landing / "E09000007" / "payroll").iterdir():
        extract.write_bytes(b"")
    result = pipeline.ingest_feed(home, "E09000007/payroll", "night1")
    assert result["status"] == "failed"
    assert "payroll" in result["error"]
    assert not list(home.pseudonymised.glob("payroll/**/*.parquet"))


def test_reingesting_the_same_extract_changes_nothing(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    from councilmatch.settings import HomeSettings

    monkeypatch.setattr(pipeline, "load_settings", lambda _home: HomeSettings(raw_extracts="keep"))
    first = pipeline.ingest_feed(home, "E09000007/blue_badge", "night1")
    files = sorted(home.pseudonymised.rglob("*.parquet"))
    mtimes = [p.stat().st_mtime_ns for p in files]
    again = pipeline.ingest_feed(home, "E09000007/blue_badge", "night2")
    assert again["status"] == "unchanged" and again["extract_id"] == first["extract_id"]
    assert [p.stat().st_mtime_ns for p in sorted(home.pseudonymised.rglob("*.parquet"))] == mtimes
