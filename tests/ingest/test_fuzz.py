"""Property tests over the whole ingest: arbitrary cells never crash it, nothing is lost,
and every accepted row meets the documented standard forms."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.extract import ingest_extract
from ingest.feed import FeedDefinition
from ingest.read import ExtractError
from ingest.validate import NINO_PATTERN, POSTCODE_PATTERN, has_control_characters

FEED = FeedDefinition(
    council="E09000007", dataset="payroll", date_format="%d/%m/%Y",
    columns={"record_id": "Ref", "forenames": "First", "surname": "Last", "dob": "DOB", "nino": "NINO",
             "postcode": "PC", "period_start": "Start", "amount": "Pay", "phone": "Tel"},
    mandatory=["record_id", "surname", "dob", "nino", "period_start"],
)
HEADER = ["Ref", "First", "Last", "DOB", "NINO", "PC", "Start", "Pay", "Tel"]

cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "01/02/1980", "31/02/1980", "AB123456C", "ab 12 34 56 c", "TN123456A", "sw1a1aa",
                     "=1+1", "+SUM(A1)", "-12.50", "Zoë O'Brien", "07700 900123", "R1", "R1",
                     "R\x002", "Sm\x1bith", "R\u202e3", "Jo\u200bnes", "\x85"]),
)
rows = st.lists(st.lists(cell, min_size=len(HEADER), max_size=len(HEADER)), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows)
def test_any_cells_reconcile_and_accepted_rows_are_standard(tmp_path: Path, data) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)  # \r\n line ends, so a cell holding \r or \n is quoted
    writer.writerow(HEADER)
    writer.writerows(data)
    path = tmp_path / "fuzz.csv"
    path.write_bytes(buf.getvalue().encode("utf-8"))
    blank = sum(all(c == "" for c in row) for row in data)
    if blank == len(data):
        with pytest.raises(ExtractError, match="header only: no data rows"):
            ingest_extract(FEED, path)
        return
    result = ingest_extract(FEED, path)
    assert result.rows_in == len(result.accepted) + len(result.quarantined)
    assert (result.rows_in, result.blank_rows) == (len(data) - blank, blank)
    acc = result.accepted
    assert acc["record_id"].is_unique and acc["record_id"].notna().all()
    assert acc["nino"].str.fullmatch(NINO_PATTERN).all()
    assert acc["postcode"].dropna().str.fullmatch(POSTCODE_PATTERN).all()
    assert acc["surname"].str.fullmatch(r"[A-Z]+(?: [A-Z]+)*").all()
    assert acc["dob"].notna().all() and acc["period_start"].notna().all()
    assert (acc["dob"] <= pd.Timestamp.today()).all()
    assert result.quarantined["reasons"].str.len().gt(0).all()
    for column in ("record_id", "forenames", "surname", "nino", "postcode", "phone"):  # control chars quarantined
        assert not has_control_characters(acc[column].astype("string[pyarrow]")).any(), column
    again = ingest_extract(FEED, path)
    pd.testing.assert_frame_equal(result.accepted, again.accepted)
    pd.testing.assert_frame_equal(result.quarantined, again.quarantined)
