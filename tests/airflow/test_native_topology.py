"""The production topology without Docker: CeleryExecutor on PostgreSQL + Redis, two workers.

PostgreSQL and Redis are started here from the Debian binaries (this test needs
a superuser to run the compose file's own ``deploy/postgres-init.sh``, so it
always uses its own throwaway servers on loopback). Airflow runs a scheduler, a
dag-processor, an api-server (the task execution API Airflow 3 workers talk to)
and two Celery workers, all with the settings ``topology_settings`` renders
(the same the compose test checks). We trigger the nightly DAG and check that
link shards ran on both workers and that the flags equal ``run_all``'s.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from anonymise import at_rest
import pytest
from sqlalchemy import create_engine, text

from orchestrate import isolated_airflow as airflow_local
from councilmatch.home import Home

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("airflow_topology", Path(__file__).with_name("topology.py"))
topology = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = topology  # dataclasses look their module up by name
_spec.loader.exec_module(topology)

LOGICAL_DATE = "2026-11-24T01:30:00+00:00"
RUN_ID = "20261124T013000"
AIRFLOW_RUN_ID = "native_night_1"
WORKERS = ("worker-1", "worker-2")


def _binaries_missing() -> str | None:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "PostgreSQL binaries missing"
    if not shutil.which("redis-server"):
        return "redis-server missing"
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        return "no postgres system user to run the server as"
    return None


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory, af: Any) -> Any:
    missing = _binaries_missing()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("topology")
    home = af.make_home(root / "home", boroughs=2, people=1000)  # the topology, not the data, is under test
    single = root / "single-process"
    from anonymise.minimise import ref_key

    ref_key(home)  # made on first use otherwise: both copies must key record references alike
    shutil.copytree(home.root, single)  # the same extracts and keys, for run_all

    # Outside pytest's 0700 temp tree: the server runs as the postgres user, who must reach it.
    services = topology.Services.start(Path(tempfile.mkdtemp(prefix="councilmatch-services-")))
    api_port = topology.free_port()
    env = airflow_local.airflow_env(home, extra={
        **services.settings(api_port),
        "COUNCILMATCH_TASK_RETRIES": "0",
        "COUNCILMATCH_NIGHTLY_SCHEDULE": "manual",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "orchestrate.isolated_airflow.process_hostname",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__API__WORKERS": "1",
        # Only the DAG under test runs (the retention DAG's latest run would be created at once).
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # Two cores shared by five Airflow processes and the tasks: be patient with the API.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
    })
    airflow = topology.Airflow(home, env, api_port)
    try:
        airflow_local.migrate(home, env=env)
        airflow.start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(api_port)])
        airflow.start("scheduler", ["scheduler", "--skip-serve-logs"])
        airflow.start("dag-processor", ["dag-processor"])
        for name in WORKERS:
            airflow.start(name, ["celery", "worker", "--concurrency", "1", "--celery-hostname", f"{name}@%h",
                                 "--skip-serve-logs", "--without-mingle", "--without-gossip"],
                          COUNCILMATCH_WORKER_NAME=name)
        meta = create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])

        def _ready() -> bool:
            return httpx.get(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=5).status_code == 200

        topology.wait_for(_ready, 180, "the api-server", alive=airflow.check_alive)

        def _parsed() -> bool:
            with meta.connect() as c:
                return c.execute(text("SELECT count(*) FROM dag WHERE dag_id = :d"),
                                 {"d": airflow_local.DAG_ID}).scalar_one() == 1

        topology.wait_for(_parsed, 180, "the dag-processor to parse nightly_matching", alive=airflow.check_alive)
        airflow_local.airflow(home, ["dags", "unpause", airflow_local.DAG_ID], env=env, capture=True)
        airflow_local.airflow(home, ["dags", "trigger", airflow_local.DAG_ID, "--logical-date", LOGICAL_DATE,
                                     "--run-id", AIRFLOW_RUN_ID], env=env, capture=True)

        state: dict[str, str] = {}

        def _finished() -> bool:
            with meta.connect() as c:
                state["run"] = c.execute(text("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r"),
                                         {"d": airflow_local.DAG_ID, "r": AIRFLOW_RUN_ID}).scalar_one()
            return state["run"] in ("success", "failed")

        started = time.monotonic()
        topology.wait_for(_finished, 900, "the DAG run", interval=3, alive=airflow.check_alive)
        seconds = time.monotonic() - started
        with meta.connect() as c:
            tis = pd.read_sql(text("SELECT task_id, map_index, state, hostname, queue FROM task_instance "
                                   "WHERE dag_id = :d AND run_id = :r"), c,
                              params={"d": airflow_local.DAG_ID, "r": AIRFLOW_RUN_ID})
        meta.dispose()
        yield {"home": home, "single": Home(single), "state": state["run"], "tis": tis, "seconds": seconds,
               "env": env, "airflow": airflow}
    finally:
        airflow.stop()
        services.stop()


def test_dag_run_succeeds_on_celery(night: Any) -> None:
    tis = night["tis"]
    failed = tis[tis["state"] != "success"]
    assert night["state"] == "success", f"run {night['state']}; not successful:\n{failed}"
    assert failed.empty, failed
    print(f"native topology: DAG run took {night['seconds']:.0f}s for {len(tis)} task instances")


def test_link_shards_ran_on_both_workers(night: Any) -> None:
    tis = night["tis"]
    shards = tis[tis["task_id"] == "link_shard"]
    assert len(shards) >= 2
    assert set(shards["hostname"]) == set(WORKERS), shards[["map_index", "hostname"]]
    # Every task ran on one of the Celery workers, never in the scheduler.
    assert set(tis["hostname"]) <= set(WORKERS)
    # And each Celery worker's own log shows it executing link shards.
    for name in WORKERS:
        executed = [line for line in night["airflow"].log(name).splitlines() if "Executing workload in Celery" in line]
        assert any("task_id=link_shard" in line for line in executed), f"{name} ran no link shard"


def test_flags_equal_single_process_run_all(night: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrate.pipeline import run_all

    home, single = night["home"], night["single"]
    dag_flags = at_rest.read_frame(home.flags_path(RUN_ID), home=home)
    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    run_all(single, run_id=RUN_ID)
    ref = at_rest.read_frame(single.flags_path(RUN_ID), home=single)
    assert len(ref) > 0
    cols = ["flag_id", "match_type", "left_record_id", "right_record_id", "evidence_hash"]
    a = dag_flags[cols].sort_values("flag_id").reset_index(drop=True)
    b = ref[cols].sort_values("flag_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    merged = dag_flags.merge(ref, on="flag_id", suffixes=("_dag", "_ref"))
    assert (merged["match_probability_dag"] - merged["match_probability_ref"]).abs().max() < 1e-9


def test_review_store_on_postgresql_holds_the_flags(night: Any) -> None:
    from sqlalchemy import func, select

    from review.db import reading
    from review.models import ReviewItem

    url = night["env"]["COUNCILMATCH_REVIEW_DB_URL"]
    assert url.startswith("postgresql+psycopg://")
    flags = at_rest.read_frame(night["home"].flags_path(RUN_ID), home=night["home"])
    with reading(url) as session:
        assert session.execute(select(func.count()).select_from(ReviewItem)).scalar_one() == len(flags)
