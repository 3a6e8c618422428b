"""The nightly DAG through real Airflow (``airflow dags test``) on small generated boroughs.

One module-scoped home: night 1 runs with one feed's newest extract broken;
between nights an investigator records a decision and a second feed breaks;
night 2 must fall back, duplicate nothing and keep the decision.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from orchestrate import isolated_airflow as airflow_local
from councilmatch.home import Home

pytestmark = pytest.mark.slow

NIGHT_1 = "2026-11-24T01:30:00+00:00"
NIGHT_2 = "2026-11-25T01:30:00+00:00"
RUN_1 = "20261124T013000"
RUN_2 = "20261125T013000"
BROKEN = "foo,bar\n1,2\n"  # a header the feed does not map: the extract is rejected whole


def _break_newest_extract(home: Home, feed_id: str) -> Path:
    council, dataset = feed_id.split("/")
    folder = home.landing / council / dataset
    extracts = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    path = folder / ("zzzz-broken" + extracts[-1].suffix if extracts else "zzzz-broken.csv")
    path.write_text(BROKEN)
    return path


def _flags(home: Home, run_id: str) -> pd.DataFrame:
    from anonymise import at_rest

    return at_rest.read_frame(home.flags_path(run_id), home=home)


@pytest.fixture(scope="module")
def nights(generated_home: Home, af: Any) -> dict[str, Any]:
    """Run night 1, record a decision, break a second feed, run night 2."""
    from orchestrate.pipeline import discover_feeds

    home = generated_home
    airflow_local.migrate(home, env=af.dag_env(home))
    feeds = discover_feeds(home)
    csv_feeds = [f for f in feeds if _feed_format(home, f) == "csv"]
    failed_feed, fallback_feed = csv_feeds[0], csv_feeds[-1]
    _break_newest_extract(home, failed_feed)
    out1 = af.run_dag(home, NIGHT_1)
    flags1 = _flags(home, RUN_1)
    assert len(flags1) > 0

    from review.db import writing
    from review.models import ReviewItem
    from review.store import record_decision

    decided = flags1.sort_values("flag_id").iloc[0]
    with writing(home.review_db_url) as session:
        version = session.get(ReviewItem, decided.flag_id).version
        record_decision(session, flag_id=decided.flag_id, council=decided.left_council, actor="investigator-1",
                        expected_version=version, outcome="fraud", amount=1234.5, note="confirmed", close=True)

    _break_newest_extract(home, fallback_feed)
    out2 = af.run_dag(home, NIGHT_2)
    return {"home": home, "feeds": feeds, "failed_feed": failed_feed, "fallback_feed": fallback_feed,
            "decided": decided, "log1": out1, "log2": out2}


def _feed_format(home: Home, feed_id: str) -> str:
    council, dataset = feed_id.split("/")
    return yaml.safe_load((home.feeds / council / f"{dataset}.yaml").read_text()).get("format", "csv")


def test_our_dags_import_cleanly_and_the_check_can_fail(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    shutil.copytree(airflow_local.DAGS_FOLDER, dags, ignore=shutil.ignore_patterns("__pycache__"))
    (dags / "broken_dag.py").write_text("from airflow.sdk import dag\nraise RuntimeError('broken on purpose')\n")
    home = Home(tmp_path / "home")
    env = airflow_local.airflow_env(home, extra={"AIRFLOW__CORE__DAGS_FOLDER": str(dags)})
    airflow_local.migrate(home, env=env)
    airflow_local.airflow(home, ["dags", "reserialize"], env=env, capture=True)
    proc = airflow_local.airflow(home, ["dags", "list-import-errors", "-o", "plain"], env=env, capture=True, check=False)
    errors = proc.stdout
    assert proc.returncode == 1, errors  # the command fails when any file has an import error
    assert "broken_dag.py" in errors and "broken on purpose" in errors
    for ours in ("nightly_matching.py", "retention.py"):
        assert ours not in errors, errors
    listed = airflow_local.airflow(home, ["dags", "list", "-o", "plain"], env=env, capture=True).stdout
    assert "nightly_matching" in listed and "retention_purge" in listed


def test_night_publishes_flags_to_store_and_review(nights: dict[str, Any]) -> None:
    from sqlalchemy import select

    from review.db import reading
    from review.models import ReviewItem

    home = nights["home"]
    flags1 = _flags(home, RUN_1)
    assert set(flags1["run_id"]) == {RUN_1}
    with reading(home.review_db_url) as session:
        in_store = set(session.execute(select(ReviewItem.flag_id)).scalars())
    assert set(flags1["flag_id"]) <= in_store
    assert (home.reports / f"{RUN_1}.html").exists()
    assert "[DAG TEST] end task task_id=link_shard" in nights["log1"]


def test_broken_feed_fails_alone_and_report_names_it(nights: dict[str, Any], af: Any) -> None:
    home = nights["home"]
    report1 = af.report_of(home, RUN_1)
    by_feed = {f["feed_id"]: f for f in report1["feeds"]}
    assert set(by_feed) == set(nights["feeds"])
    assert by_feed[nights["failed_feed"]]["status"] == "failed"
    assert nights["failed_feed"] in report1["feeds_failed"]
    others = [f for fid, f in by_feed.items() if fid != nights["failed_feed"]]
    assert all(f["status"] == "ingested" for f in others), [(f["feed_id"], f["status"]) for f in others]
    assert report1["flags"] > 0
    # Night 2: the second broken feed falls back to its last good extract.
    report2 = af.report_of(home, RUN_2)
    status2 = {f["feed_id"]: f["status"] for f in report2["feeds"]}
    assert status2[nights["fallback_feed"]] == "fell_back"
    assert nights["fallback_feed"] in report2["feeds_fell_back"]
    # The report task's XCom names the failing feeds too.
    report_xcom = [x["text"] for x in af.xcoms(home) if x["task_id"] == "write_report"]
    assert any(nights["fallback_feed"] in t for t in report_xcom)


def test_second_night_duplicates_nothing_and_keeps_the_decision(nights: dict[str, Any]) -> None:
    from sqlalchemy import func, select

    from review.db import reading
    from review.models import CouncilReview, ReviewItem

    home = nights["home"]
    flags1, flags2 = _flags(home, RUN_1), _flags(home, RUN_2)
    assert not flags2["flag_id"].duplicated().any()
    # Same extracts (the broken one fell back): the same flags, under the same ids.
    assert set(flags2["flag_id"]) == set(flags1["flag_id"])
    decided = nights["decided"]
    with reading(home.review_db_url) as session:
        items = session.execute(select(func.count()).select_from(ReviewItem)).scalar_one()
        review = session.execute(select(CouncilReview).where(CouncilReview.flag_id == decided.flag_id,
                                                             CouncilReview.council == decided.left_council)).scalar_one()
        item = session.get(ReviewItem, decided.flag_id)
    assert items == len(set(flags1["flag_id"]) | set(flags2["flag_id"]))
    from review.store import decisions_of, sealer_for

    mine = decisions_of(item, sealer_for(home.review_db_url), decided.left_council)[decided.left_council]
    assert (review.outcome, mine.amount, mine.note, review.closed) == ("fraud", 1234.5, "confirmed", True)
    assert item.retracted_in is None  # raised on both nights, one item (an unchanged flag is not rewritten)


def _clear_values(home: Home) -> set[str]:
    """Clear identifying values from the landing CSVs (source columns the feeds map to identifiers).

    A council's own name (an address's town: "Camden") is public, and task names carry it
    (``E09000007/tenancy (Camden)``), so it is not a needle (as in tests/anonymise/test_privacy.py).
    """
    from councilmatch.contracts import IDENTIFIERS
    from councilmatch.councils import COUNCIL_NAMES

    public = {name.upper() for name in COUNCIL_NAMES.values()}

    values: set[str] = set()
    for feed_file in home.feeds.glob("*/*.yaml"):
        feed = yaml.safe_load(feed_file.read_text())
        if feed.get("format", "csv") != "csv":
            continue
        columns: list[str] = []
        for field, source in (feed.get("columns") or {}).items():
            if field in IDENTIFIERS:
                columns += source if isinstance(source, list) else [source]
        folder = home.landing / feed["council"] / feed["dataset"]
        for extract in folder.glob("*.csv"):
            if extract.name.startswith("zzzz-broken"):
                continue
            frame = pd.read_csv(extract, dtype=str, encoding=feed.get("encoding", "utf-8"),
                                sep=feed.get("delimiter", ","), usecols=lambda c: c in columns)
            for col in frame.columns:
                values |= {v.strip() for v in frame[col].dropna().head(300)
                           if len(v.strip()) >= 6 and v.strip().upper() not in public}
    return values


def test_xcoms_carry_no_clear_identifier_or_key(nights: dict[str, Any], af: Any) -> None:
    home = nights["home"]
    rows = af.xcoms(home)
    tasks = {r["task_id"] for r in rows}
    assert {"discover_feeds", "ingest_feed", "plan_link", "link_shard", "publish_run", "write_report"} <= tasks
    text = "\n".join(r["text"] for r in rows).upper()
    clear = _clear_values(home)
    assert len(clear) > 100, "the scan found too few identifiers to mean anything"
    leaked = sorted(v for v in clear if v.upper() in text)
    assert not leaked, f"clear identifiers in XComs: {leaked[:5]}"
    for key_file in (p for p in home.keys.rglob("*") if p.is_file()):  # keyring, dev KEK, at-rest data keys
        secret = key_file.read_bytes().strip()
        if secret and len(secret) < 200:
            assert secret.decode(errors="ignore").upper() not in text
    assert not re.search(r"\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b", text), "a NINO-shaped value in an XCom"


def test_airflow_task_logs_carry_no_clear_identifier(nights: dict[str, Any]) -> None:
    """Task logs (Airflow's and ours) are files the hub writes: no clear identifier may reach them."""
    home = nights["home"]
    logs = [p for folder in (home.airflow_home / "logs", home.logs) if folder.exists()
            for p in folder.rglob("*") if p.is_file()]
    assert logs, "the nights wrote no task logs to scan"
    text = "\n".join(p.read_text(errors="ignore") for p in logs).upper()
    assert "INGEST_FEED" in text or "ingest_feed" in text.lower(), "the logs do not cover the ingest tasks"
    clear = _clear_values(home)
    leaked = sorted(v for v in clear if v.upper() in text)
    assert not leaked, f"clear identifiers in task logs: {leaked[:5]}"
    assert not re.search(r"\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b", text), "a NINO-shaped value in a task log"


def test_second_night_links_incrementally_with_the_saved_models(nights: dict[str, Any]) -> None:
    from anonymise import at_rest

    home = nights["home"]
    planned = at_rest.read_json(home.runs / RUN_2 / "plan.json", home)
    assert planned["types"]
    for match_type, entry in planned["types"].items():
        assert entry["mode"] == "incremental" and entry["retrained"] is None, (match_type, entry)
    first = at_rest.read_json(home.runs / RUN_1 / "plan.json", home)
    assert {k: v["model_id"] for k, v in planned["types"].items()} == \
        {k: v["model_id"] for k, v in first["types"].items() if k in planned["types"]}


def test_a_full_rerun_is_one_dag_param_away() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("nightly_matching_params", airflow_local.DAGS_FOLDER / "nightly_matching.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.nightly_matching()
    assert dag.params["full"] is False and dag.params["retrain"] is False
