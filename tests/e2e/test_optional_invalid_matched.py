"""Issue 15's "done when": a record with a malformed optional NINO, phone, email and UPRN is still
matched end to end (and flagged, since its names and date of birth say so) while its problems are
counted in the feed's data-quality figures, and the vault keeps the values as the council sent them."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from anonymise.keys import init_keys, load_keyring
from anonymise.vault import Vault
from councilmatch.home import Home
from orchestrate import pipeline
from synthetic import generate

pytestmark = pytest.mark.slow

HACKNEY = "E09000012"
MALFORMED = {"ni_number": "QQ123456C", "phone": "12345", "email_address": "not-an-email", "UPRN": "UPRN-12X"}


def _rewrite(path: Path, encoding: str, delimiter: str, record_id: str, id_column: str) -> None:
    """Give every row an (empty) UPRN column and the chosen record the malformed optional values."""
    with open(path, encoding=encoding, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    header, body = rows[0] + ["UPRN"], [r + [""] for r in rows[1:]]
    hits = 0
    for r in body:
        if r[header.index(id_column)] == record_id:
            for col, value in MALFORMED.items():
                r[header.index(col)] = value
            hits += 1
    assert hits == 1
    with open(path, "w", encoding=encoding, newline="") as f:
        csv.writer(f, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows([header, *body])


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = Home.resolve(tmp_path_factory.mktemp("optional") / "home")
    generate(home, boroughs=2, people=1500, seed=7)
    init_keys(home)
    scenarios = pd.read_parquet(home.truth / "scenarios.parquet")
    records = pd.read_parquet(home.truth / "records.parquet")
    clean = set(records.loc[records["variations"].astype(str).isin(["", "nan", "None"]) | records["variations"].isna(),
                            "record_id"])
    fraud = scenarios[(scenarios["match_type"] == "tenancy_two_boroughs") & (scenarios["kind"] == "fraud")
                      & (scenarios["right_council"] == HACKNEY)]
    fraud = fraud[fraud["left_record_id"].isin(clean) & fraud["right_record_id"].isin(clean)]
    assert len(fraud), "the generator plants tenancies held in Camden and Hackney"
    pair = fraud.iloc[0]

    feed_file = home.feeds / HACKNEY / "tenancy.yaml"
    feed = yaml.safe_load(feed_file.read_text())
    assert {"nino", "phone", "email"} <= set(feed["columns"]) and "nino" not in feed["mandatory"]
    feed["columns"]["uprn"] = "UPRN"
    feed_file.write_text(yaml.safe_dump(feed, sort_keys=False))
    (extract,) = (home.landing / HACKNEY / "tenancy").iterdir()
    _rewrite(extract, feed["encoding"], feed["delimiter"], pair["right_record_id"], feed["columns"]["record_id"])

    result = pipeline.run_all(home, "20261201T020000")
    return {"home": home, "pair": pair, "result": result}


def test_the_record_is_matched_and_flagged(night: dict) -> None:
    home, pair = night["home"], night["pair"]
    from anonymise import at_rest
    from anonymise.minimise import record_refs, ref_key

    flags = at_rest.read_frame(home.flags_path("20261201T020000"), home=home)  # encrypted at rest
    key = ref_key(home)  # flags carry keyed references of the councils' record ids

    def ref(side: str) -> str:
        return record_refs(key, pd.Series([pair[f"{side}_council"]]), pd.Series([pair[f"{side}_record_id"]])).iloc[0]

    tenancy = flags[flags["match_type"] == "tenancy_two_boroughs"]
    hit = tenancy[(tenancy["left_record_id"] == ref("left")) & (tenancy["right_record_id"] == ref("right"))]
    assert len(hit) == 1, "the record with malformed optional values must still be linked and flagged"
    evidence = json.loads(hit.iloc[0]["evidence"])
    assert evidence["nino"]["level"] != "exact"  # its NINO was set to missing, the rest of its evidence flagged it


def test_its_problems_are_counted_in_the_feed_figures_and_the_report(night: dict) -> None:
    home = night["home"]
    outcome = next(f for f in night["result"]["feeds"] if f["feed_id"] == f"{HACKNEY}/tenancy")
    assert outcome["status"] == "ingested" and outcome["quarantined"] == 0 + outcome["rows_in"] - outcome["accepted"]
    expected = {"nino: invalid format", "phone: invalid format", "email: invalid format", "uprn: invalid format"}
    assert expected <= set(outcome["set_missing"]) and all(outcome["set_missing"][r] >= 1 for r in expected)
    assert not expected & set(outcome["quarantine_reasons"])
    report = json.loads((home.reports / "20261201T020000.json").read_text())
    quality = report["data_quality"][f"{HACKNEY}/tenancy"]
    assert quality["set_missing"]["uprn: invalid format"] == 1
    assert quality["fields"]["uprn"]["invalid"] == 1
    html = (home.reports / "20261201T020000.html").read_text()
    assert "Data quality" in html and "uprn: invalid format" in html
    for value in MALFORMED.values():  # counts, never the values, outside the vault
        # as a value of its own: "12345" inside a timing such as 0.0123456 is not the phone
        alone = re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")
        assert not alone.search(html) and not alone.search(json.dumps(report)), value


def test_the_vault_keeps_the_values_as_sent(night: dict) -> None:
    home, pair = night["home"], night["pair"]
    clear = Vault(home, load_keyring(home)).reidentify(HACKNEY, pair["right_record_id"], actor="test", reason="issue 15 test")
    record = clear
    assert record["nino"] == "QQ123456C" and record["phone"] == "12345"
    assert record["email"] == "not-an-email" and record["uprn"] == "UPRN-12X"
