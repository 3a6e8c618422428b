"""Request-scoped dependencies (FastAPI ``Depends``): settings, DB sessions, sealer, signed-in user,
roles, client address, CSRF.

Routes never open a database session themselves: they take ``DbDep`` (a read session) and,
when they change something or audit a view, ``WritesDep`` — the request's write transaction,
opened at first use and committed when the route returns (rolled back if it raises), or
earlier with ``writes.commit()`` where an audit entry must stand even though the request is
then refused. Roles are dependencies too (``require_role``); ``tests/review/test_route_deps.py``
walks the app and fails for a non-public route without the sign-in dependency.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from councilmatch.councils import council_name
from review.auth import COUNCIL_ROLES, csrf_ok, csrf_token, session_user
from review.db import reading, writing
from review.models import User
from review.reidentify import Reidentifier
from review.flag_sides import field_label, record_rows
from review.store.sealing import Sealer, sealer_for

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["council_name"] = council_name
templates.env.globals["record_rows"] = record_rows
templates.env.filters["field"] = field_label
templates.env.filters["pct"] = lambda v: f"{v * 100:.1f}%"
templates.env.filters["money"] = lambda v: "" if v is None else f"£{v:,.2f}"
templates.env.filters["label"] = lambda v: "" if v is None else str(v).replace("_", " ").capitalize()


@dataclass
class Settings:
    db_url: str
    secret_key: str
    home_root: Path | None = None
    secure_cookies: bool = True
    reidentifier: Reidentifier | None = None
    page_size: int = 50
    #: Proxies whose ``X-Forwarded-For`` is believed (the TLS proxy in front of the app).
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default_factory=tuple)


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str = "You do not have access to this page.") -> None:
        super().__init__(message)
        self.message = message


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_db(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    with reading(settings.db_url) as session:
        yield session


def current_user(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> User:
    """The signed-in, active user of a live server-side session (read in its own short session;
    returned detached). Ended, expired or unknown sessions send the browser to sign in."""
    token = request.session.get("sid")
    user = None
    if isinstance(token, str):
        with reading(settings.db_url) as db:
            user = session_user(db, token)
    if user is None:
        request.session.pop("sid", None)
        raise LoginRequired()
    return user


def require_role(*roles: str, message: str = "Your role does not allow this."):  # noqa: ANN201
    """A dependency: the signed-in user, if their role is one of ``roles`` (else 403 with ``message``)."""
    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in roles:
            raise Forbidden(message)
        return user
    check.roles = roles  # type: ignore[attr-defined]  (read by the route-walk test)
    return check


class Writes:
    """The request's write transaction, opened at first use of ``session``.

    On SQLite writers queue on one lock, so a page that reads, asks the vault and then
    audits takes the lock only for the audit, not for the whole request.
    """

    def __init__(self, db_url: str) -> None:
        self._db_url = db_url
        self._cm: Any = None
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._cm = writing(self._db_url)
            self._session = self._cm.__enter__()
        return self._session

    def _end(self, exc: BaseException | None) -> None:
        cm, self._cm, self._session = self._cm, None, None
        if cm is not None:
            if exc is None:
                cm.__exit__(None, None, None)
            else:
                cm.__exit__(type(exc), exc, exc.__traceback__)

    def commit(self) -> None:
        """Commit what was written so far (e.g. a refusal's audit entry, before the refusal is raised)."""
        self._end(None)

    def rollback(self) -> None:
        """Drop what was written so far (a refused change) and release the write lock."""
        self._end(RuntimeError("rolled back"))


def get_writes(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Writes]:
    writes = Writes(settings.db_url)
    try:
        yield writes
    except BaseException as exc:
        writes._end(exc)
        raise
    writes._end(None)


def get_sealer(settings: Annotated[Settings, Depends(get_settings)]) -> Sealer:
    return sealer_for(settings.db_url)


def _trusted(host: str, proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_ip(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the right-most
    ``X-Forwarded-For`` address that is not itself a trusted proxy. A client cannot pick its
    own address by sending the header, since only trusted proxies' headers are read."""
    peer = request.client.host if request.client else "-"
    if not _trusted(peer, settings.trusted_proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a mangled header: fall back to the proxy itself
        if not _trusted(hop, settings.trusted_proxies):
            return hop
    return peer


async def verify_csrf(request: Request) -> None:
    """Every POST carries the session's token in a hidden ``csrf_token`` field."""
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        raise Forbidden("This form has expired or did not come from this site. Go back, reload the page and try again.")


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Session, Depends(get_db)]
#: committed when the route returns, before the response is sent (``scope="function"``)
WritesDep = Annotated[Writes, Depends(get_writes, scope="function")]
SealerDep = Annotated[Sealer, Depends(get_sealer)]
UserDep = Annotated[User, Depends(current_user)]
#: A council's staff (not hub-level users): every page with flags or clear records uses this.
CouncilUserDep = Annotated[User, Depends(require_role(*COUNCIL_ROLES))]
#: Hub-level operators (``hub_admin``): hub pages such as creating a council's first admin.
HubAdminDep = Annotated[User, Depends(require_role("hub_admin"))]
#: Roles that may assign a council's flags to its staff.
SUPERVISOR_ROLES: tuple[str, ...] = ("supervisor", "admin")
SupervisorDep = Annotated[User, Depends(require_role(*SUPERVISOR_ROLES, message="Only a supervisor can assign flags."))]
ClientIpDep = Annotated[str, Depends(client_ip)]
Csrf = Depends(verify_csrf)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           user: User | None = None):  # noqa: ANN201
    ctx = {"user": user, "csrf_token": csrf_token(request), **(context or {})}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
