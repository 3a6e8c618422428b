"""The council's queue of flags, filters, pagination and CSV export."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from councilmatch.contracts import STATUSES
from councilmatch.councils import council_name
from review import audit, store
from review.db import reading, writing
from review.deps import DbDep, SettingsDep, UserDep, render
from review.export import csv_lines
from review.matchtypes import describe
from review.models import ReviewItem
from review.views import other_side, own_review, sides

router = APIRouter()


def _filter(request: Request) -> store.QueueFilter:
    q = request.query_params
    priority = q.get("priority", "").strip()
    status = q.get("status", "").strip()
    return store.QueueFilter(
        match_type=q.get("match_type") or None,
        status=status if status in STATUSES else None,
        priority=int(priority) if priority.isdigit() else None,
        run_id=q.get("run") or None,
        assignee=q.get("assignee") or None,
    )


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() else 1


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue")
def queue_page(request: Request, user: UserDep, db: DbDep, settings: SettingsDep):  # noqa: ANN201
    f = _filter(request)
    page = _page(request)
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
def queue_csv(request: Request, user: UserDep, settings: SettingsDep) -> StreamingResponse:
    f = _filter(request)
    council = user.council
    with writing(settings.db_url) as session:
        audit.append(session, user.username, "export", f"queue:{council}",
                     {k: v for k, v in vars(f).items() if v is not None})

    def rows():  # noqa: ANN202
        # Its own session: the response streams after the request's dependencies have closed.
        with reading(settings.db_url) as db:
            yield from (_csv_row(item, council) for item in store.queue_all(db, council, f))

    return StreamingResponse(csv_lines(CSV_HEADER, rows()), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": 'attachment; filename="queue.csv"'})


def _csv_row(item: ReviewItem, council: str) -> list:
    own = [s for s in sides(item, council) if s.own][0]
    other = other_side(item, council)
    review = own_review(item, council)
    return [item.flag_id, item.match_type, item.priority, item.status, round(item.match_probability, 6),
            item.run_id, item.first_seen, item.last_seen, own.dataset, own.record_id,
            council_name(other.council), other.dataset, other.record_id,
            review.outcome if review and review.outcome else "",
            review.amount if review and review.amount is not None else "",
            review.assignee if review and review.assignee else ""]
