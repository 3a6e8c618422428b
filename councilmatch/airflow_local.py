"""Run Airflow against one data home, isolated from any other Airflow on the machine.

The demo, the tests and an operator's laptop all use the same recipe: an
``AIRFLOW_HOME`` inside the data home (``home/airflow``), the repository's
``dags/`` folder, no example DAGs, and per-home secrets (Fernet key, JWT
secret) generated once and kept in ``secrets.env`` (mode 0600) **outside** the data
home (``$COUNCILMATCH_SECRETS_DIR``, else ``~/.config/councilmatch/airflow/<home hash>/``),
so a copy of the home does not carry the key to Airflow's connections and variables.
By default the metadata DB is an embedded SQLite file; the native topology
test and production pass PostgreSQL and Celery settings instead.

The settings production shares with the native topology (executor, DB and
user names, ...) live in ``deploy/settings.conf``: ``docker-compose.yml`` loads
that file and :func:`shared_settings` reads it, so the two cannot drift.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Mapping, Sequence

from councilmatch.home import Home

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"
SHARED_SETTINGS_FILE = REPO_ROOT / "deploy" / "settings.conf"
DAG_ID = "nightly_matching"
RETENTION_DAG_ID = "retention_purge"

#: Connection URL templates: the compose file and the native topology fill in
#: host, port and password; everything else comes from deploy/settings.conf.
METADATA_DB_URL = "postgresql+psycopg://{user}:{password}@{host}:{port}/{db}"
#: Airflow 3's API server also opens the metadata DB asynchronously; psycopg 3 does
#: both (without this Airflow would guess asyncpg, which is not installed).
METADATA_DB_ASYNC_URL = "postgresql+psycopg_async://{user}:{password}@{host}:{port}/{db}"
REVIEW_DB_URL = "postgresql+psycopg://{user}:{password}@{host}:{port}/{db}"
CELERY_RESULT_BACKEND_URL = "db+postgresql+psycopg://{user}:{password}@{host}:{port}/{db}"
CELERY_BROKER_URL = "redis://:{password}@{host}:{port}/0"


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``KEY=value`` file (comments and blank lines ignored, no shell expansion)."""
    values: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f"{path}:{lineno}: expected KEY=value, got {line!r}")
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def shared_settings() -> dict[str, str]:
    """The settings production and the native topology test share (deploy/settings.conf)."""
    return read_env_file(SHARED_SETTINGS_FILE)


def topology_settings(
    *,
    db_host: str,
    db_port: int,
    redis_host: str,
    redis_port: int,
    api_server: str,
    passwords: Mapping[str, str],
) -> dict[str, str]:
    """Airflow + councilmatch settings of the production topology (CeleryExecutor, PostgreSQL, Redis).

    ``docker-compose.yml`` holds the same values rendered for its service names
    (a test checks it); the native topology test renders them for loopback.
    ``passwords`` maps AIRFLOW_DB_PASSWORD, REVIEW_DB_PASSWORD and REDIS_PASSWORD.
    """
    shared = shared_settings()
    airflow_db = dict(user=shared["AIRFLOW_DB_USER"], password=passwords["AIRFLOW_DB_PASSWORD"],
                      host=db_host, port=db_port, db=shared["AIRFLOW_DB_NAME"])
    review_db = dict(user=shared["REVIEW_DB_USER"], password=passwords["REVIEW_DB_PASSWORD"],
                     host=db_host, port=db_port, db=shared["REVIEW_DB_NAME"])
    return {
        **shared,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": METADATA_DB_URL.format(**airflow_db),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": METADATA_DB_ASYNC_URL.format(**airflow_db),
        "AIRFLOW__CELERY__RESULT_BACKEND": CELERY_RESULT_BACKEND_URL.format(**airflow_db),
        "AIRFLOW__CELERY__BROKER_URL": CELERY_BROKER_URL.format(
            password=passwords["REDIS_PASSWORD"], host=redis_host, port=redis_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_server.rstrip('/')}/execution/",
        "COUNCILMATCH_REVIEW_DB_URL": REVIEW_DB_URL.format(**review_db),
    }


def secrets_path(home: Home) -> Path:
    """Where a home's Airflow secrets live: outside the data home, one folder per home."""
    import hashlib

    base = os.environ.get("COUNCILMATCH_SECRETS_DIR")
    root = Path(base) if base else Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "councilmatch" / "airflow"
    return root / hashlib.sha256(str(home.root).encode()).hexdigest()[:16] / "secrets.env"


def _home_secrets(home: Home) -> dict[str, str]:
    """Per-home Fernet key and JWT/API secrets, created once so every component agrees."""
    path = secrets_path(home)
    legacy = home.airflow_home / "secrets.env"  # before the secrets moved out of the home
    if legacy.exists() and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(legacy.read_text())
    if legacy.exists():
        legacy.unlink()
    if path.exists():
        return read_env_file(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    values = {
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in values.items())
    return values


def airflow_env(
    home: Home | Path | str,
    *,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for an ``airflow`` process bound to this data home.

    Starts from ``base`` (default: this process's environment) without the
    inherited ``AIRFLOW_HOME`` and ``AIRFLOW__*`` settings, so a developer's own
    Airflow config never leaks in (``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` pass
    through, e.g. the ``councilmatch_kek`` connection); ``extra`` wins over the defaults.
    """
    home = home if isinstance(home, Home) else Home.resolve(home)
    airflow_home = home.airflow_home
    inherited = base if base is not None else os.environ
    env = {k: v for k, v in inherited.items() if not (k == "AIRFLOW_HOME" or k.startswith("AIRFLOW__"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.update(_home_secrets(home))
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "COUNCILMATCH_HOME": str(home.root),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Europe/London",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "True",
            # The repo root on the path so DAG files can import the packages
            # even when the project is not installed (e.g. a bare checkout).
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
        }
    )
    if extra:
        env.update(extra)
    return env


def airflow(
    home: Home | Path | str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``airflow <args>`` for this data home (the venv's own airflow)."""
    run_env = dict(env) if env is not None else airflow_env(home)
    exe = Path(sys.executable).parent / "airflow"
    cmd = [str(exe) if exe.exists() else "airflow", *args]
    return subprocess.run(
        cmd, env=run_env, check=check, text=True, timeout=timeout,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
    )


def migrate(home: Home | Path | str, *, env: Mapping[str, str] | None = None) -> None:
    """``airflow db migrate``: creates or upgrades the metadata DB (idempotent)."""
    proc = airflow(home, ["db", "migrate"], env=env, check=False, capture=True)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")


def dags_test(
    home: Home | Path | str,
    dag_id: str = DAG_ID,
    *,
    logical_date: str | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a whole DAG in-process through Airflow (``airflow dags test``); raises if a task fails."""
    args = ["dags", "test", dag_id]
    if logical_date:
        args.append(logical_date)
    return airflow(home, args, env=env, check=False, capture=capture, timeout=timeout)


# ---------------------------------------------------------------------------
# Inside a task: where the data home is, and the run id
# ---------------------------------------------------------------------------

HOME_VARIABLE = "COUNCILMATCH_HOME"


def task_home() -> Home:
    """The data home a task works on: ``$COUNCILMATCH_HOME``, else the Airflow Variable of that name."""
    root = os.environ.get(HOME_VARIABLE)
    if not root:
        from airflow.sdk import Variable

        root = Variable.get(HOME_VARIABLE, default=None)
    if not root:
        raise RuntimeError(
            f"no data home: set the {HOME_VARIABLE} environment variable or Airflow Variable on every worker"
        )
    return Home.resolve(root)


def run_id_for(when: datetime) -> str:
    """The councilmatch run id of an Airflow DAG run, from its logical date (else ``run_after``):
    a cleared and re-run night keeps its id (idempotent), and ids sort by time like
    ``councilmatch run``'s."""
    from councilmatch.pipeline import make_run_id

    return make_run_id(when)


def process_hostname() -> str:
    """Airflow's ``hostname_callable``: ``$COUNCILMATCH_WORKER_NAME`` if set, else the FQDN.

    Lets several Celery workers on one machine be told apart in task instances
    (the native topology test runs two; in containers each has its own hostname anyway).
    """
    import socket

    return os.environ.get("COUNCILMATCH_WORKER_NAME") or socket.getfqdn()
