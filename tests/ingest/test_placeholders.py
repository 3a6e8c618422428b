"""The placeholder detector shared by the data-quality profile and record linkage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.placeholders import placeholder_mask


def test_tokens_and_punctuation_only_values_are_placeholders_missing_is_not() -> None:
    s = pd.Series(["UNKNOWN", "n/a", "N A", "None", "-", "?", "TBC", "Not Known", "SMITH", None, "Na"], dtype="string")
    assert placeholder_mask(s, "name").tolist() == [True, True, True, True, True, True, True, True, False, False, False]
    # 'Na' is a real surname; as text it is N/A
    assert placeholder_mask(pd.Series(["NA"]), "text").tolist() == [True]


def test_id_placeholders_repeated_digits_and_no_email() -> None:
    s = pd.Series(["AA000000A", "AB123456C", "07000000000", "07700900123", "none@none.com", "ann@example.org",
                   "999999999999", "100023336956", None])
    assert placeholder_mask(s, "id").tolist() == [True, False, True, False, True, False, True, False, False]


def test_sentinel_dates_as_datetimes_and_as_iso_text() -> None:
    d = pd.Series(pd.to_datetime(["1900-01-01", "1980-05-03", "1970-01-01", "1899-12-30", None]))
    assert placeholder_mask(d, "date").tolist() == [True, False, True, True, False]
    text = pd.Series(["9999-12-31", "2020-02-29", None])
    assert placeholder_mask(text, "date").tolist() == [True, False, False]


def test_first_of_january_only_when_far_over_represented_in_its_year() -> None:
    rng = np.random.default_rng(1)
    days = pd.Series(pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 20_000, 2_000), unit="D"))
    days.iloc[:40] = pd.Timestamp("1960-01-01")  # year known, day not: 40 on 1 Jan 1960
    mask = placeholder_mask(days, "date")
    assert mask.iloc[:40].all()
    jan1_elsewhere = (days.dt.month == 1) & (days.dt.day == 1) & (days.dt.year != 1960)
    assert not mask[jan1_elsewhere].any()  # a genuine 1 January in an ordinary year stays
    assert mask.sum() == 40 + int(((days.dt.year == 1960) & (days.dt.month == 1) & (days.dt.day == 1)).iloc[40:].sum())


def test_a_value_ten_times_more_frequent_than_the_next_is_a_placeholder() -> None:
    ordinary = [f"NAME{i}" for i in range(300)]
    skewed = pd.Series(["SMITH"] * 13 + ["JONES"] * 8 + ordinary * 2)  # a real skew: no
    assert not placeholder_mask(skewed, "name").any()
    dummy = pd.Series(["1 TEST ROAD"] * 120 + ordinary * 2)  # 120 against 2: yes
    mask = placeholder_mask(dummy, "text")
    assert mask.iloc[:120].all() and not mask.iloc[120:].any()
    dates = pd.Series(pd.to_datetime(["1975-06-15"] * 50 + [f"19{50 + i % 40}-0{1 + i % 9}-1{i % 9}" for i in range(400)]))
    assert placeholder_mask(dates, "date").iloc[:50].all()


def test_unknown_kind_is_refused_and_empty_input_is_fine() -> None:
    with pytest.raises(ValueError, match="unknown placeholder kind 'nino'"):
        placeholder_mask(pd.Series(["x"]), "nino")
    assert placeholder_mask(pd.Series([], dtype="string"), "text").tolist() == []


def test_a_role_where_a_name_should_be_is_a_placeholder() -> None:
    """'BABY' for a newborn not yet named, 'WIFE' for a household member entered by relation, a
    title alone, 'THE OCCUPIER' on a council tax account: two such records do not share a name.
    Forenames only for relations (SON, CHILD and BROTHER are surnames too); whole values only
    (SONIA, CHILDS and BABYLON are names)."""
    forenames = pd.Series(["BABY", "Baby Boy", "the occupier", "WIFE", "Mrs.", "Female Child", "SONIA", "CHILDS",
                           "BABYLON", "JAMES", None])
    assert placeholder_mask(forenames, "forename").tolist() == [True] * 6 + [False] * 5
    surnames = pd.Series(["SON", "CHILD", "BROTHER", "THE OCCUPIER", "Residents", "EXECUTORS", "SMITH"])
    assert placeholder_mask(surnames, "name").tolist() == [False, False, False, True, True, True, False]


def test_forename_fields_are_checked_for_roles() -> None:
    from ingest.placeholders import FIELD_KINDS

    assert {FIELD_KINDS[f] for f in ("forenames", "first_name", "middle_names")} == {"forename"}
    assert FIELD_KINDS["surname"] == FIELD_KINDS["previous_surname"] == "name"
