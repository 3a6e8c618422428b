"""Sign in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from review.auth import HUB_ROLES, RateLimited, authenticate, start_session
from review.db import writing
from review.deps import Csrf, SettingsDep, render

router = APIRouter()


@router.get("/login")
def login_page(request: Request):  # noqa: ANN201
    return render(request, "login.html", {"title": "Sign in"})


@router.post("/login", dependencies=[Csrf])
def login(request: Request, settings: SettingsDep, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = ""):  # noqa: ANN201
    ip = request.client.host if request.client else "-"
    try:
        with writing(settings.db_url) as session:
            user = authenticate(session, username.strip(), password, ip)
    except RateLimited as exc:
        return render(request, "login.html", {"title": "Sign in", "error": str(exc), "username": username}, 429)
    if user is None:  # the failure is committed (rate limit + audit) before we answer
        return render(request, "login.html", {"title": "Sign in", "username": username,
                                              "error": "The username or password is not right."}, 401)
    start_session(request, user)
    return RedirectResponse("/reports" if user.role in HUB_ROLES else "/queue", status_code=303)


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request):  # noqa: ANN201
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
