"""Fixtures for the Airflow tests: a small generated data home with an isolated Airflow."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest

from orchestrate import isolated_airflow as airflow_local
from councilmatch.home import Home

BOROUGHS = 3
PEOPLE = 2000
SEED = 5


@pytest.fixture(scope="session", autouse=True)
def airflow_secrets_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Airflow secrets of the tests' homes in a temp folder (outside every home), not in ~/.config."""
    root = tmp_path_factory.mktemp("airflow-secrets")
    saved = {v: os.environ.pop(v, None) for v in (airflow_local.SECRETS_ROOT_VARIABLE, airflow_local.SECRETS_ROOT_ALIAS)}
    os.environ[airflow_local.SECRETS_ROOT_VARIABLE] = str(root)
    yield root
    for name, before in saved.items():
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def make_home(root: Path, boroughs: int = BOROUGHS, people: int = PEOPLE) -> Home:
    """Generate small boroughs and a keyring (development KEK in home/keys)."""
    from anonymise.keys import init_keys
    from synthetic import generate

    home = Home(root).ensure()
    home.settings_file.write_text("link_shards: 2\n")  # fewer, larger mapped tasks: enough to test sharding
    generate(home, boroughs=boroughs, people=people, seed=SEED)
    init_keys(home)
    return home


def dag_env(home: Home, **extra: str) -> dict[str, str]:
    """Environment for ``airflow`` on this home: no retries (a failure shows at once), SQLite review store."""
    env = airflow_local.airflow_env(home, extra={"COUNCILMATCH_TASK_RETRIES": "0", **extra})
    env.pop("COUNCILMATCH_REVIEW_DB_URL", None)
    return env


def run_dag(home: Home, logical_date: str, env: dict[str, str] | None = None) -> str:
    proc = airflow_local.dags_test(home, airflow_local.DAG_ID, logical_date=logical_date,
                                   env=env or dag_env(home), capture=True, timeout=600)
    log = home.logs / f"dags-test-{logical_date[:10]}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout or "")
    assert proc.returncode == 0, f"airflow dags test failed; log {log}:\n" + "\n".join(proc.stdout.splitlines()[-60:])
    return proc.stdout


def xcoms(home: Home, airflow_run_id: str | None = None) -> list[dict[str, Any]]:
    """Every XCom row of the nightly DAG in this home's metadata DB (SQLite)."""
    db = home.airflow_home / "airflow.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT task_id, map_index, key, run_id, value FROM xcom WHERE dag_id = ?", (airflow_local.DAG_ID,)
        ).fetchall()
    out = []
    for task_id, map_index, key, run_id, value in rows:
        if airflow_run_id and run_id != airflow_run_id:
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        out.append({"task_id": task_id, "map_index": map_index, "key": key, "run_id": run_id, "text": text})
    return out


@pytest.fixture(scope="module")
def generated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    yield make_home(tmp_path_factory.mktemp("airflow-home") / "home")


def report_of(home: Home, run_id: str) -> dict[str, Any]:
    return json.loads((home.reports / f"{run_id}.json").read_text())


@pytest.fixture(scope="session")
def af() -> Any:
    """The helpers above, for test modules (importlib mode cannot import conftest by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(make_home=make_home, dag_env=dag_env, run_dag=run_dag, xcoms=xcoms, report_of=report_of)
