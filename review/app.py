"""The investigators' web app: ``create_app(...)`` builds it; ``councilmatch review serve`` runs it.

Server-rendered (Jinja2), no JavaScript. Each area has its own router in
``review/routes``; permissions are dependencies (``deps.py``) plus a council
check on every flag (``store.get_item``). A request that names a flag outside the
user's council is answered 404 *and* audited; malformed parameters get a 422 page.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from councilmatch.environment import environment, variable
from councilmatch.fileio import write_once
from councilmatch.home import Home
from review import audit, store
from review.auth import SESSION_HOURS, check_session_secret, session_user
from review.db import writing
from review.deps import Forbidden, LoginRequired, Settings, client_ip, render, templates
from review.matchtype_titles import describe
from review.reidentify import Reidentifier, vault_reidentifier
from review.routes import account, admin, dashboard, flags, queue, reports, signin
from review.security import SecurityHeaders

TRUSTED_PROXIES_ENV = variable("review_trusted_proxies")


def session_secret(home: Home) -> str:
    """``COUNCILMATCH_REVIEW_SECRET`` (refused if a placeholder or guessable), else a random key
    kept in the data home (mode 0600)."""
    if (configured := environment().review_secret) is not None:
        secret = configured.get_secret_value()
        check_session_secret(secret)
        return secret
    path = home.root / "review-session.key"
    if not path.exists():
        write_once(path, secrets.token_urlsafe(48).encode())  # two workers starting at once share one key
    return path.read_text().strip()


def trusted_proxies(spec: str | None = None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse ``COUNCILMATCH_REVIEW_TRUSTED_PROXIES`` (comma-separated addresses or networks)."""
    spec = environment().review_trusted_proxies if spec is None else spec
    try:
        return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"{TRUSTED_PROXIES_ENV}: {exc}") from None


def create_app(home: Home | None = None, *, db_url: str | None = None, secret_key: str | None = None,
               secure_cookies: bool = True, reidentifier: Reidentifier | None = None,
               page_size: int = 50, proxies: str | None = None, audit_root: Path | None = None) -> FastAPI:
    """Build the app and migrate its database. ``secure_cookies=False`` only for http on loopback.

    ``proxies``: addresses whose ``X-Forwarded-For`` is trusted (default: the
    environment variable). ``audit_root``: where the audit key and checkpoints live
    (default: the data home, else beside a SQLite file, else ``COUNCILMATCH_HOME``).
    """
    if home is None and (db_url is None or secret_key is None):
        raise ValueError("give a data home, or both db_url and secret_key")
    if secret_key is not None:
        check_session_secret(secret_key, "secret_key")
    db_url = db_url or home.review_db_url
    if audit_root or home:
        audit.bind(db_url, audit_root or home.root)
    store.migrate(db_url)
    audit.anchor_for(db_url, create=True)  # fail at start, not on the first audited click, if the key is lost
    settings = Settings(
        db_url=db_url,
        secret_key=secret_key or session_secret(home),
        home_root=home.root if home else None,
        secure_cookies=secure_cookies,
        reidentifier=reidentifier or (vault_reidentifier(home.root) if home else None),
        page_size=page_size,
        trusted_proxies=trusted_proxies(proxies),
    )
    # Warm-up, so the first investigators do not wait seconds for imports (Airflow, matching).
    if hasattr(settings.reidentifier, "warm"):
        settings.reidentifier.warm()
    describe(settings.home_root, "")
    for name in templates.env.list_templates():
        templates.env.get_template(name)
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        audit.checkpoint(settings.db_url, "review app stopped")  # anchor what this process appended

    app = FastAPI(title="councilmatch review", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie="cm_session",
                       max_age=SESSION_HOURS * 3600, same_site="strict", https_only=secure_cookies)
    app.add_middleware(SecurityHeaders, hsts=secure_cookies)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    # Council pages (queue, flags, dashboard) take CouncilUserDep: hub users (hub_admin, operator) get 403.
    for module in (signin, queue, flags, dashboard, admin, account, reports):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired):  # noqa: ANN202
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):  # noqa: ANN202
        return render(request, "error.html", {"title": "Access denied", "message": exc.message}, 403)

    @app.exception_handler(store.NotFound)
    def _not_found(request: Request, exc: store.NotFound):  # noqa: ANN202
        _audit_probe(request, settings)
        return render(request, "error.html", {"title": "Not found", "message": str(exc)}, 404)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):  # noqa: ANN202
        problems: dict[str, str] = {}
        for e in exc.errors():
            field = ".".join(str(p) for p in e.get("loc", ())[1:]) or "request"
            problems.setdefault(field, str(e.get("msg", "not valid")).removeprefix("Value error, "))
        detail = "; ".join(f"{f}: {m}" for f, m in sorted(problems.items()))
        return render(request, "error.html", {"title": "Not a valid request",
                                              "message": f"These fields are not valid: {detail}"}, 422)

    @app.exception_handler(404)
    async def _404(request: Request, _exc: Exception):  # noqa: ANN202
        return render(request, "error.html", {"title": "Not found", "message": "There is no page here."}, 404)

    return app


def _audit_probe(request: Request, settings: Settings) -> None:
    """A signed-in user asked for a flag their council cannot see: answer 404, but record it."""
    token = request.session.get("sid")
    if not isinstance(token, str):
        return
    with writing(settings.db_url) as db:
        user = session_user(db, token)
        if user is not None:
            audit.append(db, user.username, "not_found", request.url.path[:200],
                         {"council": user.council, "method": request.method, "ip": client_ip(request, settings)})


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several worker processes (see ``review serve --workers``)."""
    env = environment()
    return create_app(Home.resolve(env.home), secure_cookies=not env.review_insecure_cookies)
