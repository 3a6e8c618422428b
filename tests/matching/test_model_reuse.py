"""Saved models: reused between nights, re-trained on schedule, on changed settings, on drift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anonymise import at_rest
from councilmatch.settings import Models
from matching import incremental as inc
from matching.model import agreement_patterns, total_variation
from matching.run import collect_flags, link_shard, plan, run_dir


def _night(home, run_id, settings=None, **kw):
    tasks = plan(home, run_id, 2, settings=settings, **kw)
    for t in tasks:
        link_shard(home, run_id, **t)
    flags = collect_flags(home, run_id)
    return flags, at_rest.read_json(run_dir(home, run_id) / "plan.json", home)["types"]["tenancy_two_boroughs"]


def _resend(home, frame, extract_id, council="E09000002"):
    """A council sends its extract again (optionally changed)."""
    part = frame[frame.council == council]
    path = home.pseudonymised_path("tenancy", council, extract_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    at_rest.write_frame(path, part.assign(extract_id=extract_id), home)


def _frame(home, council="E09000002"):
    return at_rest.read_frame(next((home.pseudonymised / "tenancy" / council).glob("*.parquet")), home=home)


def test_model_is_saved_self_describing_and_reused(tenancy_home):
    home, _ = tenancy_home
    first, t1 = _night(home, "20260101T020000")
    saved = at_rest.read_json(inc.model_path(home, "tenancy_two_boroughs"), home)
    assert saved["settings"]["id"] == "tenancy_two_boroughs" and saved["settings"]["linkage"]["blocking"]
    assert saved["settings_hash"] == inc.settings_hash(
        __import__("matching.matchtype", fromlist=["x"]).load_matchtypes(home)["tenancy_two_boroughs"])
    assert saved["key_id"] == "k1" and saved["trained_on"] == "2026-01-01" and saved["patterns"]
    assert saved["tf_sha256"] == inc.file_sha256(inc.tf_path(home, "tenancy_two_boroughs"))
    assert t1["retrained"] == "no saved model" and t1["mode"] == "full"

    second, t2 = _night(home, "20260103T020000")
    assert t2["retrained"] is None and t2["model_id"] == t1["model_id"] and t2["age_days"] == 2
    assert t2["mode"] == "incremental" and t2["dirty_left"] == t2["dirty_right"] == 0
    assert set(second.flag_id) == set(first.flag_id)
    report_model = at_rest.read_json(run_dir(home, "20260103T020000") / "model" / "tenancy_two_boroughs.json", home)
    assert report_model["reuse"]["trained_run"] == "20260101T020000"
    from orchestrate.report import build_run_report
    from review.run_report import render_html

    report = build_run_report(home, "20260103T020000")
    shown = report["model_reuse"]["tenancy_two_boroughs"]
    assert shown["age_days"] == 2 and shown["mode"] == "incremental" and "total_variation" in shown["drift"]
    assert "Models: age, drift, linking" in render_html(report)


def test_retrained_on_schedule_and_then_relinked_in_full(tenancy_home):
    home, _ = tenancy_home
    _, t1 = _night(home, "20260101T020000", Models(retrain_days=7))
    _, t2 = _night(home, "20260107T020000", Models(retrain_days=7))
    assert t2["retrained"] is None
    _, t3 = _night(home, "20260108T020000", Models(retrain_days=7))
    assert t3["retrained"].startswith("scheduled: model is 7 days old")
    assert t3["mode"] == "full" and t3["full_because"] == "new model"
    saved = at_rest.read_json(inc.model_path(home, "tenancy_two_boroughs"), home)
    assert saved["trained_run"] == "20260108T020000"


def test_changed_yaml_or_lost_tf_tables_force_retraining(tenancy_home):
    home, _ = tenancy_home
    _night(home, "20260101T020000")
    shipped = __import__("matching.matchtype", fromlist=["x"]).SHIPPED / "tenancy_two_boroughs.yaml"
    home.matchtypes.mkdir(parents=True, exist_ok=True)
    (home.matchtypes / "tenancy_two_boroughs.yaml").write_text(
        shipped.read_text().replace("threshold: 0.8", "threshold: 0.85"))
    _, t2 = _night(home, "20260102T020000")
    assert t2["retrained"] == "match type settings changed"
    inc.tf_path(home, "tenancy_two_boroughs").write_bytes(b"tampered")
    _, t3 = _night(home, "20260103T020000")
    assert t3["retrained"] == "no saved model"
    _, t4 = _night(home, "20260104T020000", retrain=True)
    assert t4["retrained"] == "re-training requested"


def test_drift_in_new_pairs_triggers_retraining(tenancy_home, make_frame):
    home, _ = tenancy_home
    settings = Models(drift_threshold=0.25, drift_min_pairs=20)
    _night(home, "20260101T020000", settings)
    frame = _frame(home)
    # a benign re-send: a few periods end, the identifying fields are as they were
    mild = frame.copy()
    mild["period_end"] = pd.Timestamp("2026-01-01")
    _resend(home, mild, "20260102T000000-x")
    _, quiet = _night(home, "20260102T020000", settings)
    # a council's system starts sending every surname scrambled: its new pairs disagree on surname
    rng = np.random.default_rng(0)
    bad = mild.copy()
    scrambled = make_frame([{"forename": "A", "surname": f"ZZ{i}{rng.integers(10**6)}"} for i in range(len(bad))])
    for column in ("t_surname", "bf_surname", "t_surname_phon", "t_name_sorted"):
        bad[column] = scrambled[column].to_numpy()
    _resend(home, bad, "20260103T000000-x")
    _, drifted = _night(home, "20260103T020000", settings)
    assert quiet["retrained"] is None and quiet["drift"]["new_candidate_pairs"] >= 20
    assert quiet["drift"]["total_variation"] < 0.25 <= drifted["drift"]["total_variation"]
    assert drifted["retrained"].startswith("drift: total variation")
    assert drifted["mode"] == "full"


def test_total_variation_and_too_few_pairs():
    g = np.array([[0, 0], [0, 1], [1, 1], [0, 0]], dtype=np.int8)
    p = agreement_patterns(g)
    assert p == {"0,0": 0.5, "0,1": 0.25, "1,1": 0.25}
    assert total_variation(p, p) == 0
    assert total_variation(p, {"2,2": 1.0}) == pytest.approx(1.0)
    assert total_variation(p, {"0,0": 1.0}) == pytest.approx(0.5)
    saved = {"format": inc.MODEL_FORMAT, "trained_on": "2026-01-01", "key_id": "k", "encoding": inc.ENCODING,
             "estimator": inc.ESTIMATOR_REVISION}
    from matching.matchtype import load_matchtypes

    mt = load_matchtypes()["tenancy_two_boroughs"]
    saved["settings_hash"] = inc.settings_hash(mt)
    s = Models(drift_threshold=0.3, drift_min_pairs=100)
    assert inc.retrain_reason(saved, mt, "k", "2026-01-02", s, False, inc.Drift(0.9, 99)) is None
    assert inc.retrain_reason(saved, mt, "k", "2026-01-02", s, False, inc.Drift(0.9, 100)).startswith("drift")
    assert inc.retrain_reason(saved, mt, "k2", "2026-01-02", s, False, inc.Drift()) == "tokens are under another key"
    older = {**saved, "encoding": "an-older-one"}  # trained before an upgrade changed the filters
    assert inc.retrain_reason(older, mt, "k", "2026-01-02", s, False, inc.Drift()).startswith("tokens are of another encoding")
    for before in ({k: v for k, v in saved.items() if k != "estimator"}, {**saved, "estimator": 1}):
        # a model saved before an upgrade changed the estimation (no field: the first revision)
        assert inc.retrain_reason(before, mt, "k", "2026-01-02", s, False, inc.Drift()).startswith("trained by an older")


def test_lost_state_of_the_last_run_relinks_in_full(tenancy_home):
    home, _ = tenancy_home
    first, _ = _night(home, "20260101T020000")
    for p in (run_dir(home, "20260101T020000") / "shards").glob("tenancy_two_boroughs-*.parquet"):
        p.unlink()
    second, t2 = _night(home, "20260102T020000")
    assert t2["mode"] == "full" and "are gone" in t2["full_because"]
    assert set(second.flag_id) == set(first.flag_id) and len(first)


def test_an_extract_rewritten_in_place_is_not_taken_as_unchanged(tenancy_home):
    """Re-pseudonymising (a key rotation) rewrites an extract under the same path: the night
    must see its records as changed, not skip them as last night's files."""
    home, _ = tenancy_home
    _night(home, "20260101T020000")
    path = next((home.pseudonymised / "tenancy" / "E09000002").glob("*.parquet"))
    frame = at_rest.read_frame(path, home=home)
    frame.loc[frame.index[:5], "period_end"] = pd.Timestamp("2026-01-01")
    at_rest.write_frame(path, frame, home)
    _, t2 = _night(home, "20260102T020000")
    assert t2["mode"] == "incremental" and t2["dirty_left"] + t2["dirty_right"] >= 5
    _, t3 = _night(home, "20260103T020000")
    assert t3["dirty_left"] + t3["dirty_right"] == 0


def test_incremental_state_is_encrypted_at_rest_and_a_planted_model_is_refused(tenancy_home):
    """The saved model, its TF tables, the run's record index, carried flags and dirty rows are
    encrypted like every store file; an attacker who swaps in a plain model file (say, with
    m/u chosen to hide a pair) gets a re-trained model, not theirs."""
    home, _ = tenancy_home
    _night(home, "20260101T020000")
    frame = _frame(home)
    changed = frame.copy()
    changed.loc[changed.index[:3], "period_end"] = pd.Timestamp("2026-01-01")
    _resend(home, changed, "20260102T000000-x")
    _, t2 = _night(home, "20260102T020000")
    assert t2["mode"] == "incremental" and t2["dirty_left"] + t2["dirty_right"] >= 3
    run = run_dir(home, "20260102T020000")
    parquet = [inc.tf_path(home, "tenancy_two_boroughs"), run / "records.parquet",
               run / "shards" / "tenancy_two_boroughs-carried.parquet",
               run / "dirty" / "tenancy_two_boroughs.parquet", run / "model" / "tenancy_two_boroughs.tf.parquet"]
    for path in parquet:
        assert path.exists() and at_rest.is_encrypted_parquet(path), path
        with pytest.raises(Exception):
            pd.read_parquet(path)  # no key, no read
    assert not list(run.glob("dirty/*.npz"))
    model = inc.model_path(home, "tenancy_two_boroughs")
    raw = model.read_bytes()
    assert b"settings_hash" not in raw and b"m_probabilities" not in raw and raw[:1] != b"{"
    # the attacker's plain JSON in its place: refused, so the night re-trains
    saved = at_rest.read_json(model, home)
    model.write_text(json.dumps(saved))
    assert inc.load_saved(home, "tenancy_two_boroughs") is None
    # another match type's (encrypted) model moved into its place: refused too
    at_rest.write_json(inc.models_dir(home) / "other.json", {**saved, "match_type": "other"}, home)
    (inc.models_dir(home) / "other.json").replace(model)
    assert inc.load_saved(home, "tenancy_two_boroughs") is None
    _, t3 = _night(home, "20260103T020000")
    assert t3["retrained"] == "no saved model" and t3["mode"] == "full"
