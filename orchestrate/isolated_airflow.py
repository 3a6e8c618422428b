"""Run Airflow against one data home, isolated from any other Airflow on the machine.

The demo, the tests and an operator's laptop all use the same recipe: an
``AIRFLOW_HOME`` inside the data home (``home/airflow``: metadata DB and task
logs), the repository's ``dags/`` folder, no example DAGs, and per-home secrets
(Fernet key, JWT secret, API secret, the UI's password file and Airflow's own
``airflow.cfg``, which holds generated secrets too) kept **outside** the data home,
in :func:`secrets_dir` (``$COUNCILMATCH_SECRETS_DIR/<home hash>/``, else
``~/.config/councilmatch/airflow/<home hash>/``; mode 0700, files 0600): a copy or
theft of the data home does not carry the key to Airflow's connections and
variables. By default the metadata DB is an embedded SQLite file; the native
topology test and production pass PostgreSQL and Celery settings instead.

:func:`start_api_server` runs Airflow's UI (the api-server with the simple auth
manager) on loopback for the demo, against the same metadata DB the night used.

The settings production shares with the native topology (executor, DB and
user names, ...) live in ``deploy/settings.conf``: ``docker-compose.yml`` loads
that file and :func:`shared_settings` reads it, so the two cannot drift.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping, Sequence

from anonymise import kek
from councilmatch.environment import environment, variable
from councilmatch.fileio import atomic_write, write_once
from councilmatch.home import Home

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"
#: Airflow plugins of this project: the "Run report" extra link on the nightly DAG's tasks.
PLUGINS_FOLDER = REPO_ROOT / "plugins"
#: Where the review app serves run reports (``<url>/reports/<run_id>``); the extra link and
#: the DAG run note point there. Unset: no link.
REVIEW_URL_VARIABLE = variable("review_url")
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


#: The folder under which per-home Airflow secrets live (default ``~/.config/councilmatch/airflow``).
SECRETS_ROOT_VARIABLE = variable("secrets_dir")
#: Older name of the same setting, still accepted (``SECRETS_ROOT_VARIABLE`` wins if both are set).
SECRETS_ROOT_ALIAS = variable("airflow_secrets_dir")
#: The Airflow UI user of the demo (simple auth manager role ``op``: can see everything and
#: clear or re-run tasks, cannot change connections or users).
UI_USER = "operator"
UI_ROLE = "op"


def secrets_dir(home: Home | Path | str) -> Path:
    """The folder for this home's Airflow secrets, outside the data home.

    ``$COUNCILMATCH_SECRETS_DIR/<id>`` (or the older ``$COUNCILMATCH_AIRFLOW_SECRETS_DIR/<id>``)
    if set, else ``$XDG_CONFIG_HOME`` (or ``~/.config``) ``/councilmatch/airflow/<id>``, where
    ``<id>`` is a hash of the home's path (one secrets folder per home). Refuses a location
    inside the data home.
    """
    home = home if isinstance(home, Home) else Home.resolve(home)
    env = environment()
    name, root_setting = next(((v, str(value)) for v, value in ((SECRETS_ROOT_VARIABLE, env.secrets_dir),
                                                                (SECRETS_ROOT_ALIAS, env.airflow_secrets_dir))
                               if value is not None), (SECRETS_ROOT_VARIABLE, ""))
    if root_setting:
        root = Path(root_setting).expanduser().resolve()
    else:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config").expanduser()  # not ours
        root = config.resolve() / "councilmatch" / "airflow"
    folder = root / hashlib.sha256(str(home.root).encode()).hexdigest()[:16]
    if folder == home.root or home.root in folder.parents:
        raise ValueError(f"{name}={root}: Airflow's secrets must live outside the data home {home.root}")
    return folder


def secrets_path(home: Home | Path | str) -> Path:
    """This home's Fernet key and JWT/API secrets file (``secrets.env`` in :func:`secrets_dir`)."""
    return secrets_dir(home) / "secrets.env"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _home_secrets(home: Home) -> dict[str, str]:
    """Per-home Fernet key and JWT/API secrets, created once so every component agrees.

    Kept in :func:`secrets_dir` (outside the data home). A home made before this rule
    kept them in ``home/airflow/secrets.env``: they are moved out (the same Fernet key,
    so connections encrypted with it stay readable) and the old file is deleted.
    """
    folder = _private_dir(secrets_dir(home))
    path = folder / "secrets.env"
    legacy = home.airflow_home / "secrets.env"
    if not path.exists() and legacy.exists():
        write_once(path, legacy.read_bytes())  # 0600 from the first byte
    if legacy.exists():
        legacy.unlink()
    if path.exists():
        return read_env_file(path)
    values = {
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }
    write_once(path, "".join(f"{k}={v}\n" for k, v in values.items()).encode())
    return read_env_file(path)  # another process may have created them first: everyone uses one set


def ui_password(home: Home | Path | str, username: str = UI_USER) -> str:
    """The Airflow UI password of ``username`` (simple auth manager), created once per home.

    We write the simple auth manager's password file ourselves (in :func:`secrets_dir`,
    mode 0600) rather than let Airflow generate it, so the demo can print the password
    and the file is never in the data home.
    """
    home = home if isinstance(home, Home) else Home.resolve(home)
    path = _private_dir(secrets_dir(home)) / "simple_auth_manager_passwords.json"
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if username not in passwords:
        passwords[username] = secrets.token_urlsafe(12)
        atomic_write(path, json.dumps(passwords) + "\n", mode=0o600)
    return passwords[username]


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
    private = secrets_dir(home)
    inherited = base if base is not None else os.environ
    env = {k: v for k, v in inherited.items() if not (k == "AIRFLOW_HOME" or k.startswith("AIRFLOW__"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.update(_home_secrets(home))
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            # Airflow writes generated secrets into its config file: keep it with the other secrets.
            "AIRFLOW_CONFIG": str(private / "airflow.cfg"),
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:{UI_ROLE}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(private / "simple_auth_manager_passwords.json"),
            "COUNCILMATCH_HOME": str(home.root),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
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
    """Run ``airflow <args>`` for this data home (the venv's own airflow).

    The command runs in its own process group; if we are interrupted (Ctrl-C, SIGTERM turned
    into KeyboardInterrupt by the demo, a timeout) the whole group is killed, so executor
    workers it forked cannot outlive us.
    """
    run_env = dict(env) if env is not None else airflow_env(home)
    ui_password(home)  # the UI's password file exists (mode 0600) before Airflow would create it
    exe = Path(sys.executable).parent / "airflow"
    cmd = [str(exe) if exe.exists() else "airflow", *args]
    proc = subprocess.Popen(cmd, env=run_env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.STDOUT if capture else None)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        _kill_group(proc)
        raise
    if check and proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None)


def _kill_group(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    import signal

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            try:
                os.killpg(proc.pid, 0)  # the leader is gone; are its children?
            except ProcessLookupError:
                break
            time.sleep(0.5)
        except subprocess.TimeoutExpired:
            continue


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
    use_executor: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a whole DAG through Airflow (``airflow dags test``), recorded as a DAG run in the metadata DB.

    ``use_executor``: each task runs in its own process through the configured executor
    (LocalExecutor) and writes its log file, as in production, so Airflow's UI shows the
    logs; the executor's workers need an api-server (:func:`start_api_server`) for the
    execution API. Without it the tasks run inside this one process and log to stdout.
    """
    args = ["dags", "test", dag_id]
    if logical_date:
        args.append(logical_date)
    if use_executor:
        args.append("--use-executor")
    return airflow(home, args, env=env, check=False, capture=capture, timeout=timeout)


# ---------------------------------------------------------------------------
# Airflow's UI for the demo: the api-server on loopback, simple auth manager
# ---------------------------------------------------------------------------


def api_server_env(home: Home | Path | str, port: int, *, review_url: str | None = None,
                   parallelism: int = 2) -> dict[str, str]:
    """Environment for the demo's api-server and for the ``dags test`` whose tasks report to it.

    Loopback only; ``parallelism`` caps LocalExecutor's worker processes (the demo runs on a laptop).
    """
    base_url = f"http://127.0.0.1:{port}"
    extra = {
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
    }
    if review_url:
        extra[REVIEW_URL_VARIABLE] = review_url.rstrip("/")
    return airflow_env(home, extra=extra)


@dataclass
class ApiServer:
    """A running ``airflow api-server`` we started (its own process group, so stopping it stops its workers)."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout: float = 20) -> None:
        _kill_group(self.process, timeout)


def start_api_server(home: Home | Path | str, env: Mapping[str, str], *, wait: float = 120) -> ApiServer:
    """Start Airflow's api-server (UI + REST + execution API) on loopback and wait until it answers."""
    import httpx

    home = home if isinstance(home, Home) else Home.resolve(home)
    host, port = env["AIRFLOW__API__HOST"], env["AIRFLOW__API__PORT"]
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the demo's Airflow UI listens on loopback only, not {host}")
    ui_password(home)
    home.logs.mkdir(parents=True, exist_ok=True)
    log_path = home.logs / "airflow-api-server.log"
    exe = Path(sys.executable).parent / "airflow"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(exe) if exe.exists() else "airflow", "api-server", "--host", host,
                                 "--port", port], env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = ApiServer(url=env["AIRFLOW__API__BASE_URL"], process=proc, log_path=log_path)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow api-server exited ({proc.returncode}); log: {log_path}")
        try:
            if httpx.get(f"{server.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"airflow api-server did not answer within {wait:.0f} s; log: {log_path}")


def api_token(server_url: str, username: str, password: str) -> str:
    """A JWT for Airflow's REST API from the simple auth manager (``POST /auth/token``)."""
    import httpx

    r = httpx.post(f"{server_url}/auth/token", json={"username": username, "password": password}, timeout=30)
    r.raise_for_status()
    return r.json()["access_token"]


def latest_dag_run(server_url: str, token: str, dag_id: str = DAG_ID) -> dict[str, object]:
    """The newest DAG run of ``dag_id`` (REST API)."""
    import httpx

    r = httpx.get(f"{server_url}/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 1},
                  headers={"Authorization": f"Bearer {token}"}, timeout=30)
    r.raise_for_status()
    runs = r.json()["dag_runs"]
    if not runs:
        raise LookupError(f"no DAG run of {dag_id}")
    return runs[0]


def report_url(review_url: str, run_id: str) -> str:
    """Where the review app serves the report of a councilmatch run."""
    return f"{review_url.rstrip('/')}/reports/{run_id}"


def set_run_note(server_url: str, token: str, dag_run_id: str, note: str, dag_id: str = DAG_ID) -> None:
    """Set a DAG run's note (Markdown, shown on the run's page in Airflow's UI)."""
    import httpx
    from urllib.parse import quote

    r = httpx.patch(f"{server_url}/api/v2/dags/{dag_id}/dagRuns/{quote(dag_run_id, safe='')}",
                    params={"update_mask": "note"}, json={"note": note},
                    headers={"Authorization": f"Bearer {token}"}, timeout=30)
    r.raise_for_status()


# ---------------------------------------------------------------------------
# Inside a task: where the data home is, and the run id
# ---------------------------------------------------------------------------

HOME_VARIABLE = variable("home")


def task_home() -> Home:
    """The data home a task works on: ``$COUNCILMATCH_HOME``, else the Airflow Variable of that name."""
    root = environment().home
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
    from orchestrate.pipeline import make_run_id  # lazy: every DAG file imports this module; parsing stays light

    return make_run_id(when)


def process_hostname() -> str:
    """Airflow's ``hostname_callable``: ``$COUNCILMATCH_WORKER_NAME`` if set, else the FQDN.

    Lets several Celery workers on one machine be told apart in task instances
    (the native topology test runs two; in containers each has its own hostname anyway).
    """
    import socket

    return environment().worker_name or socket.getfqdn()


# ---------------------------------------------------------------------------
# The KEK from Airflow's connection
# ---------------------------------------------------------------------------


def kek_from_airflow_connection() -> tuple[str, str] | None:
    """The password of the Airflow connection ``councilmatch_kek``, if Airflow is configured to hold it."""
    configured = os.environ.get("AIRFLOW_CONN_" + kek.AIRFLOW_CONN_ID.upper()) or os.environ.get("AIRFLOW_HOME")
    if not configured:
        return None
    from airflow.sdk import BaseHook  # Airflow is a dependency; imported only when configured

    try:
        password = BaseHook.get_connection(kek.AIRFLOW_CONN_ID).password
    except Exception:  # noqa: BLE001  not defined, no metadata DB, no API server: not configured
        return None
    return (password, f"Airflow connection {kek.AIRFLOW_CONN_ID!r}") if password else None


def use_airflow_kek() -> None:
    """Let anonymise read the KEK from Airflow's ``councilmatch_kek`` connection (after ``COUNCILMATCH_KEK``).

    Called by the command line and by the DAG files; the stages never import Airflow themselves.
    """
    kek.add_kek_source(kek_from_airflow_connection)
