"""Standardisers: documented forms, idempotence, round trips, no crash on arbitrary text."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import standardise as std
from ingest import validate as val


def one(fn, value):
    return fn(pd.Series([value])).iloc[0]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Mrs. Zoë O'Brien-Smith", "ZOE OBRIEN SMITH"),
        ("  dr   john  ", "JOHN"),
        ("MR MR Jean-Luc", "JEAN LUC"),
        ("Ægir Þórsson", "AEGIR THORSSON"),
        ("Strauß", "STRAUSS"),
        ("D’Arcy", "DARCY"),
        ("MR", "MR"),  # a title alone is left: it may be the name
        ("Miss", "MISS"),
        ("Mistry", "MISTRY"),
        ("", pd.NA),
        ("  ", pd.NA),
        (None, pd.NA),
    ],
)
def test_standardise_name(raw, expected) -> None:
    got = one(std.standardise_name, raw)
    assert (got is pd.NA and expected is pd.NA) or got == expected


def test_split_forenames() -> None:
    first, middle = std.split_forenames(std.standardise_name(pd.Series(["John Paul George", "Ann", None])))
    assert first.tolist()[:2] == ["JOHN", "ANN"] and first.isna().tolist() == [False, False, True]
    assert middle.tolist()[0] == "PAUL GEORGE" and middle.isna().tolist() == [False, True, True]


@pytest.mark.parametrize(
    "raw, expected",
    [("sw1a1aa", "SW1A 1AA"), (" ec1a  1bb ", "EC1A 1BB"), ("w1-1aa", "W1 1AA"), ("M11AE", "M1 1AE"), ("2000", "2000")],
)
def test_standardise_postcode(raw, expected) -> None:
    assert one(std.standardise_postcode, raw) == expected


def test_standardise_nino_and_others() -> None:
    assert one(std.standardise_nino, "ab 12 34 56 c") == "AB123456C"
    assert one(std.standardise_nino, "ab-123456-c") == "AB123456C"
    assert one(std.standardise_phone, "+44 (0)7700 900123") == "07700900123"
    assert one(std.standardise_phone, "7700900123") == "07700900123"  # leading zero lost by a spreadsheet
    assert one(std.standardise_phone, "0044 20 7946 0000") == "02079460000"
    assert one(std.standardise_email, "  Ann.Jones@Example.ORG ") == "ann.jones@example.org"
    assert one(std.standardise_uprn, "000100023336956") == "100023336956"
    assert one(std.standardise_uprn, "100023336956.0") == "100023336956"
    # inner white space of any kind goes before the zeros are trimmed (hypothesis found '0\x1f0')
    assert one(std.standardise_uprn, "0\x1f1\u20032") == "12"
    assert std.standardise_uprn(pd.Series(["0\x1f0"], dtype=object)).isna().all()
    assert one(std.standardise_digits, "12-34-56") == "123456"
    assert one(std.standardise_record_id, " 1234.0 ") == "1234"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("12, St. John's Rd., London SW1A 1AA", "12 SAINT JOHNS ROAD LONDON"),
        ("Flat 3, 10 High St", "FLAT 3 10 HIGH STREET"),
        ("5 Acacia Ave, Crouch End", "5 ACACIA AVENUE CROUCH END"),
        ("7a Church Ln.", "7A CHURCH LANE"),
        ("Ñandú House, 2 Kings Gdns", "NANDU HOUSE 2 KINGS GARDENS"),
    ],
)
def test_standardise_address(raw, expected) -> None:
    assert one(std.standardise_address, raw) == expected


STANDARDISERS = [
    std.standardise_name, std.standardise_postcode, std.standardise_nino, std.standardise_address,
    std.standardise_phone, std.standardise_email, std.standardise_uprn, std.standardise_digits,
    std.standardise_record_id,
]
texts = st.lists(st.one_of(st.none(), st.text(max_size=40), st.from_regex(r"[A-Za-z' .\-]{0,20}", fullmatch=True)),
                 min_size=1, max_size=20)


@settings(max_examples=100, deadline=None)
@given(values=texts)
def test_standardisers_are_idempotent_and_never_crash(values) -> None:
    s = pd.Series(values, dtype=object)
    for fn in STANDARDISERS:
        once = fn(s)
        assert len(once) == len(s)
        twice = fn(once)
        pd.testing.assert_series_equal(once.astype("string"), twice.astype("string"), check_names=False)


@settings(max_examples=100, deadline=None)
@given(values=texts)
def test_names_are_upper_ascii_letters_and_single_spaces(values) -> None:
    out = std.standardise_name(pd.Series(values, dtype=object)).dropna()
    assert out.str.fullmatch(r"[A-Z]+(?: [A-Z]+)*").all()


# postcode round trip: any valid postcode, in any spacing/case, comes back in the canonical form
outward = st.from_regex(r"(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|[A-PR-UWYZ][0-9][A-HJKSTUW]|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])", fullmatch=True)
inward = st.from_regex(r"[0-9][ABD-HJLNP-UW-Z]{2}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(out=outward, inw=inward, spaces=st.sampled_from(["", " ", "  ", "-"]), lower=st.booleans())
def test_postcode_round_trip(out, inw, spaces, lower) -> None:
    canonical = f"{out} {inw}"
    messy = f"{out}{spaces}{inw}"
    messy = messy.lower() if lower else messy
    got = std.standardise_postcode(pd.Series([messy]))
    assert got.iloc[0] == canonical
    assert not val.invalid_postcode(got).iloc[0]


nino_first = st.sampled_from(list("ABCEGHJKLMNOPRSTWXYZ"))
nino_second = st.sampled_from(list("ABCEGHJKLMNPRSTWXYZ"))


@settings(max_examples=200, deadline=None)
@given(a=nino_first, b=nino_second, digits=st.from_regex(r"[0-9]{6}", fullmatch=True), suffix=st.sampled_from("ABCD"),
       sep=st.sampled_from(["", " ", "-"]), lower=st.booleans())
def test_nino_round_trip(a, b, digits, suffix, sep, lower) -> None:
    canonical = f"{a}{b}{digits}{suffix}"
    messy = sep.join([a + b, digits[:2], digits[2:4], digits[4:], suffix])
    got = std.standardise_nino(pd.Series([messy.lower() if lower else messy]))
    assert got.iloc[0] == canonical
    assert val.invalid_nino(got).iloc[0] == (a + b in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
