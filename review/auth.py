"""Users, passwords, sign-in limits, server-side sessions and CSRF tokens.

Passwords are hashed with Argon2id (argon2-cffi), outside any write transaction so a
burst of bad sign-ins cannot hold the store's write lock. A session is a row of
``user_sessions`` (random token in a signed, HttpOnly, SameSite=Strict cookie; only
its SHA-256 in the database), so signing out, deactivating a user or changing a
password ends it at once. Failed sign-ins are limited per sign-in name *and*
address, and per address across names, where the address is the client's as seen by
a trusted proxy (``X-Forwarded-For``); an attacker elsewhere cannot lock a user out.
A sign-in name that matches no user is stored only as a keyed hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import os
import secrets
import threading
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import anyio
import anyio.to_thread

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from councilmatch.councils import CENTRAL, COUNCIL_NAMES
from review import audit
from review.db import reading, writing
from review.models import LoginFailure, User, UserSession

ROLES: tuple[str, ...] = ("investigator", "supervisor", "admin", "hub_admin", "operator")
#: Roles of a council's staff: they see their council's queue and clear records.
COUNCIL_ROLES: tuple[str, ...] = ("investigator", "supervisor", "admin")
#: Hub-level roles: no council, no queue, no clear record. ``hub_admin`` creates councils'
#: admins; ``operator`` runs the nightly job and reads run reports only (review/routes/reports.py).
HUB_ROLES: tuple[str, ...] = ("hub_admin", "operator")
HUB = "hub"  # the ``council`` of hub-level users
MAX_FAILURES = 5  # per sign-in name and address
MAX_IP_FAILURES = 20  # per address, across sign-in names (password spraying)
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 10
SESSION_HOURS = 8
#: Where each hub-level role starts (council staff start at their queue).
HUB_LANDING: dict[str, str] = {"hub_admin": "/admin/users", "operator": "/reports"}


def landing(role: str) -> str:
    """The first page after sign-in (and of ``/``): council staff their queue, hub users their own pages."""
    return HUB_LANDING.get(role, "/queue")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AuthError(Exception):
    """Sign-in refused; the message is safe to show."""


class RateLimited(AuthError):
    pass


class WeakSecretError(ValueError):
    """A session-signing secret that someone could guess (placeholder, short, low entropy)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "example", "placeholder", "replace", "secret",
                     "password", "default")
MIN_SECRET_CHARS = 32
MIN_SECRET_BITS = 160.0


def _patterned(secret: str) -> int:
    """Characters inside stretches of four or more that repeat or count ("aaaa", "abcd", "4321").

    Not every neighbouring pair one apart: a random hex string has about a dozen of those,
    and counting them refused one random ``token_hex(32)`` in a few.
    """
    steps = [ord(b) - ord(a) for a, b in zip(secret, secret[1:])]
    found, i = 0, 0
    while i < len(steps):
        j = i
        while j + 1 < len(steps) and steps[j + 1] == steps[i]:
            j += 1
        if abs(steps[i]) <= 1 and j - i + 1 >= 3:
            found += j - i + 2
        i = j + 1
    return found


def check_session_secret(secret: str, name: str = "COUNCILMATCH_REVIEW_SECRET") -> None:
    """Refuse a session secret anyone could guess: anyone who knows it can forge any session.

    Estimated entropy is length x Shannon entropy of its characters (a generous
    estimate for random strings, a harsh one for words): ``secrets.token_urlsafe(32)``
    scores ~220 bits, ``.env.example``'s placeholder ~100.
    """
    low = secret.lower()
    if any(w in low for w in PLACEHOLDER_WORDS):
        raise WeakSecretError(f"{name} looks like a placeholder: generate one with "
                              "python3 -c \"import secrets; print(secrets.token_urlsafe(32))\"")
    if len(secret) < MIN_SECRET_CHARS:
        raise WeakSecretError(f"{name} is too short ({len(secret)} characters; at least {MIN_SECRET_CHARS})")
    counts = Counter(secret)
    bits = -len(secret) * sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    if _patterned(secret) > len(secret) // 4:
        bits = 0.0
    if bits < MIN_SECRET_BITS:
        raise WeakSecretError(f"{name} has too little entropy (about {abs(bits):.0f} bits; at least "
                              f"{MIN_SECRET_BITS:.0f}): use a random value")


def validate_new_user(username: str, council: str, role: str, password: str) -> None:
    if not username or len(username) > 80 or not all(c.isalnum() or c in "._-@" for c in username):
        raise ValueError("username: use 1-80 letters, digits or . _ - @")
    if role not in ROLES:
        raise ValueError(f"role: must be one of {', '.join(ROLES)}")
    if role in HUB_ROLES:
        if council != HUB:
            raise ValueError(f"council: a {role} belongs to no council (use {HUB!r})")
    elif council not in COUNCIL_NAMES or council == CENTRAL:
        raise ValueError(f"council: {council!r} is not a London borough ONS code (e.g. E09000007)")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: must be at least {MIN_PASSWORD} characters")


def add_user(session: Session, *, username: str, council: str, role: str, password: str, actor: str,
             password_hash: str | None = None) -> User:
    """Add a user (audited). ``password_hash`` lets a web handler hash before taking the write lock."""
    validate_new_user(username, council, role, password)
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise ValueError(f"username: {username!r} already exists")
    user = User(username=username, council=council, role=role,
                password_hash=password_hash or hash_password(password),
                active=True, created_at=datetime.now(timezone.utc))
    session.add(user)
    session.flush()
    audit.append(session, actor, "user_add", f"user:{username}", {"council": council, "role": role})
    return user


def set_password(session: Session, user: User, password: str, actor: str, password_hash: str | None = None) -> int:
    """Set a new password and end every session of the user (audited); returns sessions ended."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: must be at least {MIN_PASSWORD} characters")
    user.password_hash = password_hash or hash_password(password)
    ended = end_user_sessions(session, user.id)
    audit.append(session, actor, "user_password", f"user:{user.username}", {"sessions_ended": ended})
    return ended


def set_active(session: Session, user: User, active: bool, actor: str) -> None:
    """(De)activate a user (audited); deactivation ends every session of the user."""
    user.active = active
    detail: dict = {"council": user.council}
    if not active:
        detail["sessions_ended"] = end_user_sessions(session, user.id)
    audit.append(session, actor, "user_active" if active else "user_deactivate", f"user:{user.username}", detail)


def _failures(db: Session, key: str, since: datetime) -> int:
    return db.execute(select(func.count()).select_from(LoginFailure)
                      .where(LoginFailure.key == key, LoginFailure.at > since)).scalar_one()


@dataclass
class _Attempt:
    """One sign-in between its three steps: read (limits, user), Argon2, write (outcome)."""

    db_url: str
    username: str
    client_ip: str
    name_key: str
    user_key: str
    ip_key: str
    now: datetime
    user: User | None = None

    def limited(self, db: Session) -> bool:
        since = self.now - FAILURE_WINDOW
        return (_failures(db, self.user_key, since) >= MAX_FAILURES
                or _failures(db, self.ip_key, since) >= MAX_IP_FAILURES)


def _begin(db_url: str, username: str, client_ip: str) -> _Attempt:
    """Check the limits and find the user (a read; raises RateLimited)."""
    username = username[:80]
    name_key = audit.pseudonym(audit.anchor_for(db_url, create=True), "sign-in name", username)
    attempt = _Attempt(db_url, username, client_ip, name_key, f"u|{name_key}|{client_ip}"[:200],
                       f"ip|{client_ip}"[:200], datetime.now(timezone.utc))
    with reading(db_url) as db:
        if attempt.limited(db):
            raise RateLimited("Too many failed sign-in attempts. Wait 15 minutes and try again.")
        attempt.user = db.execute(select(User).where(User.username == username)).scalar_one_or_none()
    return attempt


def _check(attempt: _Attempt, password: str) -> bool:
    """Argon2 (slow on purpose), with no transaction open and at most ARGON2_CONCURRENCY at once
    in the process; a dummy hash for unknown names."""
    user = attempt.user
    with _ARGON2_SLOTS:
        ok = check_password(user.password_hash if user else _DUMMY_HASH, password)
    return ok and user is not None and user.active


def _finish(attempt: _Attempt, ok: bool) -> tuple[User, str] | None:
    """Record the outcome in one short write: failure (limits + audit) or a new session."""
    user = attempt.user
    with writing(attempt.db_url) as db:
        if not ok:
            db.add_all([LoginFailure(key=attempt.user_key, at=attempt.now),
                        LoginFailure(key=attempt.ip_key, at=attempt.now)])
            if user is not None:
                audit.append(db, user.username, "login_failed", f"user:{user.username}", {"ip": attempt.client_ip})
            else:  # what was typed may be a password: keep only a keyed hash of it
                audit.append(db, "-", "login_failed", "user:unknown",
                             {"ip": attempt.client_ip, "name": attempt.name_key})
            return None
        if attempt.limited(db):  # parallel guesses that passed the first check cannot sign in past it
            raise RateLimited("Too many failed sign-in attempts. Wait 15 minutes and try again.")
        db.execute(delete(LoginFailure).where(LoginFailure.key == attempt.user_key))
        token = open_session(db, user)
        audit.append(db, user.username, "login", f"user:{user.username}", {"ip": attempt.client_ip})
    return user, token


def authenticate(db_url: str, username: str, password: str, client_ip: str) -> tuple[User, str] | None:
    """(user, session token) for good credentials of an active user, else None (failure recorded).

    Raises RateLimited after MAX_FAILURES failures of this name from this address, or
    MAX_IP_FAILURES from this address, within FAILURE_WINDOW. Argon2 runs with no
    transaction open; the limit is checked again in the write transaction, so a burst
    of parallel guesses cannot sign in past it.
    """
    attempt = _begin(db_url, username, client_ip)
    return _finish(attempt, _check(attempt, password))


#: Argon2 verifications at once (each uses several cores): a burst of sign-ins queues here
#: instead of starving other requests of CPU.
ARGON2_CONCURRENCY = max(1, (os.cpu_count() or 2) // 2)
_ARGON2_SLOTS = threading.BoundedSemaphore(ARGON2_CONCURRENCY)
_limiters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def authenticate_async(db_url: str, username: str, password: str,
                             client_ip: str) -> tuple[User, str] | None:
    """``authenticate`` for the web app: waiting sign-ins wait in the event loop, not in the
    worker threads other pages need, and at most ARGON2_CONCURRENCY hash at once."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(ARGON2_CONCURRENCY)
    attempt = await run_in_threadpool(_begin, db_url, username, client_ip)
    ok = await anyio.to_thread.run_sync(_check, attempt, password, limiter=limiter)
    return await run_in_threadpool(_finish, attempt, ok)


# --------------------------------------------------------------------------
# Server-side sessions
# --------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(db: Session, user: User) -> str:
    """A new session row for ``user``; returns the token for the cookie (its hash is stored)."""
    now = datetime.now(timezone.utc)
    db.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    db.add(UserSession(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                       expires_at=now + timedelta(hours=SESSION_HOURS)))
    return token


def session_user(db: Session, token: str) -> User | None:
    """The active user of a live session, or None (ended, expired, unknown or user deactivated)."""
    row = db.execute(select(User).join(UserSession, UserSession.user_id == User.id)
                     .where(UserSession.token_hash == _token_hash(token),
                            UserSession.expires_at > datetime.now(timezone.utc))).scalar_one_or_none()
    return row if row is not None and row.active else None


def end_session(db: Session, token: str) -> None:
    db.execute(delete(UserSession).where(UserSession.token_hash == _token_hash(token)))


def end_user_sessions(db: Session, user_id: int) -> int:
    return db.execute(delete(UserSession).where(UserSession.user_id == user_id)).rowcount or 0


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


def start_session(request: Request, token: str) -> None:
    """New cookie (fresh CSRF token) on sign-in: nothing carries over from before."""
    request.session.clear()
    request.session["sid"] = token
    request.session["csrf"] = secrets.token_urlsafe(32)
