"""The isolated Airflow environment of a data home."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from orchestrate import isolated_airflow as airflow_local
from councilmatch.home import Home


@pytest.fixture(autouse=True)
def _secrets_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "secrets"
    monkeypatch.setenv(airflow_local.SECRETS_ROOT_VARIABLE, str(root))
    monkeypatch.delenv(airflow_local.SECRETS_ROOT_ALIAS, raising=False)
    return root


def test_env_is_isolated_and_secrets_are_stable(tmp_path: Path) -> None:
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
    assert path == airflow_local.secrets_dir(home) / "secrets.env"
    assert not path.is_relative_to(home.root) and path.is_relative_to(tmp_path / "secrets")
    assert env["AIRFLOW__CORE__FERNET_KEY"] in path.read_text()
    assert not any(env["AIRFLOW__CORE__FERNET_KEY"].encode() in p.read_bytes()
                   for p in tmp_path.joinpath("home").rglob("*") if p.is_file())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
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


def test_airflow_secrets_live_outside_the_data_home(tmp_path: Path, _secrets_root: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the data home carries no Airflow secret: not the Fernet key, the JWT and API
    secrets, Airflow's generated config, nor the UI's passwords. An old home's secrets move out."""
    home = Home(tmp_path / "home").ensure()
    home.airflow_home.mkdir(parents=True)
    legacy = {"AIRFLOW__CORE__FERNET_KEY": "bGVnYWN5LWZlcm5ldC1rZXktMzItYnl0ZXMtbG9uZyE=",
              "AIRFLOW__API_AUTH__JWT_SECRET": "legacy-jwt", "AIRFLOW__API__SECRET_KEY": "legacy-api"}
    (home.airflow_home / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in legacy.items()))
    env = airflow_local.airflow_env(home, base={"PATH": "/usr/bin"})
    assert env["AIRFLOW__CORE__FERNET_KEY"] == legacy["AIRFLOW__CORE__FERNET_KEY"]  # kept: old connections decrypt
    password = airflow_local.ui_password(home)
    assert airflow_local.ui_password(home) == password and len(password) >= 12
    private = airflow_local.secrets_dir(home)
    assert private.is_relative_to(_secrets_root) and not private.is_relative_to(home.root)
    for key in ("AIRFLOW_CONFIG", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"):
        assert Path(env[key]).parent == private
    pw_file = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert json.loads(pw_file.read_text()) == {airflow_local.UI_USER: password}
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    secrets = [*legacy.values(), password]
    for path in home.root.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            assert not any(s in text for s in secrets), path
    # Pointing the secrets into the data home is refused.
    monkeypatch.setenv(airflow_local.SECRETS_ROOT_VARIABLE, str(home.root / "keys"))
    with pytest.raises(ValueError, match="outside the data home"):
        airflow_local.secrets_dir(home)
    # Two homes never share secrets.
    monkeypatch.setenv(airflow_local.SECRETS_ROOT_VARIABLE, str(_secrets_root))
    assert airflow_local.secrets_dir(Home(tmp_path / "other")) != private


def test_secrets_left_in_an_old_home_are_moved_out(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.airflow_home.mkdir(parents=True)
    (home.airflow_home / "secrets.env").write_text("AIRFLOW__CORE__FERNET_KEY=oldkey\n")
    env = airflow_local.airflow_env(home, base={"PATH": "/usr/bin"})
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "oldkey"  # Airflow can still decrypt what it stored
    assert not (home.airflow_home / "secrets.env").exists()
    assert "oldkey" in airflow_local.secrets_path(home).read_text()


def test_the_older_secrets_variable_is_an_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``COUNCILMATCH_AIRFLOW_SECRETS_DIR`` still works; ``COUNCILMATCH_SECRETS_DIR`` wins over it,
    and the alias cannot point into the data home either."""
    home = Home(tmp_path / "home").ensure()
    monkeypatch.delenv(airflow_local.SECRETS_ROOT_VARIABLE)
    monkeypatch.setenv(airflow_local.SECRETS_ROOT_ALIAS, str(tmp_path / "old-name"))
    assert airflow_local.secrets_dir(home).is_relative_to(tmp_path / "old-name")
    monkeypatch.setenv(airflow_local.SECRETS_ROOT_VARIABLE, str(tmp_path / "new-name"))
    assert airflow_local.secrets_dir(home).is_relative_to(tmp_path / "new-name")
    monkeypatch.delenv(airflow_local.SECRETS_ROOT_VARIABLE)
    monkeypatch.setenv(airflow_local.SECRETS_ROOT_ALIAS, str(home.root))
    with pytest.raises(ValueError, match="COUNCILMATCH_AIRFLOW_SECRETS_DIR=.*outside the data home"):
        airflow_local.secrets_dir(home)
