"""A pair's page: explanation, own-council record from the vault, outcomes, decision form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from councilmatch.contracts import OUTCOMES
from review import audit, store
from review.charts import waterfall
from review.deps import (
    SUPERVISOR_ROLES, CouncilUserDep, Csrf, DbDep, Forbidden, SealerDep, Settings, SettingsDep, SupervisorDep,
    Writes, WritesDep, render,
)
from review.forms import AssignFormDep, DecisionFormDep, SavedDep
from review.matchtype_titles import describe
from review.models import User
from review.reidentify import VaultUnavailable
from review.store import Sealer
from review.flag_sides import FlagSide, field_label, sides

router = APIRouter(prefix="/flags")
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


def pair_page(request: Request, user: User, settings: Settings, db: Session, writes: Writes, sealer: Sealer,
              flag_id: str, error: str | None = None, status_code: int = 200, form: dict | None = None,
              saved: str | None = None):  # noqa: ANN201
    """The flag page. Its views are audited (committed before the page is sent); the evidence,
    notes and amounts are opened from their sealed columns for this response only."""
    item = store.get_item(db, flag_id, user.council)
    decisions = store.decisions_of(item, sealer, user.council)
    colleagues = []
    if user.role in SUPERVISOR_ROLES:
        colleagues = db.execute(select(User.username).where(User.council == user.council, User.active.is_(True))
                                .order_by(User.username)).scalars().all()
    flag_sides = sides(item, user.council)
    own = [s for s in flag_sides if s.own]
    records = _reidentify(settings, user, flag_id, own)
    audit.append_many(writes.session, [(user.username, "view", f"flag:{flag_id}", {"council": user.council})] + [
        (user.username, "reidentify", f"record:{s.council}/{s.dataset}/{s.record_id}",
         {"flag": flag_id, "ok": "fields" in records[s.name]}) for s in own])
    writes.commit()
    title, reason = describe(settings.home_root, item.match_type, item.match_title, item.match_reason)
    evidence = store.evidence_of(item, sealer)
    prior = item.match_weight - sum(w for *_, w in evidence)
    chart = waterfall(prior, [(field_label(n), lvl, w) for n, lvl, w in evidence], item.match_weight,
                      f"Match weight of flag {flag_id}")
    return render(request, "flag.html", {
        "title": title, "reason": reason, "item": item, "sides": flag_sides, "records": records,
        "evidence": evidence, "chart": chart, "prior": prior,
        "involved": store.involved_councils(item.left_council, item.right_council), "reviews": decisions,
        "mine": decisions.get(user.council), "outcomes": OUTCOMES, "colleagues": colleagues, "error": error,
        "saved": saved, "form": form or {},
    }, status_code, user=user)


@router.get("/{flag_id}")
def flag_page(request: Request, flag_id: FlagId, user: CouncilUserDep, settings: SettingsDep, db: DbDep,
              writes: WritesDep, sealer: SealerDep, saved: SavedDep = None):  # noqa: ANN201
    return pair_page(request, user, settings, db, writes, sealer, flag_id, saved=saved)


@router.post("/{flag_id}/decision", dependencies=[Csrf])
def decide(request: Request, flag_id: FlagId, user: CouncilUserDep, settings: SettingsDep, db: DbDep,
           writes: WritesDep, sealer: SealerDep, form: DecisionFormDep):  # noqa: ANN201
    try:
        store.record_decision(writes.session, flag_id=flag_id, council=user.council, actor=user.username,
                              expected_version=form.version, outcome=form.outcome, amount=form.amount,
                              note=form.clean_note, close=form.action == "close")
    except store.NotFound:
        raise
    except store.ReviewError as exc:
        writes.rollback()
        shown = {"outcome": form.outcome or "", "amount": "" if form.amount is None else f"{form.amount:.2f}",
                 "note": form.note}
        status = 409 if isinstance(exc, store.ConflictError) else 400
        return pair_page(request, user, settings, db, writes, sealer, flag_id, str(exc), status, shown)
    return RedirectResponse(f"/flags/{flag_id}?saved=1", status_code=303)


@router.post("/{flag_id}/assign", dependencies=[Csrf])
def assign(request: Request, flag_id: FlagId, user: SupervisorDep, settings: SettingsDep, db: DbDep,
           writes: WritesDep, sealer: SealerDep, form: AssignFormDep):  # noqa: ANN201
    try:
        store.assign(writes.session, flag_id=flag_id, council=user.council, actor=user.username,
                     expected_version=form.version, assignee=form.assignee)
    except store.NotFound:
        raise
    except store.ReviewError as exc:
        writes.rollback()
        status = 409 if isinstance(exc, store.ConflictError) else 400
        return pair_page(request, user, settings, db, writes, sealer, flag_id, str(exc), status)
    return RedirectResponse(f"/flags/{flag_id}?saved=1", status_code=303)


@router.get("/{flag_id}/record/{side}")
def record_page(request: Request, flag_id: FlagId, side: Annotated[str, Path(max_length=10)],
                user: CouncilUserDep, settings: SettingsDep, db: DbDep, writes: WritesDep):  # noqa: ANN201
    """One side's clear record, printable; only ever the user's own council's side."""
    item = store.get_item(db, flag_id, user.council)
    chosen = next((s for s in sides(item, user.council) if s.name == side), None)
    if chosen is None:
        raise store.NotFound("No such record.")
    if not chosen.own:
        audit.append(writes.session, user.username, "denied", f"record:{chosen.council}/{chosen.record_id}",
                     {"flag": flag_id})
        writes.commit()  # the refusal is audited even though the request then fails
        raise Forbidden("You can only see your own council's records.")
    records = _reidentify(settings, user, flag_id, [chosen])
    audit.append(writes.session, user.username, "reidentify",
                 f"record:{chosen.council}/{chosen.dataset}/{chosen.record_id}",
                 {"flag": flag_id, "ok": "fields" in records[side]})
    writes.commit()
    return render(request, "record.html", {"title": "Record", "item": item, "side": chosen,
                                           "record": records[side]}, user=user)
