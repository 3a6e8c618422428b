"""``councilmatch demo``: the whole system on synthetic boroughs, through real Airflow.

1. generate demo boroughs (synthetic extracts, feed files, ground truth);
2. ``keys init`` (a development KEK in ``home/keys`` unless COUNCILMATCH_KEK is set);
3. an isolated Airflow in ``home/airflow`` (embedded SQLite metadata DB, ``airflow db migrate``);
4. ``airflow dags test nightly_matching``: the real DAG, every task through Airflow;
5. one demo investigator per council, credentials printed;
6. the review app (``councilmatch review serve``), until Ctrl-C.

Re-running on the same home skips the generation and key steps and runs another night.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from councilmatch import airflow_local
from councilmatch.cli_common import HomeOption, resolve_home
from councilmatch.councils import CENTRAL, council_name
from councilmatch.home import Home

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
    from synthetic import generate

    generate(home, boroughs=boroughs, people=people, seed=seed)
    return True


def run_nightly_dag(home: Home) -> Path:
    """Run the nightly DAG through Airflow (``airflow dags test``); returns the log file."""
    airflow_local.migrate(home)
    home.logs.mkdir(parents=True, exist_ok=True)
    log_path = home.logs / "demo-airflow-dags-test.log"
    proc = airflow_local.dags_test(home, airflow_local.DAG_ID, capture=True)
    log_path.write_text(proc.stdout or "", encoding="utf-8")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").splitlines()[-40:])
        raise RuntimeError(f"the nightly DAG failed (exit {proc.returncode}); full log: {log_path}\n{tail}")
    return log_path


def demo_councils(home: Home) -> list[str]:
    """The councils with at least one feed (the central deceased feed has no investigators)."""
    from councilmatch.pipeline import discover_feeds

    return sorted({f.split("/", 1)[0] for f in discover_feeds(home)} - {CENTRAL})


def add_investigators(home: Home, councils: list[str]) -> list[dict[str, str]]:
    """One demo investigator per council with a fresh random password (reset if the user exists)."""
    from sqlalchemy import select

    from review import audit
    from review.auth import add_user, set_password
    from review.db import migrate, writing
    from review.models import User

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


def demo(
    home: HomeOption = None,
    port: int = typer.Option(8000, help="Port for the review app."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the review app at the end."),
    boroughs: int = typer.Option(DEMO_BOROUGHS, help="Demo boroughs to generate."),
    people: int = typer.Option(DEMO_PEOPLE, help="People in the synthetic population."),
    seed: int = typer.Option(DEMO_SEED, help="Random seed of the generator."),
) -> None:
    """Generate demo boroughs, run the nightly DAG through Airflow, then open the review app."""
    h = resolve_home(home).ensure()
    console.print(f"Data home: [bold]{h.root}[/bold]")

    _step(f"Demo boroughs ({boroughs} boroughs, {people:,} people, seed {seed})")
    console.print("  generated" if generate_if_missing(h, boroughs, people, seed) else "  already there; kept")

    _step("Matching keyring")
    from anonymise.keys import init_keys

    console.print(f"  active key: {init_keys(h, dev_kek=True)}")

    _step(f"Airflow (AIRFLOW_HOME={h.airflow_home}), then the nightly_matching DAG via `airflow dags test`")
    log_path = run_nightly_dag(h)
    console.print(f"  DAG run succeeded; Airflow log: {log_path}")
    summary = _latest_report(h)
    if summary:
        console.print(f"  flags: {summary.get('flags')}; per match type: {summary.get('flags_per_match_type')}")
        if summary.get("feeds_failed"):
            console.print(f"  [yellow]feeds that failed: {summary['feeds_failed']}[/yellow]")

    _step("Demo investigators")
    users = add_investigators(h, demo_councils(h))
    for u in users:
        console.print(f"  {u['username']:<18} password {u['password']:<14} ({council_name(u['council'])})")

    url = f"http://127.0.0.1:{port}"
    first = users[0] if users else {"username": "?", "password": "?"}
    console.print(f"\n[bold green]Review app: {url}[/bold green] — sign in as "
                  f"[bold]{first['username']}[/bold] / [bold]{first['password']}[/bold] (or any user above)")
    if not serve:
        return
    cmd = [sys.executable, "-m", "councilmatch.cli", "review", "serve", "--home", str(h.root),
           "--port", str(port), "--insecure-cookies"]  # plain http on loopback: demo only
    try:
        subprocess.run(cmd, check=False)
    except KeyboardInterrupt:
        pass


def _latest_report(home: Home) -> dict[str, Any] | None:
    import json

    reports = sorted(home.reports.glob("*.json")) if home.reports.exists() else []
    return json.loads(reports[-1].read_text(encoding="utf-8")) if reports else None


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
