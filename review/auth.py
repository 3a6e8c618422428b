"""Users, passwords, sign-in limits, sessions and CSRF tokens.

Passwords are hashed with Argon2id (argon2-cffi). Sessions live in a signed,
HttpOnly, SameSite=Strict cookie (Starlette's SessionMiddleware) that carries
only the user's id and the session's CSRF token; the user row is re-read on
every request so a deactivated account is locked out at once.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from councilmatch.councils import CENTRAL, COUNCIL_NAMES
from review import audit
from review.models import LoginFailure, User

ROLES: tuple[str, ...] = ("investigator", "supervisor", "admin", "operator")
#: Hub-level roles belong to no council: their ``council`` is HUB. ``operator`` runs the
#: nightly job and sees run reports only (no flags, no clear data; review/routes/reports.py).
HUB = "hub"
HUB_ROLES: tuple[str, ...] = ("operator",)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 10

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AuthError(Exception):
    """Sign-in refused; the message is safe to show."""


class RateLimited(AuthError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def validate_new_user(username: str, council: str, role: str, password: str) -> None:
    if not username or len(username) > 80 or not all(c.isalnum() or c in "._-@" for c in username):
        raise ValueError("username: use 1-80 letters, digits or . _ - @")
    if role not in ROLES:
        raise ValueError(f"role: must be one of {', '.join(ROLES)}")
    if role in HUB_ROLES:
        if council != HUB:
            raise ValueError(f"council: a {role} works for the hub, not a council: use {HUB!r}")
    elif council not in COUNCIL_NAMES or council == CENTRAL:
        raise ValueError(f"council: {council!r} is not a London borough ONS code (e.g. E09000007)")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: must be at least {MIN_PASSWORD} characters")


def add_user(session: Session, *, username: str, council: str, role: str, password: str, actor: str) -> User:
    validate_new_user(username, council, role, password)
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise ValueError(f"username: {username!r} already exists")
    user = User(username=username, council=council, role=role, password_hash=hash_password(password),
                active=True, created_at=datetime.now(timezone.utc))
    session.add(user)
    session.flush()
    audit.append(session, actor, "user_add", f"user:{username}", {"council": council, "role": role})
    return user


def authenticate(session: Session, username: str, password: str, client_ip: str) -> User | None:
    """The active user with these credentials, or None (the failure is recorded in the session).

    Raises RateLimited after MAX_FAILURES failures per username+IP within FAILURE_WINDOW.
    """
    key = f"{username[:80]}|{client_ip}"
    now = datetime.now(timezone.utc)
    recent = session.execute(select(func.count()).select_from(LoginFailure)
                             .where(LoginFailure.key == key, LoginFailure.at > now - FAILURE_WINDOW)).scalar_one()
    if recent >= MAX_FAILURES:
        raise RateLimited("Too many failed sign-in attempts. Wait 15 minutes and try again.")
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    ok = check_password(user.password_hash if user else _DUMMY_HASH, password) and user is not None and user.active
    if not ok:
        session.add(LoginFailure(key=key, at=now))
        audit.append(session, username[:80] or "-", "login_failed", f"user:{username[:80]}", {"ip": client_ip})
        return None
    session.execute(delete(LoginFailure).where(LoginFailure.key == key))
    audit.append(session, user.username, "login", f"user:{user.username}", {"ip": client_ip})
    return user


# --------------------------------------------------------------------------
# Session and CSRF
# --------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted and hmac.compare_digest(expected, submitted))


def start_session(request: Request, user: User) -> None:
    """New session (fresh CSRF token) on sign-in: nothing carries over from before."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)
