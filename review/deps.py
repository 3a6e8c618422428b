"""Request-scoped dependencies (FastAPI ``Depends``): settings, DB session, signed-in user, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from councilmatch.councils import council_name
from review.auth import csrf_ok, csrf_token
from review.db import reading
from review.models import User
from review.reidentify import Reidentifier
from review.views import field_label, record_rows

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
    """The signed-in, active user (read in its own short session; returned detached)."""
    uid = request.session.get("uid")
    user = None
    if isinstance(uid, int):
        with reading(settings.db_url) as db:
            user = db.get(User, uid)
    if user is None or not user.active:
        request.session.pop("uid", None)
        raise LoginRequired()
    return user


def require_role(*roles: str):  # noqa: ANN201
    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in roles:
            raise Forbidden("Your role does not allow this.")
        return user
    return check


async def verify_csrf(request: Request) -> None:
    """Every POST carries the session's token in a hidden ``csrf_token`` field."""
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        raise Forbidden("This form has expired or did not come from this site. Go back, reload the page and try again.")


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Session, Depends(get_db)]
UserDep = Annotated[User, Depends(current_user)]
Csrf = Depends(verify_csrf)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           user: User | None = None):  # noqa: ANN201
    ctx = {"user": user, "csrf_token": csrf_token(request), **(context or {})}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
