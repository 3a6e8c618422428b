"""Users: a council's admin manages its own council's staff; the hub's ``hub_admin`` manages councils' admins.

A council admin never sees, creates or changes a user of another council, nor a
hub-level user. A ``hub_admin`` (created on the hub with ``councilmatch users add
--role hub_admin``) belongs to no council: it sees no queue and no clear record, and
here only creates, deactivates and reactivates councils' admins. No one creates a hub
``operator`` here: it is made on the hub (``councilmatch users add --role operator``).
Every change and every refused attempt is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from councilmatch.councils import LONDON_BOROUGHS
from review import audit
from review.auth import COUNCIL_ROLES, add_user, hash_password, set_active, validate_new_user
from review.deps import Csrf, DbDep, Forbidden, Writes, WritesDep, render, require_role
from review.forms import ActiveFormDep, SavedDep
from review.models import User

router = APIRouter(prefix="/admin")
AdminDep = Annotated[User, Depends(require_role("admin", "hub_admin"))]
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def manageable(admin: User) -> tuple[tuple[str, ...], dict[str, str]]:
    """The roles and councils ``admin`` may manage."""
    if admin.role == "hub_admin":
        return ("admin",), dict(LONDON_BOROUGHS)
    return COUNCIL_ROLES, {admin.council: LONDON_BOROUGHS.get(admin.council, admin.council)}


def may_manage(admin: User, target: User) -> bool:
    roles, councils = manageable(admin)
    return target.id != admin.id and target.role in roles and target.council in councils


def _page(request: Request, db: Session, admin: User, error: str | None = None, status_code: int = 200,
          saved: str | None = None):  # noqa: ANN202
    roles, councils = manageable(admin)
    users = db.execute(select(User).where(User.role.in_(roles), User.council.in_(list(councils)))
                       .order_by(User.council, User.username)).scalars().all()
    return render(request, "users.html", {"title": "Users", "users": users, "roles": roles,
                                          "councils": councils, "error": error,
                                          "saved": saved}, status_code, user=admin)


def _refuse(writes: Writes, admin: User, what: str, detail: dict) -> Forbidden:
    """Audit a refused change (committed now: the request then fails) and the error to raise."""
    audit.append(writes.session, admin.username, "denied", what[:200], detail)
    writes.commit()
    return Forbidden("You can only manage users of your own council.")


@router.get("/users")
def users_page(request: Request, admin: AdminDep, db: DbDep, saved: SavedDep = None):  # noqa: ANN201
    return _page(request, db, admin, saved=saved)


@router.post("/users", dependencies=[Csrf])
def create_user(request: Request, admin: AdminDep, db: DbDep, writes: WritesDep,
                username: Annotated[str, Form(max_length=200)], council: Annotated[str, Form(max_length=40)],
                role: Annotated[str, Form(max_length=40)],
                password: Annotated[str, Form(max_length=1000)]):  # noqa: ANN201
    roles, councils = manageable(admin)
    if role not in roles or council not in councils:
        raise _refuse(writes, admin, f"user:{username.strip()[:80]}",
                      {"action": "user_add", "council": council[:16], "role": role[:20]})
    try:
        validate_new_user(username.strip(), council, role, password)
        hashed = hash_password(password)  # before the write lock: Argon2 is slow on purpose
        add_user(writes.session, username=username.strip(), council=council, role=role, password=password,
                 actor=admin.username, password_hash=hashed)
        writes.commit()
    except ValueError as exc:
        writes.rollback()
        return _page(request, db, admin, str(exc), 400)
    return RedirectResponse("/admin/users?saved=1", status_code=303)


@router.post("/users/{user_id}/active", dependencies=[Csrf])
def change_active(request: Request, user_id: UserId, admin: AdminDep, writes: WritesDep,
                  form: ActiveFormDep):  # noqa: ANN201
    target = writes.session.get(User, user_id)
    if target is None or target.id == admin.id:
        return RedirectResponse("/admin/users", status_code=303)
    if not may_manage(admin, target):
        raise _refuse(writes, admin, f"user:{target.username}", {"action": "user_active", "council": target.council})
    set_active(writes.session, target, form.active == "1", admin.username)
    return RedirectResponse("/admin/users?saved=1", status_code=303)
