"""Every route's protection is a dependency, checked by walking the app (a new route without it fails here).

* Each non-public route depends on ``current_user`` (directly, or through ``require_role``).
* Council pages (queue, flags, dashboard) depend on a role check that admits council roles only.
* Each POST route depends on the CSRF check.
* No route module opens a database session itself (``reading``/``writing``/``Session(...)``):
  sessions come from ``DbDep`` / ``WritesDep``.
"""

from __future__ import annotations

import ast
import secrets
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute

from review.app import create_app
from review.auth import COUNCIL_ROLES
from review.db import engine_for
from review.deps import current_user, verify_csrf

ROUTES_DIR = Path(__file__).parents[2] / "review" / "routes"
#: (method, path) that anyone may call: signing in, and signing out (which needs no valid session).
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}
COUNCIL_PAGES = ("/queue", "/flags", "/dashboard")


def _calls(dependant) -> list[Callable]:  # noqa: ANN001
    out = []
    for dep in dependant.dependencies:
        out.append(dep.call)
        out.extend(_calls(dep))
    return out


def unprotected(app: FastAPI) -> list[str]:
    """Routes that break the rules above, as 'METHOD /path: why'."""
    problems = []
    for route in (r for r in app.routes if isinstance(r, APIRoute)):
        calls = _calls(route.dependant)
        for method in sorted(route.methods):
            where = f"{method} {route.path}"
            if (method, route.path) in PUBLIC:
                continue
            if current_user not in calls:
                problems.append(f"{where}: no sign-in dependency")
            if route.path.startswith(COUNCIL_PAGES):
                roles = [getattr(c, "roles", None) for c in calls if getattr(c, "roles", None)]
                if not roles or not all(set(r) <= set(COUNCIL_ROLES) for r in roles):
                    problems.append(f"{where}: no council-role dependency")
            if method == "POST" and verify_csrf not in calls:
                problems.append(f"{where}: no CSRF dependency")
    return problems


def _app(tmp_path: Path) -> FastAPI:
    return create_app(db_url=f"sqlite:///{tmp_path / 'review.db'}", secret_key=secrets.token_urlsafe(32),
                      secure_cookies=False)


def test_every_non_public_route_depends_on_sign_in_role_and_csrf(tmp_path):
    app = _app(tmp_path)
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 15  # the walk saw the app's routers
    assert unprotected(app) == []
    engine_for(f"sqlite:///{tmp_path / 'review.db'}").dispose()


def test_the_walk_catches_a_route_added_without_the_dependencies(tmp_path):
    app = _app(tmp_path)

    @app.get("/flags/{flag_id}/leak")
    def leak(flag_id: str) -> dict:  # a new page someone forgot to protect
        return {"flag": flag_id}

    @app.post("/queue/bulk-close")
    def bulk_close() -> dict:
        return {}

    assert unprotected(app) == [
        "GET /flags/{flag_id}/leak: no sign-in dependency", "GET /flags/{flag_id}/leak: no council-role dependency",
        "POST /queue/bulk-close: no sign-in dependency", "POST /queue/bulk-close: no council-role dependency",
        "POST /queue/bulk-close: no CSRF dependency"]
    engine_for(f"sqlite:///{tmp_path / 'review.db'}").dispose()


def session_openings(source: str) -> list[str]:
    """Calls in a module that open a database session by hand."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in ("reading", "writing", "Session", "sessionmaker", "engine_for", "connect"):
                found.append(f"line {node.lineno}: {name}(...)")
    return found


def test_no_route_opens_a_database_session_itself():
    modules = sorted(ROUTES_DIR.glob("*.py"))
    assert len(modules) >= 7
    opened = {p.name: session_openings(p.read_text()) for p in modules}
    assert {k: v for k, v in opened.items() if v} == {}
    # the check can fail: the hand-made session the routes used to open is found
    assert session_openings("with writing(settings.db_url) as s:\n    pass\n") == ["line 1: writing(...)"]


def hand_parsed_input(source: str) -> list[str]:
    """Places in a module that read the query string or form by hand instead of a typed model."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("query_params", "form", "body", "json"):
            if isinstance(node.value, ast.Name) and node.value.id == "request":
                found.append(f"line {node.lineno}: request.{node.attr}")
    return found


def test_no_route_parses_query_or_form_by_hand():
    found = {p.name: hand_parsed_input(p.read_text()) for p in sorted(ROUTES_DIR.glob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}
    assert hand_parsed_input('x = request.query_params.get("saved")') == ["line 1: request.query_params"]
