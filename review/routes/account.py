"""A signed-in user changes their own password; every session of the account ends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from review import audit
from review.auth import MIN_PASSWORD, check_password, hash_password, open_session, set_password, start_session
from review.deps import ClientIpDep, Csrf, DbDep, UserDep, WritesDep, render
from review.forms import SavedDep
from review.models import User

router = APIRouter(prefix="/account")


@router.get("/password")
def password_page(request: Request, user: UserDep, saved: SavedDep = None):  # noqa: ANN201
    return render(request, "account.html", {"title": "Change your password", "saved": saved}, user=user)


@router.post("/password", dependencies=[Csrf])
def change_password(request: Request, user: UserDep, db: DbDep, writes: WritesDep, ip: ClientIpDep,
                    current: Annotated[str, Form(max_length=1000)],
                    new: Annotated[str, Form(max_length=1000)]):  # noqa: ANN201
    """Check the current password and hash the new one outside the write lock, then in one
    transaction: new hash, every session ended (a stolen cookie dies), a fresh one for this browser."""
    stored = db.execute(select(User.password_hash).where(User.id == user.id)).scalar_one()
    if not check_password(stored, current):
        audit.append(writes.session, user.username, "password_change_failed", f"user:{user.username}", {"ip": ip})
        return render(request, "account.html", {"title": "Change your password",
                                                "error": "Your current password is not right."}, 400, user=user)
    try:
        hashed = hash_password(new) if len(new) >= MIN_PASSWORD else None  # before the write lock
        target = writes.session.get(User, user.id)
        set_password(writes.session, target, new, actor=user.username, password_hash=hashed)
        token = open_session(writes.session, target)
        writes.commit()
    except ValueError as exc:
        writes.rollback()
        return render(request, "account.html", {"title": "Change your password", "error": str(exc)}, 400, user=user)
    start_session(request, token)
    return RedirectResponse("/account/password?saved=1", status_code=303)
