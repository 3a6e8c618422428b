"""A re-sent extract: only changed rows are pseudonymised, and the result equals doing all of them."""

from __future__ import annotations

import pandas as pd
import pytest

from anonymise import reuse
from anonymise.keys import load_keyring, rotate_keys
from anonymise.minimise import minimise
from anonymise.pseudonymised import read_pseudonymised, write_pseudonymised
from anonymise.tokens import pseudonymise
from matching.minimisation import store_policy

FEED = "E09000007/payroll"


def _night(home, keyring, canonical: pd.DataFrame, extract_id: str, last: tuple[str, str] | None):
    policy = store_policy(home)
    previous = reuse.load_previous(home, FEED, *(last or (None, None)), keyring, policy)
    frame, digests, reused = reuse.pseudonymise_reusing(canonical, keyring, extract_id, home, previous, policy)
    path = write_pseudonymised(home, frame, policy)
    reuse.save_digests(home, FEED, extract_id, keyring, digests, policy)
    return path, reused, previous


def _resent(first: pd.DataFrame, people, helpers) -> pd.DataFrame:
    """The same extract again: two surnames changed, one row gone, two people new, rows reordered."""
    second = first.copy()
    second.loc[3, "surname"] = "NEWNAME"
    second.loc[17, "address_lines"] = "1 OTHER STREET LONDON"
    second = second.drop(index=9)
    new = helpers.canonical_frame(people[38:40], prefix="N")
    return pd.concat([second, new]).sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_a_resent_extract_reuses_unchanged_rows_and_equals_a_full_pseudonymisation(home, keyring, people, helpers):
    first = helpers.canonical_frame(people[:38])
    path1, reused1, _ = _night(home, keyring, first, "payroll_1-aaa", None)
    assert reused1 == 0
    second = _resent(first, people, helpers)
    path2, reused2, previous = _night(home, keyring, second, "payroll_2-bbb", ("payroll_1-aaa", str(path1)))
    assert previous is not None and reused2 == len(second) - 4  # 2 changed + 2 new pseudonymised afresh
    policy = store_policy(home)
    full = minimise(pseudonymise(second, keyring, "payroll_2-bbb"), home, policy)
    pd.testing.assert_frame_equal(read_pseudonymised(path2), read_pseudonymised(write_pseudonymised(home, full, policy)))


def test_no_reuse_across_a_key_rotation_another_encoding_or_another_extract(home, keyring, people, helpers, monkeypatch):
    first = helpers.canonical_frame(people[:20])
    path1, _, _ = _night(home, keyring, first, "payroll_1-aaa", None)
    policy = store_policy(home)
    assert reuse.load_previous(home, FEED, "payroll_1-aaa", str(path1), keyring, policy) is not None
    # the digests belong to another extract than the one the manifests call the last
    assert reuse.load_previous(home, FEED, "payroll_0-zzz", str(path1), keyring, policy) is None
    # a changed minimisation policy (a new match type reads another field)
    assert reuse.load_previous(home, FEED, "payroll_1-aaa", str(path1), keyring, {"payroll": {"amount": "band"}}) is None
    # tokens of another encoding (an upgrade changed a filter's settings or added a column)
    with monkeypatch.context() as patched:
        patched.setattr(reuse, "ENCODING", "an-older-one")
        assert reuse.load_previous(home, FEED, "payroll_1-aaa", str(path1), keyring, policy) is None
    rotate_keys(home)
    rotated = load_keyring(home)
    assert reuse.load_previous(home, FEED, "payroll_1-aaa", str(path1), rotated, policy) is None
    frame, _, reused = reuse.pseudonymise_reusing(first, rotated, "payroll_2-bbb", home, None, policy)
    assert reused == 0 and (frame["key_id"] == rotated.key_id).all()


def test_row_digests_are_keyed_and_see_every_field(keyring, people, helpers):
    frame = helpers.canonical_frame(people[:5])
    base = reuse.row_digests(frame, keyring)
    for column, value in (("surname", "X"), ("dob", pd.Timestamp("1990-01-01")), ("amount", 5.0),
                          ("record_id", "Z9"), ("period_end", pd.Timestamp("2025-01-31"))):
        changed = frame.copy()
        changed.loc[2, column] = value
        digests = reuse.row_digests(changed, keyring)
        assert (digests == base).sum() == 4 and digests[2] != base[2], column


def test_row_digests_never_change_value(keyring, people, helpers):
    """Last night's digests are compared with tonight's: the fast column hashes must give exactly
    what pandas gives the frame with every non-numeric column cast to objects (the definition),
    with missing text, missing dates, booleans, floats, an all-missing column and no rows."""
    import numpy as np

    frame = helpers.canonical_frame(people[:60])
    text = [c for c in frame.columns if frame[c].dtype == object and c != "record_id"]  # as ingest hands them
    frame = frame.astype({c: "string[pyarrow]" for c in text})
    frame.loc[3, "surname"] = pd.NA
    frame.loc[4, "dob"] = pd.NaT
    frame["previous_surname"] = pd.Series(pd.NA, index=frame.index, dtype=frame["surname"].dtype)
    assert {"string", "datetime64[ns]", "object"} <= {str(t) for t in frame.dtypes}
    key = keyring.subkey(reuse.ROW_DIGEST_PURPOSE)[:8].hex()
    for rows in (frame, frame.iloc[:1], frame.iloc[:0]):
        ordered = rows[sorted(rows.columns)].reset_index(drop=True)
        as_objects = ordered.astype({c: object for c in ordered.columns
                                     if not pd.api.types.is_numeric_dtype(ordered[c])})
        expected = pd.util.hash_pandas_object(as_objects, index=False, hash_key=key).to_numpy(np.uint64)
        assert (reuse.row_digests(rows, keyring) == expected).all() and len(expected) == len(rows)


def test_the_feed_step_reports_reused_rows(home, people, helpers):
    from orchestrate import pipeline

    helpers.write_payroll(home, helpers.CAMDEN, people[:30], name="payroll_20261125.csv")
    first = pipeline.ingest_feed(home, FEED, "20261125T020000")
    assert first["status"] == "ingested" and first["rows_reused"] == 0
    changed = list(people[:30])
    changed[4] = people[35]
    helpers.write_payroll(home, helpers.CAMDEN, changed, name="payroll_20261126.csv")
    second = pipeline.ingest_feed(home, FEED, "20261126T020000")
    assert second["status"] == "ingested" and second["rows_reused"] == 29, second


def test_rows_skipped_as_unchanged_go_from_store_to_store_in_arrow(home, people, helpers, monkeypatch):
    """A re-sent extract is nearly all rows the last one stored: they are taken from its table as
    Arrow rows (no pandas row, no Python bytes object per encoding), filed under the new extract
    (tests/e2e/test_resend_skip.py compares the stored files with a from-scratch ingest)."""
    from pathlib import Path

    from anonymise import pseudonymised
    from orchestrate import pipeline

    helpers.write_payroll(home, helpers.CAMDEN, people[:30], name="payroll_20261125.csv")
    pipeline.ingest_feed(home, FEED, "20261125T020000")
    changed = list(people[:30])
    changed[4] = people[35]
    helpers.write_payroll(home, helpers.CAMDEN, changed, name="payroll_20261126.csv")
    converted = []
    real = pseudonymised.from_table
    with monkeypatch.context() as m:
        m.setattr(pseudonymised, "from_table", lambda t: converted.append(t.num_rows) or real(t))
        m.setattr(reuse, "from_table", pseudonymised.from_table)
        second = pipeline.ingest_feed(home, FEED, "20261126T020000")
    assert second["rows_skipped"] == 29 and sum(converted) <= 1, converted  # the changed row at most
    stored = read_pseudonymised(Path(second["path"]), home)
    assert stored["extract_id"].nunique() == 1 and stored["extract_id"].iloc[0] == second["extract_id"]
    assert stored["record_id"].is_unique and len(stored) == 30


def test_a_placeholder_that_appears_overnight_is_missing_in_rows_skipped_as_unchanged(home, people, helpers):
    """The placeholder rules count values over the whole column: when one changed row makes a NINO
    frequent enough to be a dummy, the rows accepted unchanged last night must lose it too (as a
    from-scratch ingest would), so the feed is validated and pseudonymised again in full."""
    from dataclasses import replace
    from pathlib import Path

    from anonymise.manifest import read_manifests
    from orchestrate import pipeline

    rows = [replace(p, nino="AB123456C") if i < 9 else p for i, p in enumerate(people[:40])]
    helpers.write_payroll(home, helpers.CAMDEN, rows, name="payroll_20261125.csv")  # 9 alike: not yet a dummy
    first = pipeline.ingest_feed(home, FEED, "20261125T020000")
    stored = read_pseudonymised(Path(first["path"]), home)
    assert (stored["t_nino"] == 0).sum() == 0
    rows[30] = replace(rows[30], nino="AB123456C")  # the 10th: ten times more frequent than any other
    helpers.write_payroll(home, helpers.CAMDEN, rows, name="payroll_20261126.csv")
    second = pipeline.ingest_feed(home, FEED, "20261126T020000")
    assert second["rows_skipped"] == 0, second
    stored = read_pseudonymised(Path(second["path"]), home)
    assert (stored["t_nino"] == 0).sum() == 10
    # a third night with nothing changed skips every row again, the dummy still missing
    helpers.write_payroll(home, helpers.CAMDEN, rows, name="payroll_20261127.csv")
    third = pipeline.ingest_feed(home, FEED, "20261127T020000")
    assert third["rows_skipped"] == 40 and (read_pseudonymised(Path(third["path"]), home)["t_nino"] == 0).sum() == 10
    assert len(read_manifests(home, FEED)) == 3


def test_a_skipped_row_near_a_date_boundary_is_validated_again(home, people, helpers, monkeypatch):
    """Date checks depend on the day (a date of birth "in the future" yesterday is valid today):
    rows whose dates sit near the boundary are not skipped when the day changed."""
    import datetime as dt
    from dataclasses import replace

    import ingest.extract as extract
    from orchestrate import pipeline

    today = dt.date.today()
    rows = list(people[:20])
    rows[2] = replace(rows[2], dob=pd.Timestamp(today))  # valid today, in the future yesterday
    helpers.write_payroll(home, helpers.CAMDEN, rows, name="payroll_20261125.csv")
    pipeline.ingest_feed(home, FEED, "20261125T020000")
    real = extract.ingest_extract

    def tomorrow(*args, **kwargs):
        return real(*args, **{**kwargs, "today": today + dt.timedelta(days=1)})

    monkeypatch.setattr("orchestrate.feed_pipeline.ingest_extract", tomorrow)
    helpers.write_payroll(home, helpers.CAMDEN, rows, name="payroll_20261126.csv")
    second = pipeline.ingest_feed(home, FEED, "20261126T020000")
    assert second["rows_skipped"] == 19, second
