"""A pair's page: explanation, own-council record from the vault, outcomes, decision form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from councilmatch.contracts import OUTCOMES
from review import audit, store
from review.charts import waterfall
from review.db import reading, writing
from review.deps import CouncilUserDep, Csrf, Forbidden, Settings, SettingsDep, render
from review.matchtype_titles import describe
from review.models import User
from review.reidentify import VaultUnavailable
from review.flag_sides import FlagSide, field_label, sides

router = APIRouter(prefix="/flags")
#: The flag version a form was based on (optimistic locking); bounded so a huge number is a 422.
Version = Annotated[int, Form(ge=1, le=2**31 - 1)]
FlagId = Annotated[str, Path(max_length=64)]


def _reidentify(settings: Settings, user: User, flag_id: str, own: list[FlagSide]) -> dict[str, dict]:
    """Each own side's clear record (or an error message); audited in the review chain too."""
    records: dict[str, dict] = {}
    for side in own:
        if settings.reidentifier is None:
            records[side.name] = {"error": "No vault is configured for this service."}
            continue
        try:
            records[side.name] = {"fields": settings.reidentifier(
                side.council, side.record_id, user.username, f"review of flag {flag_id}", dataset=side.dataset)}
        except VaultUnavailable as exc:
            records[side.name] = {"error": str(exc)}
    return records


def pair_page(request: Request, user: User, settings: Settings, flag_id: str, error: str | None = None,
              status_code: int = 200, form: dict | None = None):  # noqa: ANN201
    with reading(settings.db_url) as db:
        item = store.get_item(db, flag_id, user.council)
        reviews = {r.council: r for r in item.reviews}
        colleagues = []
        if user.role in ("supervisor", "admin"):
            colleagues = db.execute(select(User.username).where(User.council == user.council, User.active.is_(True))
                                    .order_by(User.username)).scalars().all()
    flag_sides = sides(item, user.council)
    own = [s for s in flag_sides if s.own]
    records = _reidentify(settings, user, flag_id, own)
    with writing(settings.db_url) as session:
        audit.append_many(session, [(user.username, "view", f"flag:{flag_id}", {"council": user.council})] + [
            (user.username, "reidentify", f"record:{s.council}/{s.dataset}/{s.record_id}",
             {"flag": flag_id, "ok": "fields" in records[s.name]}) for s in own])
    title, reason = describe(settings.home_root, item.match_type, item.match_title, item.match_reason)
    evidence = store.evidence_of(item)
    prior = item.match_weight - sum(w for *_, w in evidence)
    chart = waterfall(prior, [(field_label(n), lvl, w) for n, lvl, w in evidence], item.match_weight,
                      f"Match weight of flag {flag_id}")
    return render(request, "flag.html", {
        "title": title, "reason": reason, "item": item, "sides": flag_sides, "records": records,
        "evidence": evidence, "chart": chart, "prior": prior,
        "involved": store.involved_councils(item.left_council, item.right_council), "reviews": reviews,
        "mine": reviews.get(user.council), "outcomes": OUTCOMES, "colleagues": colleagues, "error": error,
        "saved": request.query_params.get("saved"), "form": form or {},
    }, status_code, user=user)


@router.get("/{flag_id}")
def flag_page(request: Request, flag_id: FlagId, user: CouncilUserDep, settings: SettingsDep):  # noqa: ANN201
    return pair_page(request, user, settings, flag_id)


def _amount(raw: str) -> float | None:
    raw = raw.strip().replace(",", "").lstrip("£")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise store.ReviewError("Amount must be a number of pounds, like 1250.00.") from None


@router.post("/{flag_id}/decision", dependencies=[Csrf])
def decide(request: Request, flag_id: FlagId, user: CouncilUserDep, settings: SettingsDep,
           version: Version, outcome: Annotated[str, Form(max_length=40)] = "",
           amount: Annotated[str, Form(max_length=40)] = "", note: Annotated[str, Form(max_length=20_000)] = "",
           action: Annotated[str, Form(max_length=10)] = "save"):  # noqa: ANN201
    form = {"outcome": outcome, "amount": amount, "note": note}
    try:
        with writing(settings.db_url) as session:
            store.record_decision(session, flag_id=flag_id, council=user.council, actor=user.username,
                                  expected_version=version, outcome=outcome or None, amount=_amount(amount),
                                  note=note.strip()[:4000] or None, close=(action == "close"))
    except store.ConflictError as exc:
        return pair_page(request, user, settings, flag_id, str(exc), 409, form)
    except store.NotFound:
        raise
    except store.ReviewError as exc:
        return pair_page(request, user, settings, flag_id, str(exc), 400, form)
    return RedirectResponse(f"/flags/{flag_id}?saved=1", status_code=303)


@router.post("/{flag_id}/assign", dependencies=[Csrf])
def assign(request: Request, flag_id: FlagId, user: CouncilUserDep, settings: SettingsDep,
           version: Version, assignee: Annotated[str, Form(max_length=80)] = ""):  # noqa: ANN201
    if user.role not in ("supervisor", "admin"):
        raise Forbidden("Only a supervisor can assign flags.")
    try:
        with writing(settings.db_url) as session:
            store.assign(session, flag_id=flag_id, council=user.council, actor=user.username,
                         expected_version=version, assignee=assignee or None)
    except store.NotFound:
        raise
    except store.ConflictError as exc:
        return pair_page(request, user, settings, flag_id, str(exc), 409)
    except store.ReviewError as exc:
        return pair_page(request, user, settings, flag_id, str(exc), 400)
    return RedirectResponse(f"/flags/{flag_id}?saved=1", status_code=303)


@router.get("/{flag_id}/record/{side}")
def record_page(request: Request, flag_id: FlagId, side: Annotated[str, Path(max_length=10)],
                user: CouncilUserDep, settings: SettingsDep):  # noqa: ANN201
    """One side's clear record, printable; only ever the user's own council's side."""
    with reading(settings.db_url) as db:
        item = store.get_item(db, flag_id, user.council)
        chosen = next((s for s in sides(item, user.council) if s.name == side), None)
    if chosen is None:
        raise store.NotFound("No such record.")
    if not chosen.own:
        with writing(settings.db_url) as session:
            audit.append(session, user.username, "denied", f"record:{chosen.council}/{chosen.record_id}",
                         {"flag": flag_id})
        raise Forbidden("You can only see your own council's records.")
    records = _reidentify(settings, user, flag_id, [chosen])
    with writing(settings.db_url) as session:
        audit.append(session, user.username, "reidentify",
                     f"record:{chosen.council}/{chosen.dataset}/{chosen.record_id}",
                     {"flag": flag_id, "ok": "fields" in records[side]})
    return render(request, "record.html", {"title": "Record", "item": item, "side": chosen,
                                           "record": records[side]}, user=user)
