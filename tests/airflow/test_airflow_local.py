"""The isolated Airflow environment of a data home."""

from __future__ import annotations

import stat
from pathlib import Path

from councilmatch import airflow_local
from councilmatch.home import Home


def test_env_is_isolated_and_secrets_are_stable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COUNCILMATCH_SECRETS_DIR", str(tmp_path / "secrets"))
    home = Home(tmp_path / "home")
    base = {"PATH": "/usr/bin", "AIRFLOW_HOME": "/elsewhere", "AIRFLOW__CORE__LOAD_EXAMPLES": "True",
            "AIRFLOW__CORE__DAGS_FOLDER": "/their/dags", "AIRFLOW_CONN_COUNCILMATCH_KEK": "generic://:x@"}
    env = airflow_local.airflow_env(home, base=base)
    assert env["AIRFLOW_HOME"] == str(home.airflow_home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(airflow_local.DAGS_FOLDER)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW_CONN_COUNCILMATCH_KEK"] == "generic://:x@"  # connections pass through
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home.airflow_home / 'airflow.db'}"
    again = airflow_local.airflow_env(home, base=base, extra={"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"})
    assert again["AIRFLOW__CORE__FERNET_KEY"] == env["AIRFLOW__CORE__FERNET_KEY"]  # same per home
    assert again["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # Airflow's Fernet key lives outside the data home: a copied home does not carry it
    path = airflow_local.secrets_path(home)
    assert not path.is_relative_to(home.root) and path.is_relative_to(tmp_path / "secrets")
    assert env["AIRFLOW__CORE__FERNET_KEY"] in path.read_text()
    assert not any(env["AIRFLOW__CORE__FERNET_KEY"].encode() in p.read_bytes()
                   for p in tmp_path.joinpath("home").rglob("*") if p.is_file())
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600
    other = airflow_local.airflow_env(Home(tmp_path / "other"), base=base)
    assert other["AIRFLOW__API_AUTH__JWT_SECRET"] != env["AIRFLOW__API_AUTH__JWT_SECRET"]


def test_topology_settings_render_the_shared_file() -> None:
    s = airflow_local.topology_settings(db_host="db", db_port=5433, redis_host="rd", redis_port=6380,
                                        api_server="http://api:9", passwords={"AIRFLOW_DB_PASSWORD": "a",
                                                                              "REVIEW_DB_PASSWORD": "r",
                                                                              "REDIS_PASSWORD": "p"})
    shared = airflow_local.shared_settings()
    assert s["AIRFLOW__CORE__EXECUTOR"] == shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert s["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"postgresql+psycopg://{shared['AIRFLOW_DB_USER']}:a@db:5433/{shared['AIRFLOW_DB_NAME']}"
    assert s["AIRFLOW__CELERY__BROKER_URL"] == "redis://:p@rd:6380/0"
    assert s["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api:9/execution/"
    assert s["COUNCILMATCH_REVIEW_DB_URL"].endswith(f":r@db:5433/{shared['REVIEW_DB_NAME']}")


def test_secrets_left_in_an_old_home_are_moved_out(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COUNCILMATCH_SECRETS_DIR", str(tmp_path / "secrets"))
    home = Home(tmp_path / "home")
    home.airflow_home.mkdir(parents=True)
    (home.airflow_home / "secrets.env").write_text("AIRFLOW__CORE__FERNET_KEY=oldkey\n")
    env = airflow_local.airflow_env(home, base={"PATH": "/usr/bin"})
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "oldkey"  # Airflow can still decrypt what it stored
    assert not (home.airflow_home / "secrets.env").exists()
    assert "oldkey" in airflow_local.secrets_path(home).read_text()
