"""The investigators' web app: ``create_app(...)`` builds it; ``councilmatch review serve`` runs it.

Server-rendered (Jinja2), no JavaScript. Each area has its own router in
``review/routes``; permissions are dependencies (``deps.py``) plus a council
check on every flag (``store.get_item``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from councilmatch.home import Home
from review import store
from review.deps import Forbidden, LoginRequired, Settings, render, templates
from review.matchtypes import describe
from review.reidentify import Reidentifier, vault_reidentifier
from review.routes import admin, dashboard, flags, queue, reports, signin
from review.security import SecurityHeaders

SESSION_HOURS = 8


def session_secret(home: Home) -> str:
    """``COUNCILMATCH_REVIEW_SECRET``, else a random key kept in the data home (mode 0600)."""
    if os.environ.get("COUNCILMATCH_REVIEW_SECRET"):
        return os.environ["COUNCILMATCH_REVIEW_SECRET"]
    path = home.root / "review-session.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def create_app(home: Home | None = None, *, db_url: str | None = None, secret_key: str | None = None,
               secure_cookies: bool = True, reidentifier: Reidentifier | None = None,
               page_size: int = 50) -> FastAPI:
    """Build the app and migrate its database. ``secure_cookies=False`` only for http on loopback."""
    if home is None and (db_url is None or secret_key is None):
        raise ValueError("give a data home, or both db_url and secret_key")
    db_url = db_url or home.review_db_url
    store.migrate(db_url)
    settings = Settings(
        db_url=db_url,
        secret_key=secret_key or session_secret(home),
        home_root=home.root if home else None,
        secure_cookies=secure_cookies,
        reidentifier=reidentifier or (vault_reidentifier(home.root) if home else None),
        page_size=page_size,
    )
    # Warm-up, so the first investigators do not wait seconds for imports (Airflow, matching).
    if hasattr(settings.reidentifier, "warm"):
        settings.reidentifier.warm()
    describe(settings.home_root, "")
    for name in templates.env.list_templates():
        templates.env.get_template(name)
    app = FastAPI(title="councilmatch review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.add_middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie="cm_session",
                       max_age=SESSION_HOURS * 3600, same_site="strict", https_only=secure_cookies)
    app.add_middleware(SecurityHeaders, hsts=secure_cookies)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for module in (signin, admin, reports):
        app.include_router(module.router)
    for module in (queue, flags, dashboard):  # a council's pages: never a hub operator's
        app.include_router(module.router, dependencies=[Depends(reports.refuse_hub_user)])

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired):  # noqa: ANN202
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):  # noqa: ANN202
        return render(request, "error.html", {"title": "Access denied", "message": exc.message}, 403)

    @app.exception_handler(store.NotFound)
    async def _not_found(request: Request, exc: store.NotFound):  # noqa: ANN202
        return render(request, "error.html", {"title": "Not found", "message": str(exc)}, 404)

    @app.exception_handler(404)
    async def _404(request: Request, _exc: Exception):  # noqa: ANN202
        return render(request, "error.html", {"title": "Not found", "message": "There is no page here."}, 404)

    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several worker processes (see ``review serve --workers``)."""
    return create_app(Home.resolve(os.environ.get("COUNCILMATCH_HOME")),
                      secure_cookies=os.environ.get("COUNCILMATCH_REVIEW_INSECURE_COOKIES") != "1")
