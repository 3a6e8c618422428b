"""Reading the store for the web app: a council's queue, filter choices, dashboard, one flag's details.

Sealed values (evidence, notes, amounts) are opened here only for the request that shows
them: ``evidence_of`` and ``decisions_of`` for the flag page, ``decision_of`` per row of the
CSV export, the amounts of the council's own decisions for the dashboard's sums.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from councilmatch.contracts import STATUSES
from review.models import CouncilReview, ReviewItem
from review.store.common import ReviewError
from review.store.sealing import Sealer, decision_ref


@dataclass(frozen=True)
class QueueFilter:
    match_type: str | None = None
    status: str | None = None
    priority: int | None = None
    run_id: str | None = None
    assignee: str | None = None


def _filtered(council: str, f: QueueFilter):  # noqa: ANN202
    """Conditions on the council's queue entries (council_reviews)."""
    q = CouncilReview
    conds = [q.council == council]
    if f.match_type:
        conds.append(q.match_type == f.match_type)
    if f.status:
        if f.status not in STATUSES:
            raise ReviewError(f"Status must be one of: {', '.join(STATUSES)}.")
        conds.append(q.status == f.status)
    if f.priority is not None:
        conds.append(q.priority == f.priority)
    if f.run_id:
        conds.append(q.run_id == f.run_id)
    if f.assignee:
        conds.append(q.assignee == f.assignee)
    return and_(*conds)


ORDER = (CouncilReview.priority, CouncilReview.match_probability.desc(), CouncilReview.flag_id)


def _items_in_order(session: Session, flag_ids: list[str]) -> list[ReviewItem]:
    found = {i.flag_id: i for i in session.execute(select(ReviewItem).where(ReviewItem.flag_id.in_(flag_ids)))
             .scalars()}
    return [found[f] for f in flag_ids if f in found]


def queue(session: Session, council: str, f: QueueFilter, page: int = 1,
          page_size: int = 50) -> tuple[list[ReviewItem], int]:
    """One page of the council's queue, highest priority first, and the total count."""
    where = _filtered(council, f)
    total = session.execute(select(func.count()).select_from(CouncilReview).where(where)).scalar_one()
    ids = session.execute(select(CouncilReview.flag_id).where(where).order_by(*ORDER)
                          .offset(max(page - 1, 0) * page_size).limit(page_size)).scalars().all()
    return _items_in_order(session, list(ids)), int(total)


def queue_all(session: Session, council: str, f: QueueFilter, batch: int = 1000) -> Iterator[ReviewItem]:
    """Every item of the filtered queue, in batches (CSV export)."""
    ids = session.execute(select(CouncilReview.flag_id).where(_filtered(council, f)).order_by(*ORDER)).scalars().all()
    for i in range(0, len(ids), batch):
        yield from _items_in_order(session, list(ids[i:i + batch]))


_CHOICES_TTL = 30.0
_choices_cache: dict[tuple[str, str], tuple[float, dict[str, list]]] = {}
_choices_lock = threading.Lock()


def filter_choices(session: Session, council: str) -> dict[str, list]:
    """Values present in the council's queue, for the filter drop-downs (cached 30 s per council:
    they change only when a run is published, and a stale drop-down is harmless)."""
    key = (str(session.get_bind().url), council)
    with _choices_lock:  # one computation per council, not one per waiting request
        hit = _choices_cache.get(key)
        if hit and time.monotonic() - hit[0] < _CHOICES_TTL:
            return hit[1]
        choices = _filter_choices(session, council)
        _choices_cache[key] = (time.monotonic(), choices)
        return choices


def _filter_choices(session: Session, council: str) -> dict[str, list]:
    q = CouncilReview
    mine = q.council == council
    return {
        "match_types": session.execute(select(q.match_type).where(mine).distinct().order_by(q.match_type))
        .scalars().all(),
        "runs": session.execute(select(q.run_id).where(mine).distinct().order_by(q.run_id.desc()).limit(50))
        .scalars().all(),
        "priorities": session.execute(select(q.priority).where(mine).distinct().order_by(q.priority))
        .scalars().all(),
    }


def dashboard(session: Session, council: str, sealer: Sealer) -> dict[str, list[tuple]]:
    """Aggregates for one council's dashboard. Amounts are sealed, so their sums are made here,
    from the council's own decisions (opened in this request only)."""
    q = CouncilReview
    mine = q.council == council
    decided = session.execute(select(q.flag_id, q.outcome, q.amount_sealed)
                              .where(mine, q.outcome.is_not(None)).order_by(q.outcome)).all()
    outcomes: dict[str, list] = {}
    for flag_id, outcome, blob in decided:
        entry = outcomes.setdefault(outcome, [outcome, 0, 0.0])
        entry[1] += 1
        entry[2] += sealer.open_amount(decision_ref(flag_id, council), blob) or 0.0
    return {
        "by_run_type": session.execute(
            select(q.run_id, q.match_type, func.count()).where(mine)
            .group_by(q.run_id, q.match_type).order_by(q.run_id)).all(),
        "by_status": session.execute(select(q.status, func.count()).where(mine).group_by(q.status)).all(),
        "trend": session.execute(
            select(q.first_seen, func.count()).where(mine).group_by(q.first_seen).order_by(q.first_seen)).all(),
        "outcomes": [tuple(v) for v in outcomes.values()],
    }


def evidence_of(item: ReviewItem, sealer: Sealer) -> list[tuple[str, str, float]]:
    """(comparison, level, weight) in the flag's order; tolerant of a malformed evidence string."""
    try:
        data = json.loads(sealer.open_text("evidence", item.flag_id, item.evidence_sealed) or "{}")
    except json.JSONDecodeError:
        return []
    out = []
    for name, ev in data.items():
        if isinstance(ev, dict):
            out.append((str(name), str(ev.get("level", "")), float(ev.get("weight") or 0.0)))
    return out


@dataclass(frozen=True)
class Decision:
    """One council's part of a flag as the flag page shows it (note and amount opened)."""

    council: str
    outcome: str | None
    amount: float | None
    note: str | None
    closed: bool
    assignee: str | None
    decided_by: str | None
    decided_at: datetime | None


def decision_of(review: CouncilReview, sealer: Sealer, with_note: bool = True) -> Decision:
    ref = decision_ref(review.flag_id, review.council)
    return Decision(council=review.council, outcome=review.outcome,
                    amount=sealer.open_amount(ref, review.amount_sealed),
                    note=sealer.open_text("note", ref, review.note_sealed) if with_note else None,
                    closed=bool(review.closed), assignee=review.assignee, decided_by=review.decided_by,
                    decided_at=review.decided_at)


def decisions_of(item: ReviewItem, sealer: Sealer, council: str) -> dict[str, Decision]:
    """Every involved council's decision; only ``council``'s own note is opened (notes stay in the council)."""
    return {r.council: decision_of(r, sealer, with_note=r.council == council) for r in item.reviews}
