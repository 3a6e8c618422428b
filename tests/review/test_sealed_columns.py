"""Issue 11 in the review store: notes, amounts and evidence are sealed; read raw, the store gives none back.

The thief here holds the database (the SQLite file with its WAL, or every PostgreSQL
table dumped with a plain driver, no app) but not the KEK. After a night's publish and a
decision with a note and an amount, none of them, nor any flag's evidence, is in what they
hold, in any encoding we could think of; the app, with the KEK, still shows them.
"""

from __future__ import annotations

import json
import secrets
import shutil
import struct

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from anonymise.errors import AnonymiseError, TamperedError
from councilmatch.councils import CENTRAL
from review import store
from review.app import create_app
from review.db import engine_for, normalise_url, reading, writing
from review.models import AuditEntry, CouncilReview, ReviewItem

NOTE = "Second tenancy confirmed by home visit XQZV-7731; landlord Mr Okonkwo"
AMOUNT = 4271.37


def _forms(value: str | float) -> list[bytes]:
    """The ways a value could sit in a database file or dump."""
    if isinstance(value, float):
        texts = [repr(value), f"{value:.2f}", f"{value:,.2f}"]  # (4 digits alone occur by chance in hex)
        out = [struct.pack("<d", value), struct.pack(">d", value)]
    else:
        texts = [value, value[:24], value[-24:]]
        out = []
    for t in texts:
        b = t.encode("utf-8")
        out += [b, b.hex().encode(), t.encode("utf-16-le")]
    return out


def _night_and_decision(db_url: str, flags) -> tuple:  # noqa: ANN001
    store.publish_flags(db_url, flags)
    row = flags[(flags.left_council != flags.right_council) & (flags.right_council != CENTRAL)].iloc[0]
    with reading(db_url) as s:
        version = s.get(ReviewItem, row.flag_id).version
    with writing(db_url) as s:
        store.record_decision(s, flag_id=row.flag_id, council=row.left_council, actor="inv", expected_version=version,
                              outcome="fraud", amount=AMOUNT, note=NOTE, close=True)
    return row


def _raw(db_url: str) -> bytes:
    """What a thief holds: the SQLite file and its WAL, or every PostgreSQL table dumped without the app."""
    url = normalise_url(db_url)
    engine_for(url).dispose()
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        return b"".join(open(p, "rb").read() for p in (path, path + "-wal") if __import__("os").path.exists(p))
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    out = []
    with psycopg.connect(plain) as conn:
        conn.execute("CHECKPOINT")
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'public'")]
        for table in tables:
            for (line,) in conn.execute(f'select row_to_json(t)::text from "{table}" t'):
                out.append(line.encode("utf-8"))
    return b"\n".join(out)


def test_a_thief_with_the_database_reads_no_note_amount_or_evidence(db_url, flags):
    row = _night_and_decision(db_url, flags)
    raw = _raw(db_url)
    assert len(raw) > 10_000 and row.flag_id.encode() in raw  # the dump is real: it holds the flags
    for value in (NOTE, AMOUNT):
        hits = [form for form in _forms(value) if form in raw]
        assert hits == [], f"{value!r} readable in the store as {hits}"
    # no flag's evidence: its JSON, nor a comparison level only evidence carries
    for evidence in flags["evidence"].head(20):
        assert evidence.encode() not in raw and evidence.encode().hex().encode() not in raw
    assert b"jaro_winkler" not in raw and b"jaro_winkler".hex().encode() not in raw
    # ... while the app's own path opens them for the request that shows them
    with reading(db_url) as s:
        item = s.get(ReviewItem, row.flag_id)
        mine = store.decisions_of(item, store.sealer_for(db_url), row.left_council)[row.left_council]
        assert (mine.note, mine.amount) == (NOTE, AMOUNT)
        assert store.evidence_of(item, store.sealer_for(db_url))[0][1] in json.loads(row.evidence)[
            store.evidence_of(item, store.sealer_for(db_url))[0][0]]["level"]
        # the audit entry records the decision, not the figure
        detail = s.execute(select(AuditEntry.detail).where(AuditEntry.action == "decide")).scalar_one()
        assert "amount_sealed" in detail and str(AMOUNT) not in detail
    # the search can fail: the same note in a column that is not sealed is found
    with writing(db_url) as s:
        s.execute(update(ReviewItem).where(ReviewItem.flag_id == row.flag_id).values(match_reason=NOTE))
    assert NOTE.encode() in _raw(db_url)


def test_evidence_hashes_give_the_thief_neither_the_levels_nor_which_flags_are_alike(db_url, flags):
    """The pipeline's evidence hash is an unkeyed hash of a few levels: a dictionary of every level
    combination would name each flag's evidence. The store keeps a keyed digest bound to the flag."""
    from councilmatch.flag_ids import evidence_hash

    store.publish_flags(db_url, flags)
    levels = [{k: v["level"] for k, v in json.loads(e).items()} for e in flags["evidence"]]
    assert [evidence_hash(lv) for lv in levels] == flags["evidence_hash"].tolist()  # the recipe the attack relies on
    with reading(db_url) as s:
        stored = dict(s.execute(select(ReviewItem.flag_id, ReviewItem.evidence_hash)).all())
    raw = _raw(db_url)
    assert [h for h in flags["evidence_hash"] if h.encode() in raw] == []
    alike = flags[flags["evidence_hash"].duplicated(keep=False)]
    assert len(alike) >= 2  # flags that share their levels exist ...
    assert alike["flag_id"].map(stored).nunique() == len(alike)  # ... and their stored digests all differ
    # the pipeline's hash is still recognised: a flag closed as no issue stays closed
    row = flags[flags.right_council == CENTRAL].iloc[0]
    with reading(db_url) as s:
        version = s.get(ReviewItem, row.flag_id).version
    with writing(db_url) as s:
        store.record_decision(s, flag_id=row.flag_id, council=row.left_council, actor="inv",
                              expected_version=version, outcome="no_issue", amount=None, note=None, close=True)
    raised = flags[["flag_id", "evidence_hash"]]
    assert store.suppressed_flags(db_url, raised)["flag_id"].tolist() == [row.flag_id]
    # the check can fail: a stored digest equal to the unkeyed hash would be found in the dump
    with writing(db_url) as s:
        s.execute(update(ReviewItem).where(ReviewItem.flag_id == row.flag_id).values(evidence_hash=row.evidence_hash))
    assert row.evidence_hash.encode() in _raw(db_url)


def test_a_copied_store_without_the_kek_opens_nothing(sqlite_url, flags, tmp_path):
    row = _night_and_decision(sqlite_url, flags)
    engine_for(sqlite_url).dispose()
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    shutil.copy(tmp_path / "review.db", stolen / "review.db")
    shutil.copytree(tmp_path / "keys", stolen / "keys")  # even the wrapped data keys and the keyring...
    (stolen / "keys" / "dev-kek").unlink()              # ...but not the KEK
    url = f"sqlite:///{stolen / 'review.db'}"
    with reading(url) as s:
        review = s.execute(select(CouncilReview).where(CouncilReview.flag_id == row.flag_id,
                                                       CouncilReview.council == row.left_council)).scalar_one()
        with pytest.raises(AnonymiseError, match="key-encryption key"):
            store.decision_of(review, store.sealer_for(url))
    engine_for(url).dispose()


def test_a_sealed_value_moved_to_another_row_is_refused(db_url, flags):
    """An insider who can write the database swaps one council's note onto another flag: refused, not shown."""
    row = _night_and_decision(db_url, flags)
    other = flags[(flags.left_council == row.left_council) & (flags.flag_id != row.flag_id)].iloc[0]
    with writing(db_url) as s:
        blob = s.execute(select(CouncilReview.note_sealed).where(CouncilReview.flag_id == row.flag_id,
                                                                CouncilReview.council == row.left_council)).scalar_one()
        s.execute(update(CouncilReview).where(CouncilReview.flag_id == other.flag_id,
                                              CouncilReview.council == other.left_council).values(note_sealed=blob))
        evidence = s.get(ReviewItem, row.flag_id).evidence_sealed
        s.execute(update(ReviewItem).where(ReviewItem.flag_id == other.flag_id).values(evidence_sealed=evidence))
    sealer = store.sealer_for(db_url)
    with reading(db_url) as s:
        moved = s.get(ReviewItem, other.flag_id)
        with pytest.raises(TamperedError, match="moved between rows"):
            store.decisions_of(moved, sealer, other.left_council)
        with pytest.raises(TamperedError, match="moved between rows"):
            store.evidence_of(moved, sealer)
        assert s.execute(text("select count(*) from review_items")).scalar_one() == len(flags)


def test_the_flag_page_and_dashboard_still_show_note_and_amount(template_db, tmp_path, h, flags):
    url = h.copy_store(template_db, tmp_path)
    row = flags[(flags.left_council == h.CAMDEN) & (flags.right_council != h.CAMDEN)].iloc[0]
    app = create_app(db_url=url, secret_key=secrets.token_urlsafe(32), secure_cookies=False,
                     reidentifier=lambda *a, **k: {"surname": "X"})
    with TestClient(app) as c:
        h.sign_in(c, "cam_inv")
        token = h.csrf_of(c.get(f"/flags/{row.flag_id}").text)
        r = c.post(f"/flags/{row.flag_id}/decision", follow_redirects=False,
                   data={"csrf_token": token, "version": "1", "outcome": "fraud", "amount": f"{AMOUNT}",
                         "note": NOTE, "action": "save"})
        assert r.status_code == 303
        page = c.get(f"/flags/{row.flag_id}").text
        assert "Second tenancy confirmed by home visit XQZV-7731" in page and "£4,271.37" in page
        assert "£4,271.37" in c.get("/dashboard").text
        csv_text = c.get("/queue.csv").text
        assert "4271.37" in csv_text
    raw = _raw(url)
    assert not [f for f in (*_forms(NOTE), *_forms(AMOUNT)) if f in raw]


def test_migrations_0004_and_0005_seal_an_existing_stores_notes_amounts_and_evidence(db_url, flags):
    """A store at revision 0003 (clear columns) upgrades with every value sealed, the clear columns gone
    and the evidence hash keyed."""
    from alembic import command
    from alembic.config import Config

    from review import db as review_db

    cfg = Config()
    cfg.set_main_option("script_location", str(review_db.MIGRATIONS))
    row = flags[(flags.left_council != flags.right_council) & (flags.right_council != CENTRAL)].iloc[0]
    cols = [c for c in store.REFRESHED if c not in store.OPTIONAL_COLUMNS]
    values = {c: row[c] for c in cols} | {"flag_id": row.flag_id, "first_seen": row.first_seen, "status": "in_review",
                                          "version": 2, "match_probability": float(row.match_probability),
                                          "match_weight": float(row.match_weight), "priority": int(row.priority)}
    with engine_for(db_url).connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(text(f"insert into review_items ({', '.join(values)}) "
                          f"values ({', '.join(':' + c for c in values)})"), values)
        conn.execute(text("insert into council_reviews (flag_id, council, outcome, amount, note, closed, status) "
                          "values (:f, :c, 'fraud', :a, :n, true, 'in_review')"),
                     {"f": row.flag_id, "c": row.left_council, "a": AMOUNT, "n": NOTE})
        conn.commit()
    review_db._migrated.discard(normalise_url(db_url))
    review_db.migrate(db_url)
    with reading(db_url) as s:
        item = s.get(ReviewItem, row.flag_id)
        mine = store.decisions_of(item, store.sealer_for(db_url), row.left_council)[row.left_council]
        assert (mine.outcome, mine.amount, mine.note) == ("fraud", AMOUNT, NOTE)
        assert [e[0] for e in store.evidence_of(item, store.sealer_for(db_url))] == list(json.loads(row.evidence))
        # 0005: the evidence hash is kept as a keyed digest bound to the flag
        assert item.evidence_hash == store.sealer_for(db_url).evidence_digests([row.flag_id], [row.evidence_hash])[0]
    raw = _raw(db_url)
    assert not [f for f in (*_forms(NOTE), *_forms(AMOUNT)) if f in raw]
    assert row.evidence.encode() not in raw and row.evidence_hash.encode() not in raw


def test_after_keys_rotate_old_values_open_new_ones_use_the_new_key_and_nothing_counts_as_changed(sqlite_url, flags,
                                                                                                  tmp_path):
    from anonymise.crypto import read_header
    from anonymise.keys import rotate_keys
    from councilmatch.home import Home

    row = _night_and_decision(sqlite_url, flags)
    assert rotate_keys(Home(tmp_path)) == "k2"
    counts = store.publish_flags(sqlite_url, flags.assign(run_id="2026-11-21", last_seen="2026-11-21"))
    assert (counts["updated"], counts["unchanged"]) == (0, len(flags))  # digests compared under their own key
    sealer = store.sealer_for(sqlite_url)
    with reading(sqlite_url) as s:
        item = s.get(ReviewItem, row.flag_id)
        assert store.decisions_of(item, sealer, row.left_council)[row.left_council].note == NOTE  # sealed under k1
        version = item.version
    with writing(sqlite_url) as s:
        store.record_decision(s, flag_id=row.flag_id, council=row.left_council, actor="inv", expected_version=version,
                              outcome="fraud", amount=1.0, note="after rotation", close=True)
    with reading(sqlite_url) as s:
        blob = s.execute(select(CouncilReview.note_sealed).where(CouncilReview.flag_id == row.flag_id,
                                                                CouncilReview.council == row.left_council)).scalar_one()
    assert read_header(bytes(blob))["key_id"] == "k2"
    central = flags[flags.right_council == CENTRAL].iloc[0]  # closed as no issue before the rotation ...
    with reading(sqlite_url) as s:
        version = s.get(ReviewItem, central.flag_id).version
    with writing(sqlite_url) as s:
        store.record_decision(s, flag_id=central.flag_id, council=central.left_council, actor="inv",
                              expected_version=version, outcome="no_issue", amount=None, note=None, close=True)
    assert rotate_keys(Home(tmp_path)) == "k3"  # ... and its evidence digest, made under k1, still matches
    assert store.suppressed_flags(sqlite_url, flags[["flag_id", "evidence_hash"]])["flag_id"].tolist() == [
        central.flag_id]
