"""The production topology without Docker: CeleryExecutor on PostgreSQL + Redis, two workers.

PostgreSQL and Redis are started here from the Debian binaries (this test needs
a superuser to run the compose file's own ``deploy/postgres-init.sh``, so it
always uses its own throwaway servers on loopback). Airflow runs a scheduler, a
dag-processor, an api-server (the task execution API Airflow 3 workers talk to)
and two Celery workers, all with the settings ``topology_settings`` renders
(the same the compose test checks). We trigger the nightly DAG and check that
link shards ran on both workers and that the flags equal ``run_all``'s.

The same night loses a worker: ``worker-1`` holds its second link shard (scored, not yet
written) at a test-only gate (``matching.run.SHARD_GATE_VARIABLE``), and we SIGKILL that
worker's whole process tree while the shard is in flight. The scheduler sees the task's
heartbeats stop, fails that try, and the DAG's retries run it again on ``worker-2``; the run
still succeeds and its flags still equal a single-process run's.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil

from anonymise import at_rest
import pytest
from sqlalchemy import create_engine, text

from orchestrate import isolated_airflow as airflow_local
from councilmatch.home import Home
from matching.run import SHARD_GATE_VARIABLE

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("airflow_topology", Path(__file__).with_name("topology.py"))
topology = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = topology  # dataclasses look their module up by name
_spec.loader.exec_module(topology)

LOGICAL_DATE = "2026-11-24T01:30:00+00:00"
RUN_ID = "20261124T013000"
AIRFLOW_RUN_ID = "native_night_1"
WORKERS = ("worker-1", "worker-2")
VICTIM, SURVIVOR = WORKERS  # the worker killed mid-shard, and the one its shard is retried on
#: seconds without a heartbeat before the scheduler fails a running try (Airflow's default is 300)
HEARTBEAT_TIMEOUT = 45


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
        # One retry, soon: the shard of the killed worker runs again elsewhere. (Any other task
        # that needed its retry shows in test_only_the_killed_shard_was_retried.)
        "COUNCILMATCH_TASK_RETRIES": "1",
        "COUNCILMATCH_RETRY_DELAY_SECONDS": "2",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
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
    gate = root / "shard-gate"
    gate.mkdir()
    airflow = topology.Airflow(home, env, api_port)
    try:
        airflow_local.migrate(home, env=env)
        airflow.start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(api_port)])
        airflow.start("scheduler", ["scheduler", "--skip-serve-logs"])
        airflow.start("dag-processor", ["dag-processor"])
        for name in WORKERS:
            airflow.start(name, ["celery", "worker", "--concurrency", "1", "--celery-hostname", f"{name}@%h",
                                 "--skip-serve-logs", "--without-mingle", "--without-gossip"],
                          COUNCILMATCH_WORKER_NAME=name,
                          **({SHARD_GATE_VARIABLE: str(gate)} if name == VICTIM else {}))
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
        # worker-1 holds its second link shard at the gate: kill the worker while it is in flight
        topology.wait_for(lambda: (gate / "held").exists() or _finished(), 900, "a link shard held on " + VICTIM,
                          interval=1, alive=airflow.check_alive)
        killed = _kill_worker(airflow, VICTIM, gate / "held")
        topology.wait_for(_finished, 900, "the DAG run", interval=3, alive=airflow.check_alive)
        seconds = time.monotonic() - started
        params = {"d": airflow_local.DAG_ID, "r": AIRFLOW_RUN_ID}
        with meta.connect() as c:
            tis = pd.read_sql(text("SELECT task_id, map_index, rendered_map_index, state, hostname, queue, "
                                   "try_number FROM task_instance WHERE dag_id = :d AND run_id = :r"), c, params=params)
            history = pd.read_sql(text("SELECT task_id, map_index, try_number, state, hostname "
                                       "FROM task_instance_history WHERE dag_id = :d AND run_id = :r"), c, params=params)
            events = pd.read_sql(text("SELECT event, task_id, map_index FROM log "
                                      "WHERE dag_id = :d AND run_id = :r"), c, params=params)
        meta.dispose()
        yield {"home": home, "single": Home(single), "state": state["run"], "tis": tis, "seconds": seconds,
               "env": env, "airflow": airflow, "killed": killed, "history": history, "events": events}
    finally:
        airflow.stop()
        services.stop()


def _kill_worker(airflow: Any, name: str, held: Path) -> dict[str, Any]:
    """SIGKILL a Celery worker's process group and every process under it, as a lost machine.

    Airflow's supervisor puts each task process in a process group of its own, so killing the
    worker's group alone would leave the task running as an orphan: the rest of its tree is
    killed by pid. The worker leaves the processes the topology watches (it is meant to die).
    """
    if not held.exists():
        raise AssertionError(f"the DAG run finished before {name} held a link shard at the gate")
    match_type, shard, task_pid = held.read_text().split()
    proc = airflow.procs.pop(name)
    tree = psutil.Process(proc.pid).children(recursive=True)
    assert int(task_pid) in {p.pid for p in tree}, f"the held shard (pid {task_pid}) is not {name}'s"
    os.killpg(proc.pid, signal.SIGKILL)
    for p in tree:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(30)
    _, alive = psutil.wait_procs(tree, timeout=30)
    return {"worker": name, "returncode": proc.returncode, "alive_after": [p.pid for p in alive],
            "match_type": match_type, "shard": int(shard), "task_pid": int(task_pid),
            "log": (airflow.home.logs / f"{name}.log").read_text(errors="replace")}


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


def _killed_shard(night: Any) -> pd.Series:
    killed, tis = night["killed"], night["tis"]
    shards = tis[tis["task_id"] == "link_shard"]
    label = shards["rendered_map_index"].str.rsplit(" ", n=1)
    mine = shards[(label.str[0] == killed["match_type"])
                  & (label.str[1].str.split("/").str[0] == str(killed["shard"] + 1))]
    assert len(mine) == 1, shards[["map_index", "rendered_map_index"]]
    return mine.iloc[0]


def test_killed_worker_shard_is_retried_on_the_other_worker(night: Any) -> None:
    killed = night["killed"]
    # the worker and its whole tree died by SIGKILL while the shard was held (linked, not yet written)
    assert killed["worker"] == VICTIM and killed["returncode"] == -signal.SIGKILL
    assert killed["alive_after"] == [] and not psutil.pid_exists(killed["task_pid"])
    shard = _killed_shard(night)
    # the shard's second try ran on the surviving worker, and succeeded
    assert shard["state"] == "success" and shard["try_number"] == 2 and shard["hostname"] == SURVIVOR, shard
    history = night["history"]
    first = history[(history["task_id"] == "link_shard") & (history["map_index"] == shard["map_index"])
                    & (history["try_number"] == 1)]
    assert len(first) == 1 and first.iloc[0]["hostname"] == VICTIM, history
    assert first.iloc[0]["state"] != "success", first
    # failed by the scheduler because its heartbeats stopped, not by the task itself
    events = night["events"]
    assert ((events["event"] == "heartbeat timeout") & (events["task_id"] == "link_shard")
            & (events["map_index"] == shard["map_index"])).any(), events
    # the killed worker had started (and logged) that shard
    assert "task_id=link_shard" in killed["log"]


def test_only_the_killed_shard_was_retried(night: Any) -> None:
    """Retries are on for this night; no other task may have needed one (it would hide a failure)."""
    tis = night["tis"]
    shard = _killed_shard(night)
    others = tis[~((tis["task_id"] == "link_shard") & (tis["map_index"] == shard["map_index"]))]
    assert (others["try_number"] == 1).all(), others[others["try_number"] != 1]


def test_flags_equal_single_process_run_all(night: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The night that lost a worker mid-shard publishes exactly the single-process run's flags."""
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
