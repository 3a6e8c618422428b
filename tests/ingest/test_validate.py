"""Validators: NINO and postcode rules, dates, booleans, amounts, formulas, duplicates."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ingest import validate as val

TODAY = dt.date(2026, 11, 25)


@pytest.mark.parametrize(
    "nino, bad",
    [
        ("AB123456C", False), ("JG103759A", False), ("OA123456D", False),  # O allowed first
        ("AO123456A", True),  # O never second
        ("DA123456A", True), ("FA123456A", True), ("IA123456A", True), ("QA123456A", True),
        ("UA123456A", True), ("VA123456A", True), ("AD123456A", True), ("AV123456A", True),
        ("BG123456A", True), ("GB123456A", True), ("NK123456A", True), ("KN123456A", True),
        ("TN123456A", True), ("NT123456A", True), ("ZZ123456A", True),
        ("AB123456E", True), ("AB12345C", True), ("AB1234567C", True), ("AB123456", True),
    ],
)
def test_nino_rules(nino: str, bad: bool) -> None:
    assert bool(val.invalid_nino(pd.Series([nino])).iloc[0]) is bad


def test_missing_is_never_invalid() -> None:
    s = pd.Series([None, pd.NA], dtype="string")
    for fn in (val.invalid_nino, val.invalid_postcode, val.invalid_email, val.invalid_phone, val.invalid_uprn):
        assert not fn(s).any()


@pytest.mark.parametrize(
    "pc, bad",
    [("SW1A 1AA", False), ("M1 1AE", False), ("B33 8TH", False), ("CR2 6XH", False), ("DN55 1PT", False),
     ("W1A 0AX", False), ("EC1A 1BB", False), ("GIR 0AA", False),
     ("SW1A1AA", True), ("1W1 1AA", True), ("SW1A 1A", True), ("SW1A 11A", True), ("XX", True), ("2000", True)],
)
def test_postcode_format(pc: str, bad: bool) -> None:
    assert bool(val.invalid_postcode(pd.Series([pc])).iloc[0]) is bad


def test_dates_parse_with_feed_format_and_iso_fallback() -> None:
    parsed, bad = val.parse_dates(pd.Series(["01/02/1980", "1980-02-01", "31/02/1980", "yesterday", None]), "%d/%m/%Y")
    assert parsed.iloc[0] == pd.Timestamp("1980-02-01") == parsed.iloc[1]
    assert bad.tolist() == [False, False, True, True, False]
    assert str(parsed.dtype) == "datetime64[ns]"


def test_dob_plausibility_and_two_digit_years() -> None:
    dob, _ = val.parse_dates(pd.Series(["01/01/45", "01/01/05"]), "%d/%m/%y")
    dob = val.fix_two_digit_birth_years(dob, "%d/%m/%y", TODAY)
    assert dob.dt.year.tolist() == [1945, 2005]
    dob = pd.to_datetime(pd.Series(["2027-01-01", "1900-01-01", "1990-05-05", None]))
    assert val.dob_in_future(dob, TODAY).tolist() == [True, False, False, False]
    assert val.dob_too_old(dob, TODAY).tolist() == [False, True, False, False]


def test_period_order() -> None:
    start = pd.to_datetime(pd.Series(["2020-01-01", "2020-01-01", None, "2020-01-01"]))
    end = pd.to_datetime(pd.Series(["2019-12-31", "2020-01-01", "2019-01-01", None]))
    assert val.before(end, start).tolist() == [True, False, False, False]


def test_bool_and_amount() -> None:
    out, bad = val.parse_bool(pd.Series(["y", "No", "TRUE", "maybe", None]), ["Y", "TRUE"], ["N", "NO"])
    assert out.tolist()[:3] == [True, False, True] and out.isna().tolist() == [False, False, False, True, True]
    assert bad.tolist() == [False, False, False, True, False]
    amount, bad = val.parse_amount(pd.Series(["£1,234.50", "(12.00)", "-3", "twelve", None]))
    assert amount.tolist()[:3] == [1234.5, -12.0, -3.0]
    assert bad.tolist() == [False, False, False, True, False]


@pytest.mark.parametrize(
    "cell, formula",
    [("=1+1", True), ("=HYPERLINK(\"http://x\")", True), ("+SUM(A1:A2)", True), ("-2+3+cmd|' /C calc'!A0", True),
     ("@SUM(A1)", True), ("+A1*2", True), ("=cmd|' /C calc'!A0", True),
     ("-12.50", False), ("+44 7700 900123", False), ("O'Brien", False), ("Smith-Jones", False), ("@home", False),
     ("=", False)],
)
def test_formula_detection(cell: str, formula: bool) -> None:
    assert bool(val.looks_like_formula(pd.Series([cell])).iloc[0]) is formula


def test_duplicates_keep_first() -> None:
    assert val.duplicated_ids(pd.Series(["A", "B", "A", None, None, "A"])).tolist() == [False, False, True, False, False, True]
