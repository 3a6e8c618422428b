"""Review store on SQLite and PostgreSQL: publish, decisions, locking, suppression, audit chain."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest
from sqlalchemy import inspect, select, text, update

from councilmatch.councils import CENTRAL
from review import audit, store
from review import db as review_db
from review.db import migrate, reading, writing
from review.models import AuditEntry, CouncilReview, ReviewItem

OPTIONAL = ("match_title", "match_reason")


def _decide(db_url, flag_id, council, outcome="no_issue", close=True, actor="inv", amount=None):  # noqa: ANN001, ANN202
    with reading(db_url) as s:
        version = s.get(ReviewItem, flag_id).version
    with writing(db_url) as s:
        return store.record_decision(s, flag_id=flag_id, council=council, actor=actor, expected_version=version,
                                     outcome=outcome, amount=amount, note="checked", close=close)


def _pick(flags: pd.DataFrame, two_councils: bool) -> pd.Series:
    cross = (flags["left_council"] != flags["right_council"]) & (flags["right_council"] != CENTRAL)
    return flags[cross if two_councils else (flags["right_council"] == CENTRAL)].iloc[0]


def test_migrate_is_idempotent_and_creates_tables(db_url):
    migrate(db_url)
    review_db._migrated.clear()
    migrate(db_url)  # second run at head: no error, nothing changes
    with reading(db_url) as s:
        assert s.execute(text("select version_num from alembic_version")).scalar_one() == "0005"
        assert s.execute(select(ReviewItem)).first() is None


def test_migration_0002_backfills_queue_entries(db_url, flags):
    """A store created at revision 0001 (flags, no queue entries) upgrades with every council's entry."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(review_db.MIGRATIONS))
    row = flags[(flags.left_council != flags.right_council) & (flags.right_council != CENTRAL)].iloc[0]
    with review_db.engine_for(db_url).connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        values = {c: row[c] for c in store.REFRESHED if c in row and c not in OPTIONAL} | {
            "flag_id": row.flag_id, "first_seen": row.first_seen, "status": "new", "version": 1,
            "match_probability": float(row.match_probability), "match_weight": float(row.match_weight),
            "priority": int(row.priority)}
        cols = ", ".join(values)
        conn.execute(text(f"insert into review_items ({cols}) values ({', '.join(':' + c for c in values)})"), values)
        conn.commit()
    migrate(db_url)
    with reading(db_url) as s:
        entries = s.execute(select(CouncilReview).where(CouncilReview.flag_id == row.flag_id)).scalars().all()
        assert sorted(e.council for e in entries) == sorted([row.left_council, row.right_council])
        assert {(e.priority, e.status, e.match_type) for e in entries} == {(int(row.priority), "new", row.match_type)}
        items, total = store.queue(s, row.left_council, store.QueueFilter())
        assert total == 1 and items[0].flag_id == row.flag_id
        # 0004 sealed the clear evidence and dropped the clear column
        got = store.evidence_of(items[0], store.sealer_for(db_url))
        assert got and got == [(k, v["level"], v["weight"]) for k, v in json.loads(row.evidence).items()]
        assert "evidence" not in {c["name"] for c in inspect(s.get_bind()).get_columns("review_items")}
        assert row.evidence.encode() not in bytes(items[0].evidence_sealed)


def _stamps(db_url) -> dict:  # noqa: ANN001
    with reading(db_url) as s:
        return dict(s.execute(select(ReviewItem.flag_id, ReviewItem.updated_at)).all())


def test_publish_counts_and_is_idempotent(db_url, flags):
    zero = {"new": 0, "updated": 0, "unchanged": 0, "reopened": 0, "retracted": 0}
    assert store.publish_flags(db_url, flags) == zero | {"new": 90}
    before = _stamps(db_url)
    assert store.publish_flags(db_url, flags) == zero | {"unchanged": 90}
    # The next night raises the same flags: only content changes are written, not the new run id or date.
    nxt = flags.copy()
    nxt["run_id"], nxt["last_seen"] = "2026-11-21", "2026-11-21"
    assert store.publish_flags(db_url, nxt) == zero | {"unchanged": 90}
    assert _stamps(db_url) == before  # no row rewritten
    nxt.loc[:4, "match_probability"] = 0.5
    assert store.publish_flags(db_url, nxt) == zero | {"updated": 5, "unchanged": 85}
    after = _stamps(db_url)
    assert {f for f in after if after[f] != before[f]} == set(flags["flag_id"][:5])
    with reading(db_url) as s:
        item = s.get(ReviewItem, flags["flag_id"][0])
        assert (item.run_id, item.last_seen, item.first_seen) == ("2026-11-21", "2026-11-21", "2026-11-20")
        assert item.match_probability == 0.5
        untouched = s.get(ReviewItem, flags["flag_id"][10])
        assert (untouched.run_id, untouched.last_seen) == ("2026-11-20", "2026-11-20")
        assert s.execute(select(text("count(*)")).select_from(ReviewItem)).scalar_one() == 90
        assert s.execute(select(text("count(*)")).select_from(CouncilReview)
                         .where(CouncilReview.match_probability == 0.5)).scalar_one() >= 5  # queue keys follow


def test_publish_retracts_flags_no_longer_raised_and_brings_them_back(db_url, flags):
    zero = {"new": 0, "updated": 0, "unchanged": 0, "reopened": 0, "retracted": 0}
    store.publish_flags(db_url, flags)
    closed = _pick(flags, False)
    _decide(db_url, closed.flag_id, closed.left_council, outcome="no_issue")  # closed: finished, never retracted
    rest = flags[flags.flag_id != closed.flag_id]
    tonight = rest.iloc[:60].assign(run_id="2026-11-21", last_seen="2026-11-21")
    assert store.publish_flags(db_url, tonight) == zero | {"unchanged": 60, "retracted": 29}
    assert store.publish_flags(db_url, tonight) == zero | {"unchanged": 60}  # counted once
    with reading(db_url) as s:
        gone = s.get(ReviewItem, rest["flag_id"].iloc[70])
        assert gone.retracted_in == "2026-11-21" and gone.status == "new"  # kept for the investigators
        assert s.get(ReviewItem, closed.flag_id).retracted_in is None
    back = rest.iloc[:70].assign(run_id="2026-11-22", last_seen="2026-11-22")
    assert store.publish_flags(db_url, back) == zero | {"updated": 10, "unchanged": 60}  # 19 still out: counted before
    with reading(db_url) as s:
        again = s.get(ReviewItem, rest["flag_id"].iloc[65])
        assert again.retracted_in is None and again.run_id == "2026-11-22"


def test_publish_never_overwrites_decisions(db_url, flags):
    store.publish_flags(db_url, flags)
    row = _pick(flags, two_councils=True)
    _decide(db_url, row.flag_id, row.left_council, outcome="fraud", amount=2500.0)
    nxt = flags.copy()
    nxt["run_id"], nxt["last_seen"] = "2026-11-21", "2026-11-21"
    nxt["evidence_hash"] = "changed"  # even changed evidence must not touch a fraud decision
    store.publish_flags(db_url, nxt)
    with reading(db_url) as s:
        item = s.get(ReviewItem, row.flag_id)
        assert item.status == "in_review"  # the other council has not decided yet
        review = store.decisions_of(item, store.sealer_for(db_url), row.left_council)[row.left_council]
        assert (review.outcome, review.amount, review.closed, review.note) == ("fraud", 2500.0, True, "checked")


def test_publish_rejects_bad_frames_naming_row_and_field(db_url, flags):
    with pytest.raises(ValueError, match="lacks columns.*evidence_hash"):
        store.publish_flags(db_url, flags.drop(columns=["evidence_hash"]))
    bad = flags.copy()
    bad.loc[3, "match_probability"] = 1.5
    with pytest.raises(ValueError, match="row 3: field match_probability"):
        store.publish_flags(db_url, bad)
    dup = pd.concat([flags, flags.iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match="row 90: field flag_id"):
        store.publish_flags(db_url, dup)


def test_suppressed_needs_every_involved_council_and_reopens_on_new_evidence(db_url, flags):
    store.publish_flags(db_url, flags)
    cross, deceased = _pick(flags, True), _pick(flags, False)
    _decide(db_url, cross.flag_id, cross.left_council)
    raised = flags[["flag_id", "evidence_hash"]]
    assert store.suppressed_flags(db_url, raised).empty  # one of two councils closed as no issue: not yet
    _decide(db_url, cross.flag_id, cross.right_council)
    _decide(db_url, deceased.flag_id, deceased.left_council)  # central never reviews
    got = store.suppressed_flags(db_url, raised).set_index("flag_id")["evidence_hash"].to_dict()
    assert got == {cross.flag_id: cross.evidence_hash, deceased.flag_id: deceased.evidence_hash}
    other = raised.assign(evidence_hash=raised["evidence_hash"].where(raised["flag_id"] != cross.flag_id, "other"))
    assert set(store.suppressed_flags(db_url, other)["flag_id"]) == {deceased.flag_id}  # new evidence: raised

    same = flags.copy()
    same["run_id"], same["last_seen"] = "2026-11-21", "2026-11-21"
    assert store.publish_flags(db_url, same)["reopened"] == 0  # same evidence: stays closed
    moved = same.copy()
    moved.loc[moved["flag_id"] == cross.flag_id, "evidence_hash"] = "new-evidence"
    counts = store.publish_flags(db_url, moved)
    assert counts["reopened"] == 1
    assert store.publish_flags(db_url, moved)["reopened"] == 0  # idempotent
    with reading(db_url) as s:
        assert s.get(ReviewItem, cross.flag_id).status == "new"
        assert s.get(ReviewItem, deceased.flag_id).status == "closed"
        reopen = s.execute(select(AuditEntry).where(AuditEntry.action == "reopen")).scalars().all()
        assert [e.object for e in reopen] == [f"flag:{cross.flag_id}"]
    assert set(store.suppressed_flags(db_url, moved[["flag_id", "evidence_hash"]])["flag_id"]) == {deceased.flag_id}


def test_fraud_outcome_is_not_suppressed(db_url, flags):
    store.publish_flags(db_url, flags)
    row = _pick(flags, False)
    _decide(db_url, row.flag_id, row.left_council, outcome="fraud")
    assert store.suppressed_flags(db_url, flags[["flag_id", "evidence_hash"]]).empty


def test_optimistic_locking_refuses_stale_save(db_url, flags):
    store.publish_flags(db_url, flags)
    row = _pick(flags, True)
    with reading(db_url) as s:
        seen = s.get(ReviewItem, row.flag_id).version
    with writing(db_url) as s:
        store.record_decision(s, flag_id=row.flag_id, council=row.left_council, actor="a", expected_version=seen,
                              outcome="fraud", amount=None, note=None, close=False)
    with pytest.raises(store.ConflictError, match="changed by someone else"):
        with writing(db_url) as s:
            store.record_decision(s, flag_id=row.flag_id, council=row.left_council, actor="b",
                                  expected_version=seen, outcome="no_issue", amount=None, note=None, close=True)
    with reading(db_url) as s:
        review = s.execute(select(CouncilReview).where(CouncilReview.flag_id == row.flag_id,
                                                       CouncilReview.council == row.left_council)).scalar_one()
        assert (review.outcome, review.decided_by) == ("fraud", "a")


def test_concurrent_saves_one_wins_one_conflicts(db_url, flags):
    store.publish_flags(db_url, flags)
    row = _pick(flags, True)
    with reading(db_url) as s:
        seen = s.get(ReviewItem, row.flag_id).version
    results: list[str] = []
    barrier = threading.Barrier(4)

    def save(actor: str) -> None:
        barrier.wait()
        try:
            with writing(db_url) as s:
                store.record_decision(s, flag_id=row.flag_id, council=row.left_council, actor=actor,
                                      expected_version=seen, outcome="error", amount=None, note=actor, close=True)
            results.append("saved")
        except store.ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=save, args=(f"user{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 3 + ["saved"]
    with reading(db_url) as s:
        assert audit.verify(s).ok  # concurrent writers did not fork the chain


def test_decision_checks_council_and_values(db_url, flags):
    store.publish_flags(db_url, flags)
    row = _pick(flags, True)
    outsider = next(c for c in ("E09000007", "E09000012", "E09000019") if c not in (row.left_council, row.right_council))
    with pytest.raises(store.NotFound):
        _decide(db_url, row.flag_id, outsider)
    with pytest.raises(store.ReviewError, match="Outcome must be"):
        _decide(db_url, row.flag_id, row.left_council, outcome="maybe")
    with pytest.raises(store.ReviewError, match="Choose an outcome"):
        _decide(db_url, row.flag_id, row.left_council, outcome=None, close=True)


def test_audit_chain_detects_tampering(db_url, flags):
    store.publish_flags(db_url, flags)
    row = _pick(flags, True)
    for outcome in ("fraud", "error", "no_issue"):
        _decide(db_url, row.flag_id, row.left_council, outcome=outcome)
    with reading(db_url) as s:
        result = audit.verify(s)
        assert result.ok and result.entries == 4
    with writing(db_url) as s:  # someone edits what was decided
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(detail='{"outcome": "no_issue"}'))
    with reading(db_url) as s:
        result = audit.verify(s)
        assert not result.ok and "entry 2: contents altered" in result.problems[0]


def test_audit_chain_detects_deleted_entries(db_url, flags):
    store.publish_flags(db_url, flags)
    row = _pick(flags, True)
    for outcome in ("fraud", "error"):
        _decide(db_url, row.flag_id, row.left_council, outcome=outcome)
    with writing(db_url) as s:
        s.execute(text("delete from audit_log where seq = 3"))  # the last entry
    with reading(db_url) as s:
        result = audit.verify(s)
        assert not result.ok and "chain tip mismatch" in result.problems[-1]
    with writing(db_url) as s:
        s.execute(text("delete from audit_log where seq = 1"))
    with reading(db_url) as s:
        assert any("entry 2" in p for p in audit.verify(s).problems)


def test_one_flag_with_a_nul_cannot_lose_the_nights_publish(db_url, flags):
    """Attack (issue 10, item 8): a NUL in one record id made PostgreSQL refuse the whole publish."""
    bad = flags.copy()
    bad.loc[3, "left_record_id"] = "T\x0012"
    bad.loc[5, "evidence"] = '{"surname": {"level": "exact\\u0000", "weight": 1.0}}'
    counts = store.publish_flags(db_url, bad)
    assert counts == {"new": 88, "updated": 0, "unchanged": 0, "reopened": 0, "retracted": 0, "rejected": 2}
    with reading(db_url) as s:
        assert s.execute(select(text("count(*)")).select_from(ReviewItem)).scalar_one() == 88
        assert s.get(ReviewItem, bad["flag_id"][3]) is None
