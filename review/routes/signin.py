"""Sign in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from review import audit
from review.auth import RateLimited, authenticate_async, end_session, landing, session_user, start_session
from review.deps import ClientIpDep, Csrf, SettingsDep, WritesDep, render

router = APIRouter()


@router.get("/login")
def login_page(request: Request):  # noqa: ANN201
    return render(request, "login.html", {"title": "Sign in"})


@router.post("/login", dependencies=[Csrf])
async def login(request: Request, settings: SettingsDep, ip: ClientIpDep,
          username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=1000)] = ""):  # noqa: ANN201
    try:
        signed_in = await authenticate_async(settings.db_url, username.strip(), password, ip)
    except RateLimited as exc:
        return render(request, "login.html", {"title": "Sign in", "error": str(exc), "username": username}, 429)
    if signed_in is None:  # the failure is committed (rate limit + audit) before we answer
        return render(request, "login.html", {"title": "Sign in", "username": username,
                                              "error": "The username or password is not right."}, 401)
    user, token = signed_in
    start_session(request, token)
    return RedirectResponse(landing(user.role), status_code=303)


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request, writes: WritesDep, ip: ClientIpDep):  # noqa: ANN201
    """End the session server-side (a copy of the cookie no longer opens anything) and audit it."""
    token = request.session.get("sid")
    if isinstance(token, str):
        user = session_user(writes.session, token)
        end_session(writes.session, token)
        if user is not None:
            audit.append(writes.session, user.username, "logout", f"user:{user.username}", {"ip": ip})
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
