"""Admins manage users: list, add, deactivate or reactivate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from councilmatch.councils import LONDON_BOROUGHS
from review import audit
from review.auth import HUB_ROLES, ROLES, add_user
from review.db import writing
from review.deps import Csrf, DbDep, SettingsDep, render, require_role
from review.models import User

router = APIRouter(prefix="/admin")
AdminDep = Annotated[User, Depends(require_role("admin"))]


def _page(request: Request, db, admin: User, error: str | None = None, status_code: int = 200):  # noqa: ANN001, ANN202
    users = db.execute(select(User).order_by(User.council, User.username)).scalars().all()
    return render(request, "users.html", {"title": "Users", "users": users,
                                          "roles": [r for r in ROLES if r not in HUB_ROLES],
                                          "councils": LONDON_BOROUGHS, "error": error,
                                          "saved": request.query_params.get("saved")}, status_code, user=admin)


@router.get("/users")
def users_page(request: Request, admin: AdminDep, db: DbDep):  # noqa: ANN201
    return _page(request, db, admin)


@router.post("/users", dependencies=[Csrf])
def create_user(request: Request, admin: AdminDep, db: DbDep, settings: SettingsDep,
                username: Annotated[str, Form()], council: Annotated[str, Form()], role: Annotated[str, Form()],
                password: Annotated[str, Form()]):  # noqa: ANN201
    if role in HUB_ROLES:  # hub-level roles span every council: created on the hub, never by a council's admin
        return _page(request, db, admin, f"role: a {role} is a hub role; it is created on the hub "
                                         "(councilmatch users add), not here", 403)
    try:
        with writing(settings.db_url) as session:
            add_user(session, username=username.strip(), council=council, role=role, password=password,
                     actor=admin.username)
    except ValueError as exc:
        return _page(request, db, admin, str(exc), 400)
    return RedirectResponse("/admin/users?saved=1", status_code=303)


@router.post("/users/{user_id}/active", dependencies=[Csrf])
def set_active(request: Request, user_id: int, admin: AdminDep, settings: SettingsDep,
               active: Annotated[str, Form()]):  # noqa: ANN201
    with writing(settings.db_url) as session:
        target = session.get(User, user_id)
        if target is None or target.id == admin.id:
            return RedirectResponse("/admin/users", status_code=303)
        target.active = active == "1"
        audit.append(session, admin.username, "user_active" if target.active else "user_deactivate",
                     f"user:{target.username}")
    return RedirectResponse("/admin/users?saved=1", status_code=303)
