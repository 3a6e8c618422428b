"""``councilmatch demo``: the whole system on synthetic boroughs, through real Airflow.

1. generate demo boroughs (synthetic extracts, feed files, ground truth);
2. ``keys init`` (a development KEK in ``home/keys`` unless COUNCILMATCH_KEK is set);
3. an isolated Airflow in ``home/airflow`` (embedded SQLite metadata DB, ``airflow db migrate``;
   its secrets outside the data home, see ``isolated_airflow.secrets_dir``);
4. Airflow's UI: the api-server with the simple auth manager on loopback (``--no-airflow-ui`` skips it);
5. ``airflow dags test nightly_matching``: the real DAG, recorded as a DAG run in the metadata DB
   the UI reads; with the UI on, each task runs in its own process through LocalExecutor and writes
   its log, as in production; the run's note links the run report;
6. one demo investigator per council and one hub operator (run reports only), credentials printed;
7. the review app (``councilmatch review serve``), until Ctrl-C or SIGTERM, which stop
   everything the demo started.

Re-running on the same home skips the generation and key steps and runs another night.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from councilmatch.councils import CENTRAL, council_name
from councilmatch.home import Home
from orchestrate import isolated_airflow
from orchestrate.commands.options import HomeOption, resolve_home

console = Console()

DEMO_BOROUGHS = 5
DEMO_PEOPLE = 20_000
DEMO_SEED = 11


def _step(text: str) -> None:
    console.print(f"[bold cyan]▶[/bold cyan] {text}")


def generate_if_missing(home: Home, boroughs: int, people: int, seed: int) -> bool:
    """Generate demo data unless the home already has feeds; True when it generated."""
    if home.feeds.exists() and any(home.feeds.rglob("*.yaml")):
        return False
    from synthetic import generate  # the generator: loaded only when the demo runs, not for `councilmatch --help`

    generate(home, boroughs=boroughs, people=people, seed=seed)
    return True


def run_nightly_dag(home: Home, env: dict[str, str] | None = None, use_executor: bool = False) -> Path:
    """Run the nightly DAG through Airflow (``airflow dags test``); returns the log file."""
    isolated_airflow.migrate(home, env=env)
    home.logs.mkdir(parents=True, exist_ok=True)
    log_path = home.logs / "demo-airflow-dags-test.log"
    proc = isolated_airflow.dags_test(home, isolated_airflow.DAG_ID, env=env, capture=True, use_executor=use_executor)
    log_path.write_text(proc.stdout or "", encoding="utf-8")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").splitlines()[-40:])
        raise RuntimeError(f"the nightly DAG failed (exit {proc.returncode}); full log: {log_path}\n{tail}")
    return log_path


def demo_councils(home: Home) -> list[str]:
    """The councils with at least one feed (the central deceased feed has no investigators)."""
    from orchestrate.pipeline import discover_feeds

    return sorted({f.split("/", 1)[0] for f in discover_feeds(home)} - {CENTRAL})


def add_investigators(home: Home, councils: list[str]) -> list[dict[str, str]]:
    """One demo investigator per council with a fresh random password (reset if the user exists)."""
    from review import audit
    from review.auth import add_user, set_password
    from review.db import migrate, writing
    from review.models import User

    from sqlalchemy import select


    audit.bind(home.review_db_url, home.root)
    migrate(home.review_db_url)
    users = []
    with writing(home.review_db_url) as session:
        for council in councils:
            username = f"demo-{council.lower()}"
            password = secrets.token_urlsafe(9)
            existing = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
            if existing is None:
                add_user(session, username=username, council=council, role="investigator",
                         password=password, actor="demo")
            else:  # ends the user's sessions too
                set_password(session, existing, password, actor="demo")
            users.append({"username": username, "password": password, "council": council})
    return users


OPERATOR_USERNAME = "demo-operator"


def add_operator(home: Home, username: str = OPERATOR_USERNAME) -> dict[str, str]:
    """The demo's hub operator in the review app (run reports only), with a fresh random password."""
    from review import audit
    from review.auth import add_user, HUB, set_password
    from review.db import migrate, writing
    from review.models import User

    from sqlalchemy import select


    audit.bind(home.review_db_url, home.root)
    migrate(home.review_db_url)
    password = secrets.token_urlsafe(9)
    with writing(home.review_db_url) as session:
        existing = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if existing is None:
            add_user(session, username=username, council=HUB, role="operator", password=password, actor="demo")
        else:  # ends the operator's sessions too
            set_password(session, existing, password, actor="demo")
    return {"username": username, "password": password}


def note_run_report(server: isolated_airflow.ApiServer, home: Home, review_url: str, run_id: str) -> str:
    """Put a link to the night's run report in the DAG run's note (shown on the run's page)."""
    token = isolated_airflow.api_token(server.url, isolated_airflow.UI_USER, isolated_airflow.ui_password(home))
    dag_run = isolated_airflow.latest_dag_run(server.url, token)
    url = isolated_airflow.report_url(review_url, run_id)
    isolated_airflow.set_run_note(server.url, token, str(dag_run["dag_run_id"]),
                               f"**Run report:** [{run_id}]({url}) (sign in to the review app as a hub operator)")
    return str(dag_run["dag_run_id"])


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` blocks stop what the demo started."""
    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def demo(
    home: HomeOption = None,
    port: int = typer.Option(8000, help="Port for the review app."),
    airflow_port: int = typer.Option(8080, help="Port for Airflow's UI (api-server)."),
    airflow_ui: bool = typer.Option(True, "--airflow-ui/--no-airflow-ui",
                                    help="Start Airflow's UI (api-server, simple auth manager, loopback)."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the review app at the end."),
    boroughs: int = typer.Option(DEMO_BOROUGHS, help="Demo boroughs to generate."),
    people: int = typer.Option(DEMO_PEOPLE, help="People in the synthetic population."),
    seed: int = typer.Option(DEMO_SEED, help="Random seed of the generator."),
) -> None:
    """Generate demo boroughs, run the nightly DAG through Airflow, then open the review app."""
    from anonymise.keys import init_keys

    h = resolve_home(home).ensure()
    console.print(f"Data home: [bold]{h.root}[/bold]")

    _step(f"Demo boroughs ({boroughs} boroughs, {people:,} people, seed {seed})")
    console.print("  generated" if generate_if_missing(h, boroughs, people, seed) else "  already there; kept")

    _step("Matching keyring")

    console.print(f"  active key: {init_keys(h, dev_kek=True)}")

    _stop_on_sigterm()
    review_url = f"http://127.0.0.1:{port}"
    server: isolated_airflow.ApiServer | None = None
    review: subprocess.Popen | None = None
    try:
        env = None
        if airflow_ui:
            env = isolated_airflow.api_server_env(h, airflow_port, review_url=review_url)
            _step(f"Airflow's UI on http://127.0.0.1:{airflow_port} (AIRFLOW_HOME={h.airflow_home}; "
                  f"secrets in {isolated_airflow.secrets_dir(h)})")
            isolated_airflow.migrate(h, env=env)
            server = isolated_airflow.start_api_server(h, env)
            console.print(f"  api-server up; log: {server.log_path}")
        _step("The nightly_matching DAG via `airflow dags test`"
              + (" (each task in its own process, logs for the UI)" if airflow_ui else ""))
        log_path = run_nightly_dag(h, env=env, use_executor=airflow_ui)
        console.print(f"  DAG run succeeded; Airflow log: {log_path}")
        summary = _latest_report(h)
        if summary:
            console.print(f"  flags: {summary.get('flags')}; per match type: {summary.get('flags_per_match_type')}")
            if summary.get("feeds_failed"):
                console.print(f"  [yellow]feeds that failed: {summary['feeds_failed']}[/yellow]")
            if server is not None:
                dag_run_id = note_run_report(server, h, review_url, summary["run_id"])
                console.print(f"  run report linked from DAG run {dag_run_id}")

        _step("Demo users")
        users = add_investigators(h, demo_councils(h))
        for u in users:
            console.print(f"  {u['username']:<18} password {u['password']:<14} ({council_name(u['council'])})")
        operator = add_operator(h)
        console.print(f"  {operator['username']:<18} password {operator['password']:<14} "
                      "(hub operator: run reports only)")

        first = users[0] if users else {"username": "?", "password": "?"}
        console.print(f"\n[bold green]Review app: {review_url}[/bold green] — sign in as "
                      f"[bold]{first['username']}[/bold] / [bold]{first['password']}[/bold] (or any user above)")
        console.print(f"[bold green]Run reports: {review_url}/reports[/bold green] — sign in as "
                      f"[bold]{operator['username']}[/bold] / [bold]{operator['password']}[/bold]")
        if server is not None:
            console.print(f"[bold green]Airflow UI: {server.url}[/bold green] — sign in as "
                          f"[bold]{isolated_airflow.UI_USER}[/bold] / "
                          f"[bold]{isolated_airflow.ui_password(h)}[/bold]")
        if not serve:
            console.print("--no-serve: nothing is left running (the night stays recorded in the data home).")
            return
        cmd = [sys.executable, "-m", "orchestrate.cli", "review", "serve", "--home", str(h.root),
               "--port", str(port), "--insecure-cookies"]  # plain http on loopback: demo only
        review = subprocess.Popen(cmd)
        console.print("Ctrl-C stops the demo (the review app and Airflow's UI).", highlight=False)
        review.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if review is not None and review.poll() is None:
            review.terminate()
            try:
                review.wait(timeout=20)
            except subprocess.TimeoutExpired:
                review.kill()
        if server is not None:
            server.stop()


def _latest_report(home: Home) -> dict[str, Any] | None:
    import json

    reports = sorted(home.reports.glob("*.json")) if home.reports.exists() else []
    return json.loads(reports[-1].read_text(encoding="utf-8")) if reports else None


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
