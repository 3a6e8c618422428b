"""The placeholder detector shared by the data-quality profile and record linkage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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



# Rule 1 as one case-insensitive regex per kind (how it was first written): the set lookup must
# give the same answer on anything a council may send.
_SEP = "[^A-Za-z0-9]*"


def _whole(tokens, or_nothing: bool = False) -> str:
    return "^" + _SEP + "(?:" + "|".join(_SEP.join(t) for t in sorted(tokens)) + ")" + "?" * or_nothing + _SEP + "$"


def _rule_one_by_regex(values: list[str], kind: str) -> list[bool]:
    from ingest.placeholders import _SAME_DIGITS_RE, FORENAME_ROLES, HOUSEHOLD_ROLES, PLACEHOLDER_TOKENS

    arr = pa.array(values, type=pa.string())

    def hit(pattern: str, ignore_case: bool = True) -> np.ndarray:
        found = pc.match_substring_regex(arr, pattern=pattern, ignore_case=ignore_case)
        return pc.fill_null(found, False).to_numpy(zero_copy_only=False)

    out = hit(_whole(PLACEHOLDER_TOKENS, or_nothing=True))
    roles = {"name": HOUSEHOLD_ROLES, "forename": HOUSEHOLD_ROLES | FORENAME_ROLES}
    if kind in roles:
        out &= ~hit("^\\s*[Nn][Aa]\\s*$", ignore_case=False)
        out |= hit(_whole(roles[kind]))
    if kind == "id":
        sep = "[^A-Za-z0-9@]*"
        out |= hit(_SAME_DIGITS_RE, ignore_case=False)
        out |= hit("^" + sep + "(?:" + "|".join(sep.join(t) for t in sorted(PLACEHOLDER_TOKENS)) + ")" + sep + "@")
    return out.tolist()


def _rule_one(values: list[str], kind: str) -> list[bool]:
    from ingest.placeholders import _token_mask

    return _token_mask(pd.Series(values, dtype="string[pyarrow]"), kind).tolist()


_PIECES = ["UNKNOWN", "n/a", "NA", "Na", "none", "THE OCCUPIER", "baby boy", "MRS", "SMITH", "SON", "Not-Known", "@",
           "none@", "x@", "0", "0000", " ", "-", ".", "?", "\u212a", "\u017f", "UN\u212aNOWN", "MI\u017f\u017fING", "É",
           "ß", "\t", "N A", "tbc", "ZZZ", "a", "7"]
KINDS_WITH_RULE_ONE = ("name", "forename", "text", "id")


def test_rule_one_by_set_lookup_equals_the_regex_on_chosen_values() -> None:
    values = [*_PIECES, *(a + b for a in _PIECES for b in _PIECES)]
    for kind in KINDS_WITH_RULE_ONE:
        expected, got = _rule_one_by_regex(values, kind), _rule_one(values, kind)
        assert [v for v, e, g in zip(values, expected, got) if e != g] == [], kind
    assert all(_rule_one(["UN\u212aNOWN", "MI\u017f\u017fING"], "name"))  # case folding's own letters


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=4).map("".join),
                min_size=1, max_size=20),
       st.sampled_from(KINDS_WITH_RULE_ONE))
def test_rule_one_by_set_lookup_equals_the_regex_on_any_text(values: list[str], kind: str) -> None:
    assert _rule_one(values, kind) == _rule_one_by_regex(values, kind)
