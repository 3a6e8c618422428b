"""The production topology, natively: PostgreSQL + Redis on loopback, Airflow with the
CeleryExecutor (scheduler, dag-processor, api-server, two Celery workers).

Used by test_native_topology.py. Settings come from ``airflow_local.topology_settings``,
the same function the compose test renders for the containers.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from orchestrate import isolated_airflow as airflow_local
from councilmatch.home import Home

REPO = airflow_local.REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 1.0,
             alive: Callable[[], None] | None = None) -> None:
    """Poll ``check`` until true; ``alive`` (called outside the retry) raises if a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive:
            alive()
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
    return found[-1].parent


@dataclass
class Services:
    """Loopback PostgreSQL and Redis started for one test module (stopped by ``stop``)."""

    root: Path
    pg_port: int
    redis_port: int
    passwords: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path) -> "Services":
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        passwords = {k: secrets.token_urlsafe(12) for k in
                     ("POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD", "REVIEW_DB_PASSWORD", "REDIS_PASSWORD")}
        svc = cls(root, free_port(), free_port(), passwords)
        svc._start_postgres()
        svc._start_redis()
        return svc

    def _as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _start_postgres(self) -> None:
        pg = _pg_bin()
        data = self.root / "pg"
        pwfile = self.root / "pgpass"
        pwfile.write_text(self.passwords["POSTGRES_PASSWORD"] + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
        subprocess.run([*self._as_postgres(), str(pg / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"],
                       check=True, capture_output=True)
        pwfile.unlink()
        subprocess.run([*self._as_postgres(), str(pg / "pg_ctl"), "-D", str(data), "-l", str(self.root / "pg.log"),
                        "-w", "-o", f"-h 127.0.0.1 -p {self.pg_port} -k {self.root} -c fsync=off "
                        "-c max_connections=200", "start"], check=True, capture_output=True)
        # The compose file's own init script creates the roles and databases.
        env = {**os.environ, **airflow_local.shared_settings(), **self.passwords,
               "POSTGRES_USER": "postgres", "PGHOST": "127.0.0.1", "PGPORT": str(self.pg_port),
               "PGPASSWORD": self.passwords["POSTGRES_PASSWORD"]}
        subprocess.run(["bash", str(REPO / "deploy" / "postgres-init.sh")], env=env, check=True, capture_output=True)

    def _start_redis(self) -> None:
        self.procs.append(subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "no", "--requirepass", self.passwords["REDIS_PASSWORD"], "--dir", str(self.root)],
            stdout=open(self.root / "redis.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        ))

    def settings(self, api_port: int) -> dict[str, str]:
        return airflow_local.topology_settings(
            db_host="127.0.0.1", db_port=self.pg_port, redis_host="127.0.0.1", redis_port=self.redis_port,
            api_server=f"http://127.0.0.1:{api_port}", passwords=self.passwords,
        )

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([*self._as_postgres(), str(_pg_bin() / "pg_ctl"), "-D", str(self.root / "pg"),
                        "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Airflow:
    """Airflow components started as child processes (each in its own session, stopped by pid)."""

    home: Home
    env: dict[str, str]
    api_port: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: list[str], **extra_env: str) -> None:
        log = self.home.logs / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        exe = str(Path(sys.executable).parent / "airflow")
        self.procs[name] = subprocess.Popen(
            [exe, *args], env={**self.env, **extra_env}, stdout=open(log, "w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, name: str) -> str:
        return (self.home.logs / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            name = next(iter(dead))
            raise RuntimeError(f"Airflow {name} exited ({dead[name]}):\n" + self.log(name)[-3000:])

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
