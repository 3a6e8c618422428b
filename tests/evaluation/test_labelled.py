"""Evaluation on labelled data: FEBRL, CSV with a partly blank id column, stability under the key,
calibration and the suite table."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from evaluation.labelled import Scored, csv_task, evaluate_febrl, evaluate_set, febrl_task
from evaluation.suite import Row, markdown, perturbation_tasks


def test_febrl_through_pseudonyms():
    """What the hardened encodings reach (docs/benchmarks.md); the issue's goals (0.999 / 0.997 /
    0.989) were met before the name filters were salted and are now missed by 0.001-0.005."""
    m = evaluate_febrl("febrl4")
    assert m.f1 >= 0.998 and m.true_pairs == 5000, m.line()
    assert m.line().startswith(f"precision={m.precision:.4f} recall=")
    assert evaluate_febrl("febrl3").f1 >= 0.995
    # 0.991-0.992 under any key; 0.984 when pairs at one address were judged by the forename alone
    # (a duplicate with a changed forename read as a twin: docs/benchmarks.md, session 31)
    assert evaluate_febrl("febrl3-nossn").f1 >= 0.988


def test_one_differing_field_is_not_a_veto():
    """FEBRL2's duplicates sometimes move: a different address must count against a match by a few
    bits, not outweigh an exact surname, date of birth and id (it was −19.5 bits before the agreement
    floor moved from m to the weight)."""
    ev = evaluate_set(febrl_task("febrl2"), use_id=True)
    weights = {c["name"]: {lv["label"]: lv["weight"] for lv in c["levels"]} for c in ev.model["comparisons"]}
    assert -12 < weights["address"]["different"] < -2, weights["address"]
    # F1 moves with the random key (0.9956-0.9969 measured); the key-stability goal is +-0.005
    assert ev.metrics.f1 >= 0.994, ev.metrics.line()


def test_a_mistyped_id_is_a_near_miss_not_a_veto():
    """FEBRL1's rec-490 pair: the same surname and address, the id keyed with two digits swapped
    (6794161 / 6794611) and a wholly different date of birth. One keystroke in an id is a
    keying error: it counts for a match, less than an exact id, and the pair is found."""
    ev = evaluate_set(febrl_task("febrl1"), use_id=True)
    nino = {lv["label"]: lv["weight"] for c in ev.model["comparisons"] if c["name"] == "nino" for lv in c["levels"]}
    assert 0 < nino["one edit"] < nino["exact"], nino
    assert ev.metrics.recall >= 0.998, ev.metrics.line()  # 0.996 without the level


def test_same_data_under_different_keys_scores_within_half_a_point():
    task = febrl_task("febrl3")
    f1 = [evaluate_set(task, use_id=False).metrics.f1 for _ in range(3)]  # a fresh random key each time
    assert max(f1) - min(f1) <= 0.005, f1


def test_csv_with_a_partly_blank_id_column(tmp_path):
    people = pd.DataFrame({
        "id": [f"r{i}" for i in range(8)], "ent": [1, 1, 2, 2, 3, 4, 5, 6],
        "first": ["ANNA", "ANNA", "BORIS", "BORIS", "CARL", "DORA", "EMIL", "FRIDA"],
        "last": ["SHAH", "SHAH", "KING", "KINGS", "LAMB", "MOSS", "NASH", "OATES"],
        "dob": ["1970-01-02", "1970-01-02", "1981-05-06", "1981-05-06", "1990-09-09", "1955-03-04",
                "1962-07-08", "1999-12-31"],
        "ni": ["AB123456C", "", "", "CD654321A", "", "", "EF111111B", ""]})
    path = tmp_path / "people.csv"
    people.to_csv(path, index=False)
    task = csv_task(path, None, "id", "ent", {"forenames": ["first"], "surname": ["last"], "dob": ["dob"],
                                              "nino": ["ni"]})
    assert task.truth == {("r0", "r1"), ("r2", "r3")}
    assert task.left["__person_id"].isna().sum() == 5  # blanks are missing ids, not a TypeError


def test_calibration_bands_count_pairs_and_true_share():
    s = Scored(np.array([0.55, 0.6, 0.95, 0.999, 0.999]), np.array([False, True, True, True, True]), 4, 0.0)
    rows = {r["band"]: r for r in s.calibration()}
    assert rows["0.5–0.7"]["pairs"] == 2 and rows["0.5–0.7"]["true_share"] == 0.5
    assert rows["0.99–1"]["pairs"] == 2 and rows["0.99–1"]["true_share"] == 1.0
    best, threshold = s.best()
    assert best == pytest.approx(1.0) and threshold == pytest.approx(0.6)


def test_independent_set_beats_its_goal_at_the_default_threshold():
    """A small independent UK-style set (written without reference to the matcher): at 0.5 our
    F1 on pseudonyms is high, and pairs we call ≥ 0.9 are mostly right."""
    task = next(t for t in perturbation_tasks(seed=5, scale=0.3) if t.name == "link_uk")
    ev = evaluate_set(task)
    assert ev.metrics.f1 >= 0.9, ev.metrics.line()
    high = ev.scored.probability >= 0.9
    assert ev.scored.is_true[high].mean() >= 0.9
    assert ev.model["fit_check"]["passed"]
    table = markdown([Row(ev, 0.9, 0.91, 1.0)])
    assert "| link_uk |" in table and "Calibration" in table


def test_suite_command_prints_the_table(monkeypatch):
    from orchestrate.cli import app
    import evaluation.suite as suite

    task = febrl_task("febrl1")
    monkeypatch.setattr(suite, "FEBRL_SETS", ("febrl1",))
    monkeypatch.setattr(suite, "febrl_task", lambda name: task)
    monkeypatch.setattr(suite, "perturbation_tasks", lambda seed, scale, noise, hard: [])
    result = CliRunner().invoke(app, ["evaluate", "suite", "--no-splink"])
    assert result.exit_code == 0, result.output
    assert "| febrl1 |" in result.output and "| febrl1 (no id) |" in result.output
    assert "truly the same person" in result.output


def test_a_set_whose_model_fails_its_fit_check_is_a_failed_row_not_the_end_of_the_table(monkeypatch):
    """The model refusing to flag on one set (DegenerateFit) used to abort the whole table."""
    from orchestrate.cli import app
    import evaluation.suite as suite
    from matching.linker import DegenerateFit

    task = febrl_task("febrl1")
    real = suite.evaluate_set

    def evaluate(t, use_id=True):
        if not use_id:
            raise DegenerateFit("match type evaluation: the trained model is degenerate (test)")
        return real(t, use_id=use_id)

    monkeypatch.setattr(suite, "FEBRL_SETS", ("febrl1",))
    monkeypatch.setattr(suite, "febrl_task", lambda name: task)
    monkeypatch.setattr(suite, "perturbation_tasks", lambda seed, scale, noise, hard: [])
    monkeypatch.setattr(suite, "evaluate_set", evaluate)
    result = CliRunner().invoke(app, ["evaluate", "suite", "--no-splink"])
    assert result.exit_code == 0, result.output
    assert "| febrl1 | 1,000 | 500 | 1.0000 |" in result.output  # the set before it still scored
    row = next(line for line in result.output.splitlines() if line.startswith("| febrl1 (no id) |"))
    assert "fit check failed" in row and "| 0.0000 |" in row
    assert "Fit check failed on febrl1 (no id): match type evaluation: the trained model is degenerate" in result.output
    assert "below goal: febrl1 (no id)" in result.output


def test_evaluate_csv_says_in_one_line_when_the_model_refuses_to_flag(monkeypatch, tmp_path):
    """A model that fails its fit check flags nothing; the command says so and exits 1, no traceback."""
    from orchestrate.cli import app
    import evaluation.labelled as labelled
    from matching.linker import DegenerateFit

    def refuse(*args, **kwargs):
        raise DegenerateFit("match type evaluation: the trained model is degenerate (test)")

    monkeypatch.setattr(labelled, "evaluate_csv", refuse)
    path = tmp_path / "people.csv"
    path.write_text("id,ent,first\nr0,1,ANNA\n")
    result = CliRunner().invoke(app, ["evaluate", "csv", "--data", str(path), "--id-column", "id",
                                      "--truth-column", "ent", "--map", "forenames=first"])
    assert result.exit_code == 1, result.output
    assert "failed its fit check, so nothing was linked" in result.output
    assert "Traceback" not in result.output and "precision=" not in result.output


def test_the_perturbation_sets_can_be_drawn_noisier_or_without_hard_negatives():
    """``evaluate suite --noise F --hard H``: the same noise model with its error rates scaled, so a
    figure is checked on data the matcher was not tuned on (defaults, noisier, cleaner, no twins)."""
    from evaluation.perturb import NoiseRates

    rates = NoiseRates().scaled(2.0).with_hard_negatives(0.0)
    assert rates.forename_typo == 2 * NoiseRates().forename_typo and rates.twins == rates.namesakes == 0
    plain, none = (perturbation_tasks(3, scale=0.1, hard=h) for h in (1.0, 0.0))
    records = {t.name: len(t.left) for t in plain}
    assert all(len(t.left) < records[t.name] for t in none if t.name == "dedupe_de")  # fewer people
    noisy = next(t for t in perturbation_tasks(3, scale=0.1, noise=3.0) if t.name == "link_uk")
    calm = next(t for t in perturbation_tasks(3, scale=0.1, noise=0.0) if t.name == "link_uk")

    def same_surname(task) -> float:
        left = task.left.set_index("record_id")["surname"]
        right = task.right.set_index("record_id")["surname"]
        return sum(left[a] == right[b] for a, b in task.truth) / len(task.truth)

    assert same_surname(calm) > same_surname(noisy)


def test_a_set_splink_fails_on_keeps_our_row_and_says_why(monkeypatch):
    """Splink's own training can raise on a set (on RLdata500 its EM hits a probability of 1 and
    raises a math domain error): that row has no Splink figure and no goal, the table goes on."""
    import evaluation.suite as suite

    def broken(task, use_id):
        raise ValueError("math domain error")

    monkeypatch.setattr(suite, "_splink", broken)
    row = suite.suite_row(febrl_task("febrl1"), use_id=True, with_splink=True)
    assert row.splink_failed == "ValueError: math domain error"
    assert row.splink_best is None and row.goal is None and row.met is None
    assert row.evaluation.metrics.f1 > 0.99  # ours still scored
    text = suite.markdown([row])
    assert "Splink failed on febrl1 (no goal for the row): ValueError: math domain error" in text
    assert "| febrl1 | 1,000 | 500 |" in text


def test_a_model_that_expects_no_match_says_so_in_its_fit_check(tmp_path):
    """A file without duplicates: nothing is flagged, and the fit check notes that the model
    expects no match (an operator reading the run report must not take silence for health)."""
    import itertools

    import pandas as pd

    from evaluation.labelled import csv_task, evaluate_set, parse_map

    forenames = ["ANNA", "BERND", "CLARA", "DIETER", "EMMA", "FRANZ", "GRETA", "HANS", "IDA", "JONAS"]
    surnames = ["BAUER", "FISCHER", "HOFMANN", "KOCH", "MEYER", "RICHTER", "SCHULZ", "WAGNER", "WEBER", "ZIMMER"]
    rows = [{"id": i, "person": i, "first": f, "last": s, "dob": f"{1930 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d}"}
            for i, (f, s) in enumerate(itertools.product(forenames, surnames))]
    rows += [{"id": 100 + i, "person": 100 + i, "first": r["last"][:1] + r["first"][1:], "last": r["first"],
              "dob": f"{1925 + i % 70}-{1 + (i * 5) % 12:02d}-{1 + (i * 7) % 28:02d}"} for i, r in enumerate(rows)]
    path = tmp_path / "clean.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    evaluation = evaluate_set(csv_task(path, None, "id", "person", parse_map("forenames=first,surname=last,dob=dob")))
    assert evaluation.metrics.pairs == 0
    check = evaluation.model["fit_check"]
    assert check["passed"] and check["expected_matches"] < 1
    assert any("expects" in note and "flag almost nothing" in note for note in check["notes"]), check
    febrl = evaluate_set(febrl_task("febrl1"), use_id=False)
    assert febrl.model["fit_check"]["notes"] == []


def test_a_two_digit_birth_year_is_never_in_the_future():
    """'11/08/42' is 1942 for a date of birth (pandas reads 2042); '11/08/05' stays 2005, and a
    four-digit year is taken as written."""
    from evaluation.labelled import parse_dob

    got = parse_dob(pd.Series(["11/08/42", "11/08/05", "11/08/1942", "19420811", "", None]))
    assert got.dt.strftime("%Y-%m-%d").tolist()[:4] == ["1942-08-11", "2005-08-11", "1942-08-11", "1942-08-11"]
    assert got.iloc[4:].isna().all()
