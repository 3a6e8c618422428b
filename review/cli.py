"""Commands: ``review serve``, ``review publish``, ``users add``, ``audit verify``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from councilmatch.cli_common import HomeOption, resolve_home

review_app = typer.Typer(help="Investigators' review web app and store.", no_args_is_help=True)
users_app = typer.Typer(help="Review app users.", no_args_is_help=True)
audit_app = typer.Typer(help="The review store's audit trail.", no_args_is_help=True)


@review_app.command("serve")
def serve(home: HomeOption = None,
          host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
          insecure_cookies: Annotated[bool, typer.Option(
              "--insecure-cookies",
              help="Send the session cookie without the Secure flag: only for plain http on loopback "
                   "(tests, local demos). Behind TLS never use it.")] = False,
          workers: Annotated[int, typer.Option(help="Worker processes.")] = 1) -> None:
    """Run the web app (migrates the review database first)."""
    import uvicorn

    from review.app import create_app

    h = resolve_home(home)
    if insecure_cookies and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter("--insecure-cookies is only allowed on a loopback host", param_hint="--host")
    app = create_app(h, secure_cookies=not insecure_cookies)  # migrates once, before any worker starts
    typer.echo(f"Review app for {h.root} on http://{host}:{port}  (database: {_safe_url(h.review_db_url)})")
    options = dict(host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)
    if workers <= 1:
        uvicorn.run(app, **options)
        return
    os.environ["COUNCILMATCH_HOME"] = str(h.root)
    os.environ["COUNCILMATCH_REVIEW_INSECURE_COOKIES"] = "1" if insecure_cookies else "0"
    if not os.environ.get("COUNCILMATCH_REVIEW_SECRET"):
        from review.app import session_secret
        os.environ["COUNCILMATCH_REVIEW_SECRET"] = session_secret(h)  # every worker signs alike
    uvicorn.run("review.app:create_app_from_env", factory=True, workers=workers, **options)


@review_app.command("publish")
def publish(flags_file: Annotated[Path, typer.Argument(help="A flags Parquet file (store/flags/<run>.parquet).")],
            home: HomeOption = None) -> None:
    """Publish a flags file to the review store (the pipeline calls review.store.publish_flags)."""
    import pandas as pd

    from review.store import publish_flags

    h = resolve_home(home)
    try:
        counts = publish_flags(h.review_db_url, pd.read_parquet(flags_file))
    except ValueError as exc:
        typer.echo(f"{flags_file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@users_app.command("add")
def add(username: Annotated[str, typer.Option(help="Sign-in name.")],
        council: Annotated[str, typer.Option(help="The user's council (ONS code, e.g. E09000007); "
                                                  "'hub' for a hub operator.")],
        role: Annotated[str, typer.Option(help="investigator | supervisor | admin | operator "
                                               "(hub: run reports only)")] = "investigator",
        password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                     help="Read the password from standard input.")] = False,
        home: HomeOption = None) -> None:
    """Add a user of the review app."""
    from review.auth import add_user
    from review.db import migrate, writing

    if not password_stdin:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    h = resolve_home(home)
    migrate(h.review_db_url)
    try:
        with writing(h.review_db_url) as session:
            add_user(session, username=username, council=council, role=role, password=password, actor="cli")
    except ValueError as exc:
        typer.echo(f"users add: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Added {role} {username} ({council}).")


@audit_app.command("verify")
def verify(home: HomeOption = None) -> None:
    """Check the audit trail's hash chain; exit 1 if any entry was altered, removed or inserted."""
    from review import audit
    from review.db import migrate, reading

    h = resolve_home(home)
    migrate(h.review_db_url)
    with reading(h.review_db_url) as session:
        result = audit.verify(session)
    if result.ok:
        typer.echo(f"Audit trail intact: {result.entries} entries.")
        return
    for problem in result.problems:
        typer.echo(f"BROKEN: {problem}", err=True)
    typer.echo(f"Audit trail BROKEN ({result.entries} entries checked).", err=True)
    raise typer.Exit(1)


def _safe_url(url: str) -> str:
    """The database URL without its password (for messages)."""
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""
    app.add_typer(review_app, name="review")
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
