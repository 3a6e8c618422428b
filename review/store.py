"""The review store's operations: publishing flags, decisions, queues.

Called by the nightly pipeline::

    migrate(db_url)                         schema to the newest Alembic revision
    publish_flags(db_url, flags) -> dict    upsert flags by flag_id: {"new", "updated", "unchanged", "reopened"}
    suppressed_flags(db_url) -> DataFrame   (flag_id, evidence_hash) closed as no issue by every involved council

and by the web app (one ``Session`` per request): ``record_decision``, ``assign``,
``queue``, ``dashboard``.

*Involved councils* of a flag are its left and right councils, less the central
deceased-persons feed (nobody reviews on its behalf). A flag is **suppressed**
when it is closed and every involved council closed its part with outcome
``no_issue``; if it comes back with a different ``evidence_hash`` it is
reopened (status ``new``, audited) — the old outcomes stay visible as history.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from councilmatch.contracts import FLAG_COLUMNS, OUTCOMES, STATUSES
from councilmatch.councils import CENTRAL
from review import audit
from review.db import after_bulk_write, migrate, reading, writing  # noqa: F401  (migrate is part of this module's API)
from review.models import CouncilReview, ReviewItem, User

log = logging.getLogger(__name__)

#: Flag fields the pipeline may refresh on every run (never the review fields).
REFRESHED = ("run_id", "match_type", "left_council", "left_dataset", "left_record_id", "right_council",
             "right_dataset", "right_record_id", "match_probability", "match_weight", "evidence",
             "evidence_hash", "priority", "key_id", "last_seen", "match_title", "match_reason")
OPTIONAL_COLUMNS = ("match_title", "match_reason")
_CHUNK = 900  # ids per IN (...) query: under SQLite's bound-parameter limit


class ReviewError(Exception):
    """A request the store refuses; the message is safe to show to the user."""


class NotFound(ReviewError):
    pass


class ConflictError(ReviewError):
    pass


def involved_councils(left_council: str, right_council: str) -> tuple[str, ...]:
    return tuple(c for c in dict.fromkeys((left_council, right_council)) if c != CENTRAL)


# --------------------------------------------------------------------------
# Publishing (pipeline side)
# --------------------------------------------------------------------------


def _validate_flags(flags: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in FLAG_COLUMNS if c not in flags.columns]
    if missing:
        raise ValueError(f"flags frame lacks columns {missing} (see councilmatch.contracts.FLAG_COLUMNS)")
    df = flags.loc[:, [c for c in (*FLAG_COLUMNS, *OPTIONAL_COLUMNS) if c in flags.columns]].copy()
    for c in OPTIONAL_COLUMNS:
        if c not in df.columns:
            df[c] = None
    bad = df["flag_id"].isna() | (df["flag_id"].astype(str).str.len() == 0)
    if bad.any():
        raise ValueError(f"flags row {int(np.flatnonzero(bad)[0])}: field flag_id is empty")
    dup = df["flag_id"].duplicated()
    if dup.any():
        raise ValueError(f"flags row {int(np.flatnonzero(dup)[0])}: field flag_id "
                         f"{df['flag_id'][dup].iloc[0]!r} appears more than once")
    prob = pd.to_numeric(df["match_probability"], errors="coerce")
    bad = prob.isna() | (prob < 0) | (prob > 1)
    if bad.any():
        raise ValueError(f"flags row {int(np.flatnonzero(bad)[0])}: field match_probability is not in [0, 1]")
    df["match_probability"] = prob.astype("float64")
    df["match_weight"] = pd.to_numeric(df["match_weight"], errors="raise").astype("float64")
    df["priority"] = pd.to_numeric(df["priority"], errors="raise").astype("int64")
    str_cols = [c for c in df.columns if c not in ("match_probability", "match_weight", "priority")]
    for c in str_cols:
        df[c] = df[c].astype(object).where(df[c].notna(), None)
        df.loc[df[c].notna(), c] = df.loc[df[c].notna(), c].astype(str)
    return df


def _unpublishable(df: pd.DataFrame) -> np.ndarray:
    """Rows a database would refuse (a NUL, raw or JSON-escaped, in any text field: PostgreSQL
    rejects the whole batch for one). Ingest quarantines control characters; this is the last
    guard, so that one bad row cannot lose the night's publish."""
    bad = np.zeros(len(df), dtype=bool)
    for c in df.columns:
        if df[c].dtype == object:
            text = df[c].astype("string[pyarrow]")
            bad |= (text.str.contains("\x00", regex=False) | text.str.contains("\\u0000", regex=False)
                    ).fillna(False).to_numpy(dtype=bool)
    return bad


def _existing(session: Session, flag_ids: list[str]) -> pd.DataFrame:
    cols = [ReviewItem.flag_id, ReviewItem.status, ReviewItem.version,
            *[getattr(ReviewItem, c) for c in REFRESHED]]
    frames = []
    for i in range(0, len(flag_ids), _CHUNK):
        rows = session.execute(select(*cols).where(ReviewItem.flag_id.in_(flag_ids[i:i + _CHUNK]))).all()
        if rows:
            frames.append(pd.DataFrame(rows, columns=[c.key for c in cols]))
    if not frames:
        return pd.DataFrame(columns=[c.key for c in cols])
    return pd.concat(frames, ignore_index=True)


def _differs(a: pd.Series, b: pd.Series) -> pd.Series:
    if a.name in ("match_probability", "match_weight"):
        return ~np.isclose(a.astype(float).to_numpy(), b.astype(float).to_numpy(), rtol=1e-12, atol=0.0)
    if a.name == "priority":
        return a.astype("int64").to_numpy() != b.astype("int64").to_numpy()
    an, bn = a.isna().to_numpy(), b.isna().to_numpy()
    return (an != bn) | (~an & ~bn & (a.astype(str).to_numpy() != b.astype(str).to_numpy()))


def _suppressed_ids(session: Session, flag_ids: list[str] | None = None) -> pd.DataFrame:
    """(flag_id, evidence_hash) of closed flags that every involved council closed as no issue."""
    items_q = select(ReviewItem.flag_id, ReviewItem.evidence_hash, ReviewItem.left_council,
                     ReviewItem.right_council).where(ReviewItem.status == "closed")
    reviews_q = (select(CouncilReview.flag_id, CouncilReview.council)
                 .join(ReviewItem, ReviewItem.flag_id == CouncilReview.flag_id)
                 .where(ReviewItem.status == "closed", CouncilReview.closed.is_(True),
                        CouncilReview.outcome == "no_issue"))
    item_frames, review_frames = [], []
    chunks = [None] if flag_ids is None else [flag_ids[i:i + _CHUNK] for i in range(0, len(flag_ids), _CHUNK)]
    for chunk in chunks:
        iq, rq = items_q, reviews_q
        if chunk is not None:
            iq = iq.where(ReviewItem.flag_id.in_(chunk))
            rq = rq.where(CouncilReview.flag_id.in_(chunk))
        item_frames.append(pd.DataFrame(session.execute(iq).all(),
                                        columns=["flag_id", "evidence_hash", "left_council", "right_council"]))
        review_frames.append(pd.DataFrame(session.execute(rq).all(), columns=["flag_id", "council"]))
    items = pd.concat(item_frames, ignore_index=True)
    reviews = pd.concat(review_frames, ignore_index=True)
    if items.empty:
        return pd.DataFrame({"flag_id": pd.Series(dtype=object), "evidence_hash": pd.Series(dtype=object)})
    # Each involved council (left, right, less central) must have closed as no issue.
    reviews = reviews.drop_duplicates().assign(_no_issue=True)
    ok = np.ones(len(items), dtype=bool)
    for side in ("left_council", "right_council"):
        has = items[["flag_id", side]].merge(reviews, how="left", left_on=["flag_id", side],
                                             right_on=["flag_id", "council"])["_no_issue"]
        ok &= (items[side].to_numpy() == CENTRAL) | has.eq(True).to_numpy()
    return items.loc[ok, ["flag_id", "evidence_hash"]].reset_index(drop=True)


#: Flag fields copied onto each council's queue entry (status and first_seen last: set once / on change).
QUEUE_KEYS = ("priority", "match_probability", "match_type", "run_id", "first_seen", "status")


def _queue_entries(fresh: pd.DataFrame) -> pd.DataFrame:
    """One council_reviews row per involved council of each new flag."""
    parts = []
    for side in ("left_council", "right_council"):
        part = fresh[["flag_id", side, *QUEUE_KEYS[:-1]]].rename(columns={side: "council"})
        parts.append(part[part["council"] != CENTRAL])
    out = pd.concat(parts, ignore_index=True).drop_duplicates(["flag_id", "council"])
    return out.assign(status="new", closed=False)


def publish_flags(db_url: str, flags: pd.DataFrame, actor: str = "pipeline") -> dict:
    """Upsert a run's flags by ``flag_id``; idempotent; never touches investigators' decisions.

    Returns counts ``{"new", "updated", "unchanged", "reopened"}`` (reopened ⊆ updated).
    """
    migrate(db_url)
    df = _validate_flags(flags)
    counts = {"new": 0, "updated": 0, "unchanged": 0, "reopened": 0}
    refused = _unpublishable(df)
    if refused.any():
        log.warning("publish: %d flag(s) hold a NUL character and are not published: %s", int(refused.sum()),
                    ", ".join(df.loc[refused, "flag_id"].astype(str).head(5)))
        counts["rejected"] = int(refused.sum())
        df = df.loc[~refused].reset_index(drop=True)
    if df.empty:
        return counts
    with writing(db_url) as session:
        old = _existing(session, df["flag_id"].tolist())
        is_new = ~df["flag_id"].isin(old["flag_id"])
        fresh = df[is_new]
        if len(fresh):
            rows = fresh.assign(status="new", version=1).replace({np.nan: None}).to_dict("records")
            for i in range(0, len(rows), 5000):
                session.execute(insert(ReviewItem), rows[i:i + 5000])
            rows = _queue_entries(fresh).to_dict("records")
            for i in range(0, len(rows), 5000):
                session.execute(insert(CouncilReview), rows[i:i + 5000])
        both = df[~is_new].merge(old, on="flag_id", suffixes=("", "_old"))
        changed = np.zeros(len(both), dtype=bool)
        for c in REFRESHED:
            changed |= _differs(both[c].rename(c), both[f"{c}_old"].rename(c))
        # first_seen keeps the run that first raised the flag.
        upd = both.loc[changed, ["flag_id", *REFRESHED]]
        reopened: list[str] = []
        evidence_moved = both.loc[changed & (both["evidence_hash"] != both["evidence_hash_old"])
                                  & (both["status"] == "closed"), "flag_id"].tolist()
        if evidence_moved:
            reopened = _suppressed_ids(session, evidence_moved)["flag_id"].tolist()
        if len(upd):
            rows = upd.replace({np.nan: None}).to_dict("records")
            for i in range(0, len(rows), 5000):
                session.execute(update(ReviewItem), rows[i:i + 5000])
            refreshed = QUEUE_KEYS[:-2]  # first_seen never changes; status only by review
            keys = (upd[["flag_id", *refreshed]].rename(columns=lambda c: f"b_{c}")
                    .replace({np.nan: None}).to_dict("records"))
            stmt = (update(CouncilReview).where(CouncilReview.flag_id == bindparam("b_flag_id"))
                    .values({c: bindparam(f"b_{c}") for c in refreshed}))
            for i in range(0, len(keys), 5000):
                session.connection().execute(stmt, keys[i:i + 5000])
        if reopened:
            for i in range(0, len(reopened), _CHUNK):
                chunk = reopened[i:i + _CHUNK]
                session.execute(update(ReviewItem).where(ReviewItem.flag_id.in_(chunk))
                                .values(status="new", version=ReviewItem.version + 1)
                                .execution_options(synchronize_session=False))
                session.execute(update(CouncilReview).where(CouncilReview.flag_id.in_(chunk))
                                .values(closed=False, status="new").execution_options(synchronize_session=False))
            run_of = dict(zip(upd["flag_id"], upd["run_id"]))
            audit.append_many(session, [
                (actor, "reopen", f"flag:{fid}",
                 {"reason": "closed as no issue, raised again with different evidence", "run_id": run_of[fid]})
                for fid in reopened])
        counts.update(new=int(is_new.sum()), updated=int(changed.sum()),
                      unchanged=int(len(both) - changed.sum()), reopened=len(reopened))
        if counts["new"] or counts["updated"]:
            runs = sorted(df["run_id"].dropna().unique().tolist())
            audit.append(session, actor, "publish", f"runs:{','.join(runs)[:180]}", counts)
    if counts["new"] or counts["updated"]:
        after_bulk_write(db_url)
    # The signed tip, outside the database: a later truncation or rewrite of the trail shows.
    audit.checkpoint(db_url, f"publish {','.join(sorted(df['run_id'].dropna().unique().tolist()))[:150]}")
    return counts


def suppressed_flags(db_url: str) -> pd.DataFrame:
    """Flags closed with outcome ``no_issue`` by every involved council: (flag_id, evidence_hash).

    The pipeline may skip raising such a flag again while its evidence_hash is unchanged.
    """
    migrate(db_url)
    with reading(db_url) as session:
        return _suppressed_ids(session)


# --------------------------------------------------------------------------
# Investigators' changes (web side): optimistic locking + audit in one transaction
# --------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc)


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


def _refresh_status(session: Session, item: ReviewItem) -> str:
    session.flush()
    reviews = session.execute(select(CouncilReview).where(CouncilReview.flag_id == item.flag_id)).scalars().all()
    closed = {r.council for r in reviews if r.closed}
    involved = involved_councils(item.left_council, item.right_council)
    status = "closed" if all(c in closed for c in involved) else "in_review"
    _set_status(session, item.flag_id, status)
    return status


def _set_status(session: Session, flag_id: str, status: str) -> None:
    for table in (ReviewItem, CouncilReview):
        session.execute(update(table).where(table.flag_id == flag_id).values(status=status)
                        .execution_options(synchronize_session=False))


def record_decision(session: Session, *, flag_id: str, council: str, actor: str, expected_version: int,
                    outcome: str | None, amount: float | None, note: str | None, close: bool) -> str:
    """Save one council's outcome; returns the flag's new status. Raises ConflictError on a stale version."""
    item = get_item(session, flag_id, council)
    if outcome is not None and outcome not in OUTCOMES:
        raise ReviewError(f"Outcome must be one of: {', '.join(OUTCOMES)}.")
    if close and outcome is None:
        raise ReviewError("Choose an outcome before closing your council's review.")
    if amount is not None and (not np.isfinite(amount) or amount < 0):
        raise ReviewError("Amount must be a positive number of pounds.")
    _bump_version(session, flag_id, expected_version)
    review = _council_review(session, item, council)
    note_changed = (note or None) != review.note
    review.outcome, review.amount, review.note, review.closed = outcome, amount, note or None, close
    review.decided_by, review.decided_at = actor, _now()
    status = _refresh_status(session, item)
    audit.append(session, actor, "decide", f"flag:{flag_id}",
                 {"council": council, "outcome": outcome, "amount": amount, "closed": close,
                  "note_changed": note_changed, "status": status})
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


# --------------------------------------------------------------------------
# Reading: queue and dashboard
# --------------------------------------------------------------------------


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


def queue_all(session: Session, council: str, f: QueueFilter, batch: int = 1000):  # noqa: ANN201
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


def dashboard(session: Session, council: str) -> dict[str, list[tuple]]:
    """Aggregates for one council's dashboard."""
    q = CouncilReview
    mine = q.council == council
    return {
        "by_run_type": session.execute(
            select(q.run_id, q.match_type, func.count()).where(mine)
            .group_by(q.run_id, q.match_type).order_by(q.run_id)).all(),
        "by_status": session.execute(select(q.status, func.count()).where(mine).group_by(q.status)).all(),
        "trend": session.execute(
            select(q.first_seen, func.count()).where(mine).group_by(q.first_seen).order_by(q.first_seen)).all(),
        "outcomes": session.execute(
            select(q.outcome, func.count(), func.coalesce(func.sum(q.amount), 0.0))
            .where(mine, q.outcome.is_not(None)).group_by(q.outcome)).all(),
    }


def evidence_of(item: ReviewItem) -> list[tuple[str, str, float]]:
    """(comparison, level, weight) in the flag's order; tolerant of a malformed evidence string."""
    try:
        data = json.loads(item.evidence or "{}")
    except json.JSONDecodeError:
        return []
    out = []
    for name, ev in data.items():
        if isinstance(ev, dict):
            out.append((str(name), str(ev.get("level", "")), float(ev.get("weight") or 0.0)))
    return out
