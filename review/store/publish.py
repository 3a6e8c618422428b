"""Publishing a run's flags into the review store, and purging closed flags past retention.

Called by the nightly pipeline::

    publish_flags(db_url, flags) -> dict    upsert by flag_id: {"new", "updated", "unchanged", "reopened", "retracted"}
    suppressed_flags(db_url, raised) -> DataFrame   of a run's raised flags, those closed as no issue with the same evidence
    purge_closed_flags(db_url, before)      retention: review items closed before a date, with their decisions

Publishing is an upsert that only writes what changed: each flag's published content
(everything but the run that raised it and its date) is digested with a keyed HMAC
(``review.store.sealing``) and compared with the stored digest, so an unchanged night
writes no flag row at all. A flag's ``run_id`` and ``last_seen`` therefore name the run
that last *changed* it; ``first_seen`` the run that first raised it; ``updated_at`` when
a publish last wrote it. An open flag that the run no longer raises is marked
``retracted_in`` (kept, with its decisions: an investigator may be half-way through it);
it is un-marked, and counted as updated, if it comes back.

A flag is **suppressed** when it is closed and every involved council closed its part
with outcome ``no_issue``; if it comes back with a different ``evidence_hash`` it is
reopened (status ``new``, audited) — the old outcomes stay visible as history. The store keeps
no evidence hash as the pipeline makes it (an unkeyed hash of a few comparison levels, which
the few thousand level combinations would give back): it keeps a keyed digest of it, bound to
the flag (``Sealer.evidence_digests``), and compares the pipeline's hash with it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, func, inspect, insert, select, update
from sqlalchemy.orm import Session

from councilmatch.contracts import FLAG_COLUMNS
from councilmatch.councils import CENTRAL
from review import audit
from review.db import after_bulk_write, engine_for, migrate, normalise_url, reading, writing
from review.models import CouncilReview, ReviewItem
from review.store.common import CHUNK, QUEUE_KEYS
from review.store.sealing import evidence_payloads, sealer_for

log = logging.getLogger("review.store")

#: Flag fields the pipeline may refresh (never the review fields).
REFRESHED = ("run_id", "match_type", "left_council", "left_dataset", "left_record_id", "right_council",
             "right_dataset", "right_record_id", "match_probability", "match_weight", "evidence",
             "evidence_hash", "priority", "key_id", "last_seen", "match_title", "match_reason")
#: What makes a flag "changed": all of it but the run that raised it and the date.
CONTENT = tuple(c for c in REFRESHED if c not in ("run_id", "last_seen"))
OPTIONAL_COLUMNS = ("match_title", "match_reason")
_BATCH = 5000


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
    return df.reset_index(drop=True)


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


def _payloads(df: pd.DataFrame) -> pd.Series:
    """Each flag's id and content as one string (the input of its keyed digest), built column-wise.

    Fields are joined by a unit separator, which no field holds (ingest quarantines control
    characters; evidence is JSON, which escapes them); a missing value is a lone NUL.
    """
    out = None
    for c in ("flag_id", *CONTENT):
        col = df[c]
        text = col.astype(object).where(col.notna(), "\x00").astype(str)
        out = text if out is None else out + "\x1f" + text
    return out


def _existing(session: Session, flag_ids: list[str]) -> pd.DataFrame:
    """The stored state of these flags. A night's full set is most of the table: one scan then,
    instead of a hundred ``IN (...)`` look-ups."""
    cols = [ReviewItem.flag_id, ReviewItem.status, ReviewItem.evidence_hash, ReviewItem.content_hash,
            ReviewItem.retracted_in]
    names = ["flag_id", "status_old", "evidence_hash_old", "content_hash_old", "retracted_in_old"]
    if len(flag_ids) > 4 * CHUNK:
        found = pd.DataFrame(session.execute(select(*cols)).all(), columns=names)
        return found[found["flag_id"].isin(flag_ids)].reset_index(drop=True)
    frames = [pd.DataFrame(session.execute(select(*cols).where(ReviewItem.flag_id.in_(flag_ids[i:i + CHUNK])))
                           .all(), columns=names) for i in range(0, len(flag_ids), CHUNK)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)


def _suppressed_ids(session: Session, flag_ids: list[str] | None = None) -> pd.DataFrame:
    """(flag_id, evidence_hash) of closed flags that every involved council closed as no issue."""
    items_q = select(ReviewItem.flag_id, ReviewItem.evidence_hash, ReviewItem.left_council,
                     ReviewItem.right_council).where(ReviewItem.status == "closed")
    reviews_q = (select(CouncilReview.flag_id, CouncilReview.council)
                 .join(ReviewItem, ReviewItem.flag_id == CouncilReview.flag_id)
                 .where(ReviewItem.status == "closed", CouncilReview.closed.is_(True),
                        CouncilReview.outcome == "no_issue"))
    item_frames, review_frames = [], []
    chunks = [None] if flag_ids is None else [flag_ids[i:i + CHUNK] for i in range(0, len(flag_ids), CHUNK)]
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


def _queue_entries(fresh: pd.DataFrame) -> pd.DataFrame:
    """One council_reviews row per involved council of each new flag."""
    parts = []
    for side in ("left_council", "right_council"):
        part = fresh[["flag_id", side, *QUEUE_KEYS[:-1]]].rename(columns={side: "council"})
        parts.append(part[part["council"] != CENTRAL])
    out = pd.concat(parts, ignore_index=True).drop_duplicates(["flag_id", "council"])
    return out.assign(status="new", closed=False)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _in_batches(session: Session, stmt, rows: list[dict]) -> None:  # noqa: ANN001
    for i in range(0, len(rows), _BATCH):
        session.execute(stmt, rows[i:i + _BATCH])


def _item_rows(frame: pd.DataFrame, sealed: list[bytes | None], now: datetime) -> pd.DataFrame:
    """review_items columns of published flags: the evidence sealed, the clear JSON dropped."""
    return frame.drop(columns=["evidence", "_payload", "_evidence"]).assign(evidence_sealed=sealed, updated_at=now)


def _retract(session: Session, raised: pd.Series, run_tag: str, now: datetime) -> int:
    """Mark open flags the run no longer raises (closed flags are finished; suppressed ones are not raised)."""
    open_ids = session.execute(select(ReviewItem.flag_id).where(ReviewItem.retracted_in.is_(None),
                                                                ReviewItem.status != "closed")).scalars().all()
    gone = sorted(set(open_ids) - set(raised))
    for i in range(0, len(gone), CHUNK):
        session.execute(update(ReviewItem).where(ReviewItem.flag_id.in_(gone[i:i + CHUNK]))
                        .values(retracted_in=run_tag, updated_at=now).execution_options(synchronize_session=False))
    return len(gone)


def publish_flags(db_url: str, flags: pd.DataFrame, actor: str = "pipeline") -> dict:
    """Upsert a run's flags by ``flag_id``; idempotent; never touches investigators' decisions.

    Returns counts ``{"new", "updated", "unchanged", "reopened", "retracted"}`` (reopened ⊆
    updated; ``rejected`` too when a row could not be stored). An unchanged night writes no
    flag row: ``updated`` 0, every ``updated_at`` as it was.
    """
    migrate(db_url)
    df = _validate_flags(flags)
    counts = {"new": 0, "updated": 0, "unchanged": 0, "reopened": 0, "retracted": 0}
    refused = _unpublishable(df)
    if refused.any():
        log.warning("publish: %d flag(s) hold a NUL character and are not published: %s", int(refused.sum()),
                    ", ".join(df.loc[refused, "flag_id"].astype(str).head(5)))
        counts["rejected"] = int(refused.sum())
        df = df.loc[~refused].reset_index(drop=True)
    if df.empty:
        return counts
    sealer = sealer_for(db_url)
    key_id = sealer.active_key_id()
    df["_payload"] = _payloads(df)
    df["content_hash"] = sealer.digests(df["_payload"], key_id)
    df["_evidence"] = evidence_payloads(df["flag_id"], df["evidence_hash"])  # compared as stored: keyed
    df["evidence_hash"] = sealer.digests(df["_evidence"], key_id)
    runs = sorted(df["run_id"].dropna().unique().tolist())
    now = datetime.now(timezone.utc)
    with writing(db_url) as session:
        old = _existing(session, df["flag_id"].tolist())
        is_new = ~df["flag_id"].isin(old["flag_id"])
        fresh = df[is_new]
        if len(fresh):
            sealed = sealer.seal_many("evidence", fresh["flag_id"].tolist(),
                                      [e.encode("utf-8") for e in fresh["evidence"]])
            _in_batches(session, insert(ReviewItem),
                        _records(_item_rows(fresh, sealed, now).assign(status="new", version=1)))
            _in_batches(session, insert(CouncilReview), _records(_queue_entries(fresh)))

        both = df[~is_new].merge(old, on="flag_id")
        # Compare each stored digest with tonight's under the key it was made with (after `keys rotate`,
        # an unchanged flag stays as it is rather than counting as changed).
        same = sealer.same_digests(both["_payload"].tolist(), both["content_hash_old"].tolist(), key_id,
                                   both["content_hash"].tolist())
        changed = ~same | both["retracted_in_old"].notna().to_numpy()
        upd = both.loc[changed]
        reopened: list[str] = []
        moved = ~sealer.same_digests(upd["_evidence"].tolist(), upd["evidence_hash_old"].tolist(), key_id,
                                     upd["evidence_hash"].tolist())
        evidence_moved = upd.loc[moved & (upd["status_old"] == "closed").to_numpy(), "flag_id"].tolist()
        if evidence_moved:
            reopened = _suppressed_ids(session, evidence_moved)["flag_id"].tolist()
        if len(upd):
            sealed = sealer.seal_many("evidence", upd["flag_id"].tolist(), [e.encode("utf-8") for e in upd["evidence"]])
            rows = _item_rows(upd[["flag_id", *REFRESHED, "content_hash", "_payload", "_evidence"]], sealed, now)
            _in_batches(session, update(ReviewItem), _records(rows.assign(retracted_in=None)))
            refreshed = QUEUE_KEYS[:-2]  # first_seen never changes; status only by review
            keys = _records(upd[["flag_id", *refreshed]].rename(columns=lambda c: f"b_{c}"))
            stmt = (update(CouncilReview).where(CouncilReview.flag_id == bindparam("b_flag_id"))
                    .values({c: bindparam(f"b_{c}") for c in refreshed}))
            for i in range(0, len(keys), _BATCH):
                session.connection().execute(stmt, keys[i:i + _BATCH])
        if reopened:
            for i in range(0, len(reopened), CHUNK):
                chunk = reopened[i:i + CHUNK]
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
        retracted = _retract(session, df["flag_id"], runs[-1] if runs else "", now)
        counts.update(new=int(is_new.sum()), updated=int(changed.sum()),
                      unchanged=int(len(both) - changed.sum()), reopened=len(reopened), retracted=retracted)
        wrote = bool(counts["new"] or counts["updated"] or counts["retracted"])
        if wrote:
            audit.append(session, actor, "publish", f"runs:{','.join(runs)[:180]}", counts)
    if wrote:
        after_bulk_write(db_url)
    # The signed tip, outside the database: a later truncation or rewrite of the trail shows.
    audit.checkpoint(db_url, f"publish {','.join(runs)[:150]}")
    return counts


def suppressed_flags(db_url: str, raised: pd.DataFrame) -> pd.DataFrame:
    """Of the flags a run raised (``flag_id``, ``evidence_hash`` as the pipeline makes them), those
    every involved council closed as ``no_issue`` and that come with the same evidence: the
    pipeline does not raise them again. A flag whose evidence changed is raised (and reopened).
    """
    migrate(db_url)
    raised = raised[["flag_id", "evidence_hash"]].astype(str)
    with reading(db_url) as session:
        closed = _suppressed_ids(session)
    both = raised.reset_index(drop=True).merge(closed.rename(columns={"evidence_hash": "stored"}), on="flag_id")
    if both.empty:
        return raised.iloc[:0].reset_index(drop=True)
    sealer = sealer_for(db_url)
    same = sealer.same_digests(evidence_payloads(both["flag_id"], both["evidence_hash"]), both["stored"].tolist(),
                               sealer.active_key_id())
    return both.loc[same, ["flag_id", "evidence_hash"]].reset_index(drop=True)


def as_utc(value: datetime | str | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands naive ones back)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def purge_closed_flags(db_url: str, closed_before: datetime, *, dry_run: bool = False,
                       actor: str = "retention") -> tuple[list[str], str]:
    """Delete review items every council closed before ``closed_before``, with their decisions.

    Returns the purged flag ids (those that would go, in a dry run) and a note when there is
    no store yet. One audit entry, counts only.
    """
    url = normalise_url(db_url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return [], "no review store yet"
    if not inspect(engine_for(url)).has_table(ReviewItem.__tablename__):
        return [], "review store has no tables yet"
    closed_at = (select(ReviewItem.flag_id, func.max(CouncilReview.decided_at))
                 .join(CouncilReview, CouncilReview.flag_id == ReviewItem.flag_id)
                 .where(ReviewItem.status == "closed").group_by(ReviewItem.flag_id))
    with reading(db_url) as session:
        rows = session.execute(closed_at).all()
    expired = sorted(fid for fid, at in rows if (t := as_utc(at)) is not None and t < closed_before)
    if expired and not dry_run:
        with writing(db_url) as session:
            for start in range(0, len(expired), 500):
                chunk = expired[start:start + 500]
                session.execute(delete(CouncilReview).where(CouncilReview.flag_id.in_(chunk)))
                session.execute(delete(ReviewItem).where(ReviewItem.flag_id.in_(chunk)))
            audit.append(session, actor, "retention_purge", "review_items",
                         {"closed_before": closed_before.isoformat(timespec="seconds"), "count": len(expired)})
    return expired, ""
