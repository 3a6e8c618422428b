"""The council's queue of flags, filters, pagination and CSV export."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from councilmatch.contracts import STATUSES
from councilmatch.councils import council_name
from review import audit, store
from review.auth import landing
from review.deps import CouncilUserDep, DbDep, SealerDep, SettingsDep, UserDep, WritesDep, render
from review.export import csv_lines
from review.forms import QueueQuery, QueueQueryDep
from review.matchtype_titles import describe
from review.models import ReviewItem
from review.store import Sealer
from review.flag_sides import other_side, own_review, sides

router = APIRouter()
__all__ = ["QueueQuery", "router"]


@router.get("/")
def home(user: UserDep) -> RedirectResponse:
    """Council staff start at their queue; hub-level users (no council, no queue) at their own pages."""
    return RedirectResponse(landing(user.role), status_code=303)


@router.get("/queue")
def queue_page(request: Request, user: CouncilUserDep, db: DbDep, settings: SettingsDep,
               q: QueueQueryDep):  # noqa: ANN201
    f = q.filter()
    page = q.page
    items, total = store.queue(db, user.council, f, page, settings.page_size)
    rows = []
    for item in items:
        title, _ = describe(settings.home_root, item.match_type, item.match_title, item.match_reason)
        rows.append({"item": item, "title": title, "own": [s for s in sides(item, user.council) if s.own],
                     "other": other_side(item, user.council), "review": own_review(item, user.council)})
    params = {k: v for k, v in {"match_type": f.match_type, "status": f.status, "priority": f.priority,
                                "run": f.run_id, "assignee": f.assignee}.items() if v not in (None, "")}
    pages = max((total + settings.page_size - 1) // settings.page_size, 1)
    choices = store.filter_choices(db, user.council)
    choices["titles"] = {m: describe(settings.home_root, m)[0] for m in choices["match_types"]}
    return render(request, "queue.html", {
        "title": "Queue", "rows": rows, "total": total, "page": page, "pages": pages, "f": f,
        "statuses": STATUSES, "choices": choices, "query": urlencode(params),
    }, user=user)


CSV_HEADER = ["flag_id", "match_type", "priority", "status", "match_probability", "run_id", "first_seen",
              "last_seen", "your_dataset", "your_record_id", "other_council", "other_dataset",
              "other_record_id", "your_outcome", "your_amount", "assignee"]


@router.get("/queue.csv")
def queue_csv(user: CouncilUserDep, db: DbDep, writes: WritesDep, sealer: SealerDep,
              q: QueueQueryDep) -> StreamingResponse:
    """The filtered queue as CSV (audited first). The read session is request-scoped, so it stays
    open while the response streams; each row's amount is opened as it is written."""
    f = q.filter()
    council = user.council
    audit.append(writes.session, user.username, "export", f"queue:{council}",
                 {k: v for k, v in vars(f).items() if v is not None})
    writes.commit()

    def rows():  # noqa: ANN202
        yield from (_csv_row(item, council, sealer) for item in store.queue_all(db, council, f))

    return StreamingResponse(csv_lines(CSV_HEADER, rows()), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": 'attachment; filename="queue.csv"'})


def _csv_row(item: ReviewItem, council: str, sealer: Sealer) -> list:
    own = [s for s in sides(item, council) if s.own][0]
    other = other_side(item, council)
    mine = own_review(item, council)
    review = store.decision_of(mine, sealer, with_note=False) if mine is not None else None
    return [item.flag_id, item.match_type, item.priority, item.status, round(item.match_probability, 6),
            item.run_id, item.first_seen, item.last_seen, own.dataset, own.record_id,
            council_name(other.council), other.dataset, other.record_id,
            review.outcome if review and review.outcome else "",
            review.amount if review and review.amount is not None else "",
            review.assignee if review and review.assignee else ""]
