"""The generator's promises: reproducible, valid feeds, complete truth, planted scenarios, varied extracts."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from councilmatch import matchtype_ids as mt
from councilmatch.contracts import DATASETS
from councilmatch.councils import CENTRAL, LONDON_BOROUGHS
from councilmatch.home import Home
from ingest.feed import FeedDefinition
from ingest.feeds import load_feeds
from synthetic import generate
from synthetic.nicknames import NICKNAMES

NINO = re.compile(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$")


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_extract(path: Path, feed: FeedDefinition) -> pd.DataFrame:
    if feed.format == "csv":
        return pd.read_csv(path, sep=feed.delimiter, encoding=feed.encoding, dtype=str, keep_default_na=False)
    if feed.format == "xlsx":
        return pd.read_excel(path, dtype=str, keep_default_na=False)
    return pd.read_parquet(path)


def test_same_arguments_give_the_same_bytes(tmp_path: Path) -> None:
    a, b, c = (Home.resolve(tmp_path / n) for n in "abc")
    generate(a, boroughs=2, people=800, seed=5)
    # the second run in another process with another string-hash seed: no set/dict-order leaks
    code = f"from synthetic import generate; from councilmatch.home import Home; generate(Home.resolve({str(b.root)!r}), 2, 800, 5)"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    generate(c, boroughs=2, people=800, seed=6)
    da, db, dc = _digest(a.root), _digest(b.root), _digest(c.root)
    assert any(k.endswith(".xlsx") for k in da) and any(k.endswith(".parquet") for k in da)
    assert da == db
    assert set(da) == set(dc) and da != dc          # another seed: same files, different content


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="boroughs"):
        generate(Home.resolve(tmp_path), boroughs=0, people=500, seed=1)
    with pytest.raises(ValueError, match="people"):
        generate(Home.resolve(tmp_path), boroughs=2, people=10, seed=1)


def test_every_feed_yaml_is_a_valid_feed_definition(generated) -> None:
    paths = sorted(generated.home.feeds.glob("*/*.yaml"))
    assert len(paths) == 3 * 8 + 1
    for p in paths:
        feed = FeedDefinition.model_validate(yaml.safe_load(p.read_text(encoding="utf-8")))
        assert (feed.council, feed.dataset) == (p.parent.name, p.stem)
        spec = DATASETS[feed.dataset]
        assert set(spec.required) <= set(feed.columns), p
        assert set(feed.columns) <= {"record_id", *spec.required, *spec.optional}, p
    # the ingest engineer's loader (semantic checks: councils, fields, date formats) accepts them all
    assert len(load_feeds(generated.home)) == len(paths)
    assert {f.split("/")[0] for f in load_feeds(generated.home)} == {*generated.summary.councils, CENTRAL}
    assert generated.summary.councils == ["E09000007", "E09000012", "E09000019"]  # Camden, Hackney, Islington
    assert all(c in LONDON_BOROUGHS for c in generated.summary.councils)


def test_landing_files_have_the_mapped_columns_and_exactly_the_truth_records(generated) -> None:
    feeds = load_feeds(generated.home)
    truth = generated.records
    for feed_id, feed in feeds.items():
        files = sorted((generated.home.landing / feed.council / feed.dataset).iterdir())
        assert len(files) == 1 and files[0].name.startswith(f"{feed.dataset}_20261101."), files
        df = read_extract(files[0], feed)
        mapped = [c for cols in feed.columns.values() for c in ([cols] if isinstance(cols, str) else cols)]
        assert sorted(df.columns) == sorted(mapped), feed_id
        ids = set(df[feed.columns["record_id"]].astype(str))
        expected = truth[(truth["council"] == feed.council) & (truth["dataset"] == feed.dataset)]
        assert len(df) == len(expected) == len(ids) > 0, feed_id
        assert ids == set(expected["record_id"]), feed_id
    assert len(truth) == generated.summary.total_records
    assert truth["person_id"].isin(generated.people["person_id"]).all()


def test_extracts_vary_like_real_ones(generated) -> None:
    feeds = load_feeds(generated.home).values()
    assert {f.encoding for f in feeds if f.format == "csv"} >= {"utf-8", "utf-8-sig", "cp1252"}
    assert {f.delimiter for f in feeds if f.format == "csv"} >= {",", ";", "|", "\t"}
    assert {f.format for f in feeds} == {"csv", "xlsx", "parquet"}
    formats = {fmt for f in feeds for fmt in [f.date_format, *f.date_formats.values()]}
    assert {"%d/%m/%Y", "%Y-%m-%d", "%d-%b-%Y", "%m/%d/%Y"} <= formats
    assert len({f.columns["surname"] for f in feeds}) >= 3                       # column names differ
    assert any(isinstance(f.columns["address_lines"], list) for f in feeds if "address_lines" in f.columns)
    assert any(isinstance(f.columns["address_lines"], str) for f in feeds if "address_lines" in f.columns)
    for f in feeds:
        if f.format != "csv":
            continue
        raw = next((generated.home.landing / f.council / f.dataset).iterdir()).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") == (f.encoding == "utf-8-sig")
        raw.decode(f.encoding)                                                    # really in that encoding
    cp1252 = b"".join(next((generated.home.landing / f.council / f.dataset).iterdir()).read_bytes()
                      for f in feeds if f.encoding == "cp1252")
    assert any(ch in cp1252.decode("cp1252") for ch in "éëáóüöçñ")               # diacritics, not UTF-8 bytes


def _read_all(generated) -> dict[str, tuple[FeedDefinition, pd.DataFrame]]:
    out = {}
    for feed_id, feed in load_feeds(generated.home).items():
        out[feed_id] = (feed, read_extract(next((generated.home.landing / feed.council / feed.dataset).iterdir()), feed))
    return out


def test_realistic_errors_and_invalid_rows_are_recorded_in_truth(generated) -> None:
    r = generated.records
    variations = set(";".join(r["variations"].astype(str)).split(";"))
    for v in ("nickname", "typo_forenames", "typo_surname", "dob_day_month_swapped", "postcode_formatted",
              "nino_formatted", "previous_surname_used", "middle_names_dropped", "missing_email", "typo_first_letter",
              "ocr_address", "forename_initials_only", "dob_year_off_by_one", "previous_surname_not_recorded"):
        assert v in variations, v
    reasons = r["invalid_reason"].dropna().astype(str)
    assert {s.split(":")[0] for s in reasons} == {"invalid_nino", "impossible_date", "missing_mandatory"}
    assert 0.001 < len(reasons) / len(r) < 0.01
    extracts = _read_all(generated)
    checked = {"invalid_nino": 0, "impossible_date": 0, "missing_mandatory": 0, "nickname": 0}
    for feed_id, (feed, df) in extracts.items():
        df = df.set_index(feed.columns["record_id"])
        rows = r[(r["council"] == feed.council) & (r["dataset"] == feed.dataset)].set_index("record_id")
        for rid, reason in rows["invalid_reason"].dropna().astype(str).items():
            kind, field = reason.split(": ")
            col = feed.columns[field]
            value = df.at[rid, col if isinstance(col, str) else col[0]]
            if kind == "invalid_nino":
                assert not NINO.match(str(value).replace(" ", "").upper())
            elif kind == "impossible_date":
                with pytest.raises(ValueError):
                    datetime.strptime(value, feed.date_formats.get(field, feed.date_format))
            else:
                assert value is None or pd.isna(value) or value == ""
            checked[kind] += 1
        tags = rows["variations"].astype(str)
        altered = tags.str.contains("typo_forenames|ocr_forenames|respelled_forenames|initials_only|informal_nickname")
        nick = rows.index[tags.str.contains("(?:^|;)nickname") & ~altered]
        for rid in nick:
            first = str(df.at[rid, feed.columns["forenames"]]).split(" ")[0].upper()
            assert first in NICKNAMES, (feed_id, rid, first)
            checked["nickname"] += 1
    assert all(n > 0 for n in checked.values()), checked


def test_population_has_the_hard_cases(generated) -> None:
    p = generated.people
    twins = p[p["twin_of"] >= 0]
    assert len(twins) >= 4
    other = p.set_index("person_id").loc[twins["twin_of"]]
    assert (twins["surname"].to_numpy() == other["surname"].to_numpy()).all()
    assert (twins["dob"].to_numpy() == other["dob"].to_numpy()).all()
    assert (twins["first_name"].to_numpy() != other["first_name"].to_numpy()).all()
    assert p["previous_surname"].notna().sum() > 50                               # married names
    assert p["surname"].str.contains("-").sum() > 10                              # hyphenated
    assert p["surname"].str.contains(" ").sum() > 0                               # double-barrelled
    assert p["forenames"].str.contains("[éëáóüöçñ]").sum() > 0                    # diacritics
    assert p["surname"].value_counts().index[0] in ("Smith", "Jones", "Williams", "Brown", "Taylor")
    assert (p["household_id"].value_counts() >= 3).sum() > 50                     # households with several adults
    assert p["date_of_death"].notna().sum() > 10


def test_every_match_type_has_planted_fraud_and_near_misses(generated) -> None:
    s = generated.scenarios
    for m in mt.ALL:
        assert ((s["match_type"] == m) & (s["kind"] == "fraud")).sum() >= 1, m
        assert ((s["match_type"] == m) & (s["kind"] == "near_miss")).sum() >= 1, m
    text = " ".join(s.loc[s["kind"] == "near_miss", "description"])
    for phrase in ("moved between boroughs", "same name and birth year", "twins", "cancelled before", "former occupant",
                   "twin of the deceased", "twins at one address", "namesake of the deceased", "namesakes (same forenames"):
        assert phrase in text, phrase
    pairs = ["match_type", "left_council", "left_dataset", "left_record_id", "right_council", "right_dataset", "right_record_id"]
    flagged = set(map(tuple, generated.flags[pairs].to_numpy()))
    fraud = set(map(tuple, s.loc[s["kind"] == "fraud", pairs].to_numpy()))
    near = set(map(tuple, s.loc[s["kind"] == "near_miss", pairs].to_numpy()))
    assert fraud <= flagged
    assert not (near & flagged)
    assert flagged - fraud                                       # organic matches and extra adults count too
    assert (generated.records["origin"].astype(str) == "organic").any()
    # rates: low but present (<= ~2% of the relevant records, floor of a few)
    counts = generated.records["dataset"].value_counts()
    assert ((s["match_type"] == mt.TENANCY_TWO_BOROUGHS) & (s["kind"] == "fraud")).sum() <= max(5, 0.02 * counts["tenancy"])


def test_flagged_and_scenario_records_are_never_invalid(generated) -> None:
    r = generated.records.set_index(["council", "dataset", "record_id"])
    for frame in (generated.flags, generated.scenarios):
        for side in ("left", "right"):
            keys = list(zip(frame[f"{side}_council"], frame[f"{side}_dataset"], frame[f"{side}_record_id"]))
            assert r.loc[keys, "invalid_reason"].isna().all()


def _overlap(a_start, a_end, b_start, b_end) -> bool:
    far = pd.Timestamp("2999-12-31")
    a_end = far if pd.isna(a_end) else a_end
    b_end = far if pd.isna(b_end) else b_end
    return a_start <= b_end and b_start <= a_end


def _rule_pairs(records: pd.DataFrame, people: pd.DataFrame) -> set[tuple]:
    """The rules restated independently (plain Python over the small test data)."""
    dod = people.set_index("person_id")["date_of_death"].dropna().to_dict()
    by = {d: list(g.itertuples(index=False)) for d, g in records.groupby("dataset")}
    out: set[tuple] = set()

    def key(m, a, b):
        return (m, a.council, a.dataset, a.record_id, b.council, b.dataset, b.record_id)

    def ordered(a, b):
        return (a, b) if (a.council, a.record_id) < (b.council, b.record_id) else (b, a)

    for ds, m in (("tenancy", mt.TENANCY_TWO_BOROUGHS), ("payroll", mt.PAYROLL_TWO_COUNCILS)):
        rows = by[ds]
        per_person: dict[int, list] = {}
        for x in rows:
            per_person.setdefault(x.person_id, []).append(x)
        for group in per_person.values():
            for i, a in enumerate(group):
                for b in group[i + 1:]:
                    if a.council != b.council and _overlap(a.period_start, a.period_end, b.period_start, b.period_end):
                        out.add(key(m, *ordered(a, b)))
    tenancies: dict[int, list] = {}
    for t in by["tenancy"]:
        tenancies.setdefault(t.person_id, []).append(t)
    for w in by["waiting_list"]:
        for t in tenancies.get(w.person_id, []):
            if w.council != t.council and _overlap(w.period_start, w.period_end, t.period_start, t.period_end):
                out.add(key(mt.WAITING_LIST_TENANCY, w, t))
    electors: dict[tuple, list] = {}
    for e in by["electoral_register"]:
        electors.setdefault((e.council, e.address_id), []).append(e)
    for c in by["council_tax"]:
        if c.discount is True or c.discount == 1:
            for e in electors.get((c.council, c.address_id), []):
                if e.person_id != c.person_id and _overlap(c.period_start, c.period_end, e.period_start, e.period_end):
                    out.add(key(mt.SPD_OTHER_ADULT, c, e))
    deceased = {d.person_id: d for d in by["deceased"]}
    for b in by["blue_badge"]:
        d = deceased.get(b.person_id)
        if d is not None and (pd.isna(b.period_end) or b.period_end > dod[b.person_id]):
            out.add(key(mt.BLUE_BADGE_DECEASED, b, d))
    for p in by["concessionary_travel"]:
        d = deceased.get(p.person_id)
        if d is not None and (pd.isna(p.period_end) or p.period_end > dod[p.person_id]
                              or (not pd.isna(p.last_used) and p.last_used > dod[p.person_id])):
            out.add(key(mt.CONCESSIONARY_TRAVEL_DECEASED, p, d))
    payroll: dict[int, list] = {}
    for x in by["payroll"]:
        payroll.setdefault(x.person_id, []).append(x)
    for c in by["council_tax_reduction"]:
        for x in payroll.get(c.person_id, []):
            if _overlap(c.period_start, c.period_end, x.period_start, x.period_end):
                out.add(key(mt.CTR_PAYROLL, c, x))
    return out


def test_expected_flags_are_exactly_the_rule_pairs_recomputed_from_truth(generated) -> None:
    recomputed = _rule_pairs(generated.records, generated.people)
    cols = ["match_type", "left_council", "left_dataset", "left_record_id", "right_council", "right_dataset", "right_record_id"]
    written = set(map(tuple, generated.flags[cols].to_numpy()))
    assert len(written) == len(generated.flags)                                   # no duplicates
    assert written == recomputed
    assert {k[0] for k in written} == set(mt.ALL)
    # deceased records carry the person's true date of death
    dec = generated.records[generated.records["dataset"] == "deceased"].merge(generated.people, on="person_id", suffixes=("", "_p"))
    assert (dec["date_of_death"] == dec["date_of_death_p"]).all()


def test_cli_generate(tmp_path: Path) -> None:
    from orchestrate.cli import app

    result = CliRunner().invoke(app, ["generate", "--boroughs", "2", "--people", "400", "--seed", "2",
                                      "--start-date", "2026-06-30", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "landing" / "E09000012" / "tenancy" / "tenancy_20260630.csv").is_file()
    assert (tmp_path / "truth" / "expected_flags.parquet").is_file()
    assert "council_tax" in result.output


def test_a_single_borough_works_without_cross_council_scenarios(tmp_path: Path) -> None:
    summary = generate(Home.resolve(tmp_path), boroughs=1, people=500, seed=3)
    assert summary.councils == ["E09000007"] and len(summary.extracts) == 8 + 1
    scen = pd.read_parquet(tmp_path / "truth" / "scenarios.parquet")
    assert not scen["match_type"].isin([mt.TENANCY_TWO_BOROUGHS, mt.PAYROLL_TWO_COUNCILS, mt.WAITING_LIST_TENANCY]).any()
    assert (scen["kind"] == "fraud").any()
    # a second, bigger run into the same home is fine; a smaller one afterwards reports the leftovers
    assert generate(Home.resolve(tmp_path), boroughs=2, people=500, seed=3).stale_feeds == []
    again = generate(Home.resolve(tmp_path), boroughs=1, people=500, seed=3)
    assert again.stale_feeds and all(f.startswith("E09000012/") for f in again.stale_feeds)


@pytest.mark.parametrize("fmt", ["%d/%m/%Y", "%Y-%m-%d", "%d-%b-%Y", "%d.%m.%Y", "%m/%d/%Y", "%Y%m%d", "%d %B %y", "%j/%Y"])
def test_date_text_matches_strftime(fmt: str) -> None:
    import numpy as np

    from synthetic.writers import format_dates

    days = np.array(["1900-01-01", "1931-02-28", "1960-02-29", "1999-12-31", "2026-11-01", "2100-12-31", "NaT"], dtype="datetime64[D]")
    text = format_dates(days, fmt)
    assert list(text[:-1]) == [d.strftime(fmt) for d in days[:-1].astype(object)]
    assert text[-1] is None
