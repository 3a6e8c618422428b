"""Investigators' changes (web side): one council's outcome, and assignment.

Each change runs in the caller's write transaction with optimistic locking (the flag's
``version``) and its audit entry, so it is saved with its audit trail or not at all.
Notes and amounts are sealed for their row before they are stored (``sealing``); the
audit entry records that a note changed, never its text, and the amount only sealed.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from councilmatch.contracts import OUTCOMES
from review import audit
from review.models import CouncilReview, ReviewItem, User
from review.store.common import QUEUE_KEYS, ConflictError, NotFound, ReviewError, involved_councils
from review.store.sealing import Sealer, decision_ref, sealer_for


def get_item(session: Session, flag_id: str, council: str) -> ReviewItem:
    """The flag if it involves ``council``; otherwise NotFound (never reveal that it exists)."""
    item = session.get(ReviewItem, flag_id)
    if item is None or council not in involved_councils(item.left_council, item.right_council):
        raise NotFound("No such flag in your council's queue.")
    return item


def _bump_version(session: Session, flag_id: str, expected_version: int) -> None:
    res = session.execute(update(ReviewItem)
                          .where(ReviewItem.flag_id == flag_id, ReviewItem.version == expected_version)
                          .values(version=ReviewItem.version + 1)
                          .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise ConflictError("This flag was changed by someone else while you were looking at it. "
                            "Your change was not saved; reload the page to see the latest and try again.")


def _council_review(session: Session, item: ReviewItem, council: str) -> CouncilReview:
    review = session.execute(select(CouncilReview).where(CouncilReview.flag_id == item.flag_id,
                                                         CouncilReview.council == council)).scalar_one_or_none()
    if review is None:  # flags published before queue entries existed
        review = CouncilReview(flag_id=item.flag_id, council=council, closed=False, status=item.status,
                               **{k: getattr(item, k) for k in QUEUE_KEYS[:-1]})
        session.add(review)
    return review


def _set_status(session: Session, flag_id: str, status: str) -> None:
    for table in (ReviewItem, CouncilReview):
        session.execute(update(table).where(table.flag_id == flag_id).values(status=status)
                        .execution_options(synchronize_session=False))


def _refresh_status(session: Session, item: ReviewItem) -> str:
    session.flush()
    reviews = session.execute(select(CouncilReview).where(CouncilReview.flag_id == item.flag_id)).scalars().all()
    closed = {r.council for r in reviews if r.closed}
    involved = involved_councils(item.left_council, item.right_council)
    status = "closed" if all(c in closed for c in involved) else "in_review"
    _set_status(session, item.flag_id, status)
    return status


def _session_sealer(session: Session) -> Sealer:
    bind = session.get_bind()
    return sealer_for(getattr(bind, "engine", bind).url.render_as_string(hide_password=False))


def record_decision(session: Session, *, flag_id: str, council: str, actor: str, expected_version: int,
                    outcome: str | None, amount: float | None, note: str | None, close: bool) -> str:
    """Save one council's outcome; returns the flag's new status. Raises ConflictError on a stale version.

    The values are checked here too (not only by the web form), so no caller can store an
    unknown outcome or a negative amount.
    """
    item = get_item(session, flag_id, council)
    if outcome is not None and outcome not in OUTCOMES:
        raise ReviewError(f"Outcome must be one of: {', '.join(OUTCOMES)}.")
    if close and outcome is None:
        raise ReviewError("Choose an outcome before closing your council's review.")
    if amount is not None and (not np.isfinite(amount) or amount < 0):
        raise ReviewError("Amount must be a positive number of pounds.")
    _bump_version(session, flag_id, expected_version)
    review = _council_review(session, item, council)
    sealer = _session_sealer(session)
    ref = decision_ref(flag_id, council)
    note = note or None
    note_changed = note != sealer.open_text("note", ref, review.note_sealed)
    amount_sealed = sealer.seal_amount(ref, amount)
    review.outcome, review.closed = outcome, close
    review.note_sealed, review.amount_sealed = sealer.seal_text("note", ref, note), amount_sealed
    review.decided_by, review.decided_at = actor, datetime.now(timezone.utc)
    status = _refresh_status(session, item)
    audit.append(session, actor, "decide", f"flag:{flag_id}",
                 {"council": council, "outcome": outcome, "closed": close, "note_changed": note_changed,
                  "amount_sealed": amount_sealed.hex() if amount_sealed else None, "status": status})
    return status


def assign(session: Session, *, flag_id: str, council: str, actor: str, expected_version: int,
           assignee: str | None) -> None:
    """Give one council's part of a flag to a user of that council (None to unassign)."""
    item = get_item(session, flag_id, council)
    if assignee:
        user = session.execute(select(User).where(User.username == assignee)).scalar_one_or_none()
        if user is None or user.council != council or not user.active:
            raise ReviewError("You can only assign flags to active users of your own council.")
    _bump_version(session, flag_id, expected_version)
    review = _council_review(session, item, council)
    review.assignee = assignee or None
    if item.status == "new" and assignee:
        _set_status(session, flag_id, "in_review")
    audit.append(session, actor, "assign", f"flag:{flag_id}", {"council": council, "assignee": assignee})
