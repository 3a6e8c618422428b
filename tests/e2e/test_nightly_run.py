"""`councilmatch run` end to end on generated boroughs: flags, stability across nights, the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from anonymise import at_rest
from councilmatch.contracts import FLAG_COLUMNS
from councilmatch.home import Home

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "orchestrate.cli"]


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "COUNCILMATCH_KEK": ""}
    env.pop("COUNCILMATCH_KEK")
    return subprocess.run([*CLI, *args, "--home", str(home)], capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two nights over the same generated extracts (the second finds them already ingested)."""
    home = tmp_path_factory.mktemp("home")
    assert cli("generate", "--boroughs", "3", "--people", "2500", "--seed", "5", home=home).returncode == 0
    assert cli("keys", "init", home=home).returncode == 0
    first = cli("run", "--run-id", "20261101T020000", home=home)
    assert first.returncode == 0, first.stdout + first.stderr
    second = cli("run", "--run-id", "20261102T020000", home=home)
    assert second.returncode == 0, second.stdout + second.stderr
    return {"home": Home.resolve(home), "first": first, "second": second}


def test_flags_carry_the_contract_fields(nights: dict) -> None:
    flags = at_rest.read_frame(nights["home"].flags_path("20261101T020000"), home=nights["home"])
    assert len(flags) > 0
    assert set(FLAG_COLUMNS) <= set(flags.columns)
    assert flags["flag_id"].is_unique
    assert flags["match_probability"].between(0, 1).all()
    evidence = json.loads(flags["evidence"].iloc[0])
    assert evidence and all({"level", "weight"} <= set(v) for v in evidence.values())
    # every shipped match type with planted fraud produced flags
    assert flags["match_type"].nunique() >= 5


def test_second_night_creates_no_new_flag(nights: dict) -> None:
    home = nights["home"]
    first = at_rest.read_frame(home.flags_path("20261101T020000"), home=home).set_index("flag_id")
    second = at_rest.read_frame(home.flags_path("20261102T020000"), home=home).set_index("flag_id")
    assert set(second.index) == set(first.index)
    assert (second["first_seen"] == first.loc[second.index, "first_seen"]).all()
    assert (second["last_seen"] > first.loc[second.index, "last_seen"]).all()
    publish = at_rest.read_json(home.runs / "20261102T020000" / "stages" / "publish.json", home)
    assert publish["review_store"]["new"] == 0
    # the same flags again: nothing rewritten in the review store, nothing retracted
    assert publish["review_store"]["updated"] == 0 and publish["review_store"]["retracted"] == 0
    assert publish["review_store"]["unchanged"] == len(second)


def test_summary_names_feeds_flags_and_stage_times(nights: dict) -> None:
    out = nights["first"].stdout
    assert "E09000007/tenancy" in out and "central/deceased" in out
    for stage in ("ingest+pseudonymise", "plan+train", "link", "publish"):
        assert stage in out
    assert "tenancy_two_boroughs" in out
    report = json.loads((nights["home"].reports / "20261101T020000.json").read_text())
    assert report["flags"] == len(at_rest.read_frame(nights["home"].flags_path("20261101T020000"), home=nights["home"]))
    assert report["totals"]["rows_in"] == report["totals"]["accepted"] + report["totals"]["quarantined"]
    assert report["models"], "the report carries each match type's model parameters"


def test_second_nights_report_has_the_trend_council_names_and_model_charts(nights: dict) -> None:
    home = nights["home"]
    first = json.loads((home.reports / "20261101T020000.json").read_text())
    second = json.loads((home.reports / "20261102T020000.json").read_text())
    assert [p["run_id"] for p in second["trend"]] == ["20261101T020000", "20261102T020000"]
    assert second["trend"][0]["flags_per_match_type"] == first["flags_per_match_type"]
    assert second["trend"][0]["records"] == first["totals"]["rows_in"]
    assert second["trend"][0]["quarantined"] == first["totals"]["quarantined"]
    assert second["match_type_titles"]["tenancy_two_boroughs"] != "tenancy_two_boroughs"
    page = (home.reports / "20261102T020000.html").read_text()
    assert "Camden <span class='muted'>(E09000007)</span> · tenancy" in page and "Night over night" in page
    assert page.count('<svg class="weights"') == len(second["models"]) > 0


def test_second_night_is_incremental_and_full_is_one_flag_away(nights: dict) -> None:
    home = nights["home"]
    second = at_rest.read_json(home.runs / "20261102T020000" / "plan.json", home)
    assert second["types"] and all(t["mode"] == "incremental" for t in second["types"].values())
    assert second["tasks"] == []  # the same extracts as night 1: nothing to link
    third = cli("run", "--run-id", "20261103T020000", "--full", home=home.root)
    assert third.returncode == 0, third.stdout + third.stderr
    planned = at_rest.read_json(home.runs / "20261103T020000" / "plan.json", home)
    assert all(t["mode"] == "full" and t["full_because"] == "requested" and t["retrained"] is None
               for t in planned["types"].values())
    cols = ["flag_id", "match_probability", "evidence", "first_seen"]
    a = at_rest.read_frame(home.flags_path("20261102T020000"), home=home)[cols]
    b = at_rest.read_frame(home.flags_path("20261103T020000"), home=home)[cols]
    pd.testing.assert_frame_equal(a, b)


def test_each_night_anchors_the_review_audit_trail(nights: dict) -> None:
    """Every publish signs the audit trail's tip into the run's state (and so its report) and the
    home's checkpoint file; `audit verify` holds the trail against them."""
    home = nights["home"]
    seqs = []
    for run_id in ("20261101T020000", "20261102T020000"):
        publish = at_rest.read_json(home.runs / run_id / "stages" / "publish.json", home)
        checkpoint = publish["audit_checkpoint"]
        assert len(checkpoint["mac"]) == 64 and checkpoint["seq"] >= 1
        seqs.append(checkpoint["seq"])
    assert seqs[0] <= seqs[1]
    verify = cli("audit", "verify", "--checkpoint", json.dumps(checkpoint), home=home.root)
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout + verify.stderr
