"""Commands: ``review serve | publish``, ``users add | set-password``, ``audit verify | checkpoint | seal-legacy``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from councilmatch.environment import environment, variable
from orchestrate import isolated_airflow
from orchestrate.commands.options import HomeOption, resolve_home

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
          workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
          trusted_proxies: Annotated[str | None, typer.Option(
              help="Comma-separated addresses or networks of the TLS proxy in front of the app, whose "
                   "X-Forwarded-For gives the client's address for sign-in limits "
                   "(default: $COUNCILMATCH_REVIEW_TRUSTED_PROXIES).")] = None) -> None:
    """Run the web app (migrates the review database first)."""
    from review.app import create_app, session_secret

    import uvicorn

    if trusted_proxies is not None:
        os.environ[variable("review_trusted_proxies")] = trusted_proxies  # every worker alike
    h = resolve_home(home)
    if insecure_cookies and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter("--insecure-cookies is only allowed on a loopback host", param_hint="--host")
    app = create_app(h, secure_cookies=not insecure_cookies)  # migrates once, before any worker starts
    typer.echo(f"Review app for {h.root} on http://{host}:{port}  (database: {_safe_url(h.review_db_url)})")
    options = dict(host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)
    if workers <= 1:
        uvicorn.run(app, **options)
        return
    os.environ[variable("home")] = str(h.root)
    os.environ[variable("review_insecure_cookies")] = "1" if insecure_cookies else "0"
    if environment().review_secret is None:
        os.environ[variable("review_secret")] = session_secret(h)  # every worker signs alike
    uvicorn.run("orchestrate.commands.review:worker_app", factory=True, workers=workers, **options)


def worker_app():  # noqa: ANN201  (a FastAPI app)
    """One uvicorn worker's app: as ``review.app.create_app_from_env``, with the KEK sources the CLI uses."""
    from review.app import create_app_from_env

    isolated_airflow.use_airflow_kek()
    return create_app_from_env()


@review_app.command("publish")
def publish(flags_file: Annotated[Path, typer.Argument(help="A flags Parquet file (store/flags/<run>.parquet).")],
            home: HomeOption = None) -> None:
    """Publish a flags file to the review store (the pipeline calls review.store.publish_flags)."""
    from anonymise import at_rest
    from review import audit
    from review.store import publish_flags

    import json



    h = resolve_home(home)
    audit.bind(h.review_db_url, h.root)
    try:
        counts = publish_flags(h.review_db_url, at_rest.read_frame(flags_file, home=h))
    except ValueError as exc:
        typer.echo(f"{flags_file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items()))
    typer.echo(f"audit checkpoint: {json.dumps(audit.latest_checkpoint(h.review_db_url), sort_keys=True)}")


@contextmanager
def _user_store(home: Path | None) -> Iterator:
    """A write session on the home's review store, its audit chain bound and schema current."""
    from review import audit
    from review.db import migrate, writing

    h = resolve_home(home)
    audit.bind(h.review_db_url, h.root)
    migrate(h.review_db_url)
    with writing(h.review_db_url) as session:
        yield session


def _password(password_stdin: bool) -> str:
    if not password_stdin:
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@users_app.command("add")
def add(username: Annotated[str, typer.Option(help="Sign-in name.")],
        council: Annotated[str | None, typer.Option(
            help="The user's council (ONS code, e.g. E09000007); none (or 'hub') for a hub-level role.")] = None,
        role: Annotated[str, typer.Option(
            help="investigator | supervisor | admin (of their council) | hub_admin (of the hub: "
                 "creates councils' admins, sees no council's data) | operator (of the hub: "
                 "run reports only)")] = "investigator",
        password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                     help="Read the password from standard input.")] = False,
        home: HomeOption = None) -> None:
    """Add a user of the review app (on the hub; audited as actor "cli")."""
    from review.auth import add_user, HUB, HUB_ROLES

    if council is None:
        if role not in HUB_ROLES:
            typer.echo("users add: council: give the user's council (e.g. --council E09000007)", err=True)
            raise typer.Exit(2)
        council = HUB
    password = _password(password_stdin)
    try:
        with _user_store(home) as session:
            add_user(session, username=username, council=council, role=role, password=password, actor="cli")
    except ValueError as exc:
        typer.echo(f"users add: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Added {role} {username} ({council}).")


@users_app.command("set-password")
def set_password_cmd(username: Annotated[str, typer.Option(help="Sign-in name.")],
                     password_stdin: Annotated[bool, typer.Option(
                         "--password-stdin", help="Read the password from standard input.")] = False,
                     home: HomeOption = None) -> None:
    """Set a user's password; every session of the user ends (audited)."""
    from sqlalchemy import select

    from review.auth import set_password
    from review.models import User

    password = _password(password_stdin)
    try:
        with _user_store(home) as session:
            user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
            if user is None:
                raise ValueError(f"username: no user {username!r}")
            ended = set_password(session, user, password, actor="cli")
    except ValueError as exc:
        typer.echo(f"users set-password: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Password of {username} changed; {ended} session(s) ended.")


@audit_app.command("verify")
def verify(home: HomeOption = None,
           checkpoint: Annotated[list[str] | None, typer.Option(
               help="A checkpoint line from the log (JSON, as logged after a publish), to check the trail "
                    "against it as well as against the checkpoint file; repeatable.")] = None) -> None:
    """Check the audit trail's keyed chain and its signed checkpoints; exit 1 if any entry was
    altered, removed, inserted, or cut off the end."""
    from review import audit
    from review.db import migrate, reading

    import json


    h = resolve_home(home)
    audit.bind(h.review_db_url, h.root)
    migrate(h.review_db_url)
    extra = []
    for line in checkpoint or []:
        try:
            extra.append(json.loads(line[line.index("{"):]))
        except ValueError as exc:
            raise typer.BadParameter(f"not a checkpoint line: {exc}", param_hint="--checkpoint") from exc
    with reading(h.review_db_url) as session:
        result = audit.verify(session, extra_checkpoints=extra)
    if result.ok:
        typer.echo(f"Audit trail intact: {result.entries} entries, {result.checkpoints} checkpoints.")
        return
    for problem in result.problems:
        typer.echo(f"BROKEN: {problem}", err=True)
    typer.echo(f"Audit trail BROKEN ({result.entries} entries checked).", err=True)
    raise typer.Exit(1)


@audit_app.command("seal-legacy")
def seal_legacy_cmd(home: HomeOption = None) -> None:
    """Once, after upgrading: key a trail written by an older version (unkeyed SHA-256 chain),
    if that chain is intact; then sign a checkpoint."""
    from review import audit
    from review.db import migrate

    import json


    h = resolve_home(home)
    audit.bind(h.review_db_url, h.root)
    migrate(h.review_db_url)
    try:
        record = audit.seal_legacy(h.review_db_url)
    except audit.AuditKeyError as exc:
        typer.echo(f"audit seal-legacy: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Audit trail keyed: {record['seq']} entries. Checkpoint: {json.dumps(record, sort_keys=True)}")


@audit_app.command("checkpoint")
def checkpoint_cmd(home: HomeOption = None) -> None:
    """Sign the trail's current tip into audit-checkpoints.jsonl and print it (run it from cron, and
    keep the printed line somewhere the hub cannot rewrite)."""
    from review import audit
    from review.db import migrate

    import json


    h = resolve_home(home)
    audit.bind(h.review_db_url, h.root)
    migrate(h.review_db_url)
    typer.echo(json.dumps(audit.checkpoint(h.review_db_url, "audit checkpoint command"), sort_keys=True))


def _safe_url(url: str) -> str:
    """The database URL without its password (for messages)."""
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""
    app.add_typer(review_app, name="review")
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
