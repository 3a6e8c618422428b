"""pseudonymise(): the contracted frame, deterministic keyed tokens, derived variants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anonymise.errors import SchemaError
from anonymise.keys import load_keyring, rotate_keys
from anonymise.tokens import pseudonymise, token_values
from councilmatch.contracts import BLOOM_BYTES, NON_IDENTIFYING, PSEUDONYMISED_COLUMNS, TOKEN_COLUMNS


@pytest.fixture
def canonical(people, helpers) -> pd.DataFrame:
    return helpers.canonical_frame(people)


def test_exact_columns_and_dtypes(canonical, keyring) -> None:
    out = pseudonymise(canonical, keyring, "x1")
    assert tuple(out.columns) == PSEUDONYMISED_COLUMNS
    assert len(out) == len(canonical)
    for c in TOKEN_COLUMNS:
        assert out[c].dtype == np.int64, c
    for c, n in BLOOM_BYTES.items():
        assert all(isinstance(v, bytes) and len(v) == n for v in out[c]), c
    assert set(out["extract_id"]) == {"x1"} and set(out["key_id"]) == {"k1"}
    assert out["period_start"].dtype == "datetime64[ns]" and out["amount"].dtype == "float64"
    assert out["discount"].dtype == "boolean"
    pd.testing.assert_series_equal(out["record_id"], canonical["record_id"], check_names=False)
    for c in ("period_start", "amount"):
        pd.testing.assert_series_equal(out[c], canonical[c], check_names=False, check_dtype=False)


def test_tokens_deterministic_across_runs_and_key_dependent(canonical, home, keyring) -> None:
    a = pseudonymise(canonical, keyring, "x1")
    b = pseudonymise(canonical.sample(frac=1, random_state=3), load_keyring(home), "x1")
    b = b.set_index("record_id").loc[a["record_id"]].reset_index()[list(PSEUDONYMISED_COLUMNS)]
    pd.testing.assert_frame_equal(a, b)
    rotate_keys(home)
    c = pseudonymise(canonical, load_keyring(home), "x1")
    assert set(c["key_id"]) == {"k2"}
    for col in TOKEN_COLUMNS:
        present = a[col] != 0
        if present.any():
            assert (a.loc[present, col] != c.loc[present, col]).all(), col


def test_missing_values_give_zero_and_present_values_never_do(canonical, keyring) -> None:
    canonical = canonical.copy()
    canonical.loc[0, ["nino", "email", "dob"]] = [pd.NA, pd.NA, pd.NaT]
    out = pseudonymise(canonical, keyring, "x1")
    assert out.loc[0, "t_nino"] == 0 and out.loc[0, "t_email"] == 0 and out.loc[0, "t_dob"] == 0
    assert out.loc[0, "t_yob"] == 0 and out.loc[0, "t_dob_unordered"] == 0
    assert (out.loc[1:, ["t_nino", "t_email", "t_dob", "t_postcode", "t_bank", "t_surname"]] != 0).all().all()
    assert (out["t_prev_surname"] == 0).all() and (out["t_uprn"] == 0).all()  # never mapped
    assert out.loc[0, "bf_address"] != bytes(BLOOM_BYTES["bf_address"])


def test_one_value_differs_across_purposes(canonical, keyring) -> None:
    """A token of one purpose never equals a token of another for the same value."""
    canonical = canonical.copy()
    canonical["postcode"] = "E1 6AN"
    out = pseudonymise(canonical, keyring, "x1")
    row = out.iloc[0]
    assert len({row["t_postcode"], row["t_pc_sector"], row["t_pc_district"], row["t_premise"], row["t_address"]}) == 5
    # the raw HMAC of the same string under two purposes differs
    assert token_values(pd.Series(["E1 6AN"]), keyring.subkey("postcode"))[0] == row["t_postcode"]
    assert token_values(pd.Series(["E1 6AN"]), keyring.subkey("address"))[0] != row["t_postcode"]


def _pair(helpers, people, **changes) -> pd.DataFrame:
    frame = helpers.canonical_frame(people[:2])
    for col, (a, b) in changes.items():
        frame[col] = [a, b]
    return frame


def test_derived_variants_link_what_they_should(people, helpers, keyring) -> None:
    f = _pair(helpers, people,
              first_name=("JOHN", "SMITH"), forenames=("JOHN", "SMITH"), surname=("SMITH", "JOHN"),
              dob=(pd.Timestamp("1980-03-04"), pd.Timestamp("1980-04-03")),
              address_lines=("FLAT 3 12 HIGH ROAD LONDON", "3 12 HIGH RD LONDON"),
              postcode=("SW1A 1AA", "SW1A 1AA"))
    out = pseudonymise(f, keyring, "x")
    same = lambda c: out.loc[0, c] == out.loc[1, c]  # noqa: E731
    assert same("t_name_sorted") and not same("t_forename")        # swapped names
    assert out.loc[0, "t_forename"] == out.loc[1, "t_surname"]     # shared "name" purpose
    assert same("t_dob_unordered") and same("t_yob") and not same("t_dob")  # day/month transposed
    assert same("t_premise") and not same("t_address")
    assert same("t_postcode") and same("t_pc_sector") and same("t_pc_district")


@pytest.mark.parametrize(("scanned", "typed", "alike"), [
    ("1 B1RD SQUARE", "1 BIRD SQUARE", True),            # a digit for a letter
    ("43 5TANLEY SQUARE", "43 STANLEY SQUARE", True),    # ... the street's first letter: still a street
    ("I1 CARR ROAD", "11 CARR ROAD", True),              # a letter for a digit in the house number
    ("44 G1LL TERRACE", "44 GILL TERRACE", True),        # look-alikes only, mostly letters: a word
    ("F1AT 2 14 CHAPMAN MEWS", "FLAT 2 14 CHAPMAN MEWS", True),
    ("12 VVEST HILL", "12 WEST HIIL", True),             # VV for W, I for L
    ("3 CORNER ROAD", "3 COMER ROAD", True),             # RN for M
    ("FLAT B 12 HIGH ROAD", "FLAT 8 12 HIGH ROAD", False),  # one character: both readings are real flats
    ("12A HIGH ROAD", "12 HIGH ROAD", False),            # a house number as written stays
    ("12 HIGH ROAD", "13 HIGH ROAD", False),
])
def test_an_address_scanning_misread_is_the_same_address(people, helpers, keyring, scanned: str, typed: str,
                                                         alike: bool) -> None:
    """Characters a scanner confuses (0/O, 1/I/L, 5/S, 8/B, 2/Z, 6/G, RN/M, VV/W) are read alike
    in the address and premise tokens, so a scanned form's address is the same address ("exact"),
    and its house number finds the pair (the premise is a blocking key); a number written
    differently is not a misreading."""
    f = _pair(helpers, people, address_lines=(scanned, typed), postcode=("SW1A 1AA", "SW1A 1AA"))
    out = pseudonymise(f, keyring, "x")
    assert bool(out.loc[0, "t_address"] == out.loc[1, "t_address"]) == alike
    assert bool(out.loc[0, "t_premise"] == out.loc[1, "t_premise"]) == alike


def test_a_first_of_january_birthday_carries_its_year_to_meet_the_others(people, helpers, keyring) -> None:
    """``t_yob_jan1``: the year of a 1 January date under the year's key (so it meets another
    record's ``t_yob``), missing for any other date and for no date."""
    f = helpers.canonical_frame(people[:4])
    f["dob"] = [pd.Timestamp("1956-01-01"), pd.Timestamp("1956-08-17"), pd.Timestamp("1956-01-02"), pd.NaT]
    out = pseudonymise(f, keyring, "x")
    assert out.loc[0, "t_yob_jan1"] == out.loc[0, "t_yob"] == out.loc[1, "t_yob"] != 0
    assert (out.loc[1:, "t_yob_jan1"] == 0).all() and out.loc[2, "t_yob"] == out.loc[1, "t_yob"]


def test_nickname_phonetic_and_initial(people, helpers, keyring) -> None:
    f = _pair(helpers, people, first_name=("BILL", "WILLIAM"), forenames=("BILL", "WILLIAM"),
              surname=("SMYTH", "SMITH"))
    out = pseudonymise(f, keyring, "x")
    assert out.loc[0, "t_forename_canon"] == out.loc[1, "t_forename_canon"]
    assert out.loc[0, "t_forename"] != out.loc[1, "t_forename"]
    assert out.loc[0, "t_surname_phon"] == out.loc[1, "t_surname_phon"]
    assert out.loc[0, "t_surname"] != out.loc[1, "t_surname"]
    g = _pair(helpers, people, first_name=("WENDY", "WILLIAM"), forenames=("WENDY", "WILLIAM"))
    out = pseudonymise(g, keyring, "x")
    assert out.loc[0, "t_initial"] == out.loc[1, "t_initial"]
    assert out.loc[0, "t_forename_phon"] != out.loc[1, "t_forename_phon"]


def test_previous_surname_comparable_with_surname(people, helpers, keyring) -> None:
    f = _pair(helpers, people, surname=("JONES", "TAYLOR"), previous_surname=(None, "JONES"))
    out = pseudonymise(f, keyring, "x")
    assert out.loc[1, "t_prev_surname"] == out.loc[0, "t_surname"]


def test_non_identifying_columns_absent_become_typed_missing(people, helpers, keyring) -> None:
    f = helpers.canonical_frame(people[:3]).drop(columns=list(NON_IDENTIFYING) + ["uprn"])
    out = pseudonymise(f, keyring, "x")
    assert tuple(out.columns) == PSEUDONYMISED_COLUMNS
    assert out["period_end"].isna().all() and out["discount"].isna().all()


def test_missing_reference_column_is_a_clear_error(people, helpers, keyring) -> None:
    with pytest.raises(SchemaError, match="record_id"):
        pseudonymise(helpers.canonical_frame(people[:2]).drop(columns=["record_id"]), keyring, "x")


def test_empty_frame(people, helpers, keyring) -> None:
    out = pseudonymise(helpers.canonical_frame(people[:0]), keyring, "x")
    assert tuple(out.columns) == PSEUDONYMISED_COLUMNS and len(out) == 0


def test_hmac64_is_exactly_hmac_sha256() -> None:
    import hmac
    import os

    from anonymise.tokens import hmac64

    for key in (os.urandom(32), os.urandom(80), b"k"):
        values = ["", "SMITH", "Zoë", "x" * 200]
        expected = [int.from_bytes(hmac.digest(key, v.encode(), "sha256")[:8], "big", signed=True) for v in values]
        assert hmac64(key, values).tolist() == expected


@pytest.mark.parametrize("as_they_are", [0, 100_000], ids=["distinct combinations", "rows as they are"])
def test_each_row_is_encoded_as_it_would_be_alone(canonical, keyring, monkeypatch, as_they_are) -> None:
    """Tokens, filters and salts are computed once per distinct value (and per distinct value and
    salt): a row's pseudonyms must still be exactly those of the row pseudonymised on its own,
    whatever the rows around it repeat or lack (on either path of ``variants.derive``)."""
    from anonymise import variants

    monkeypatch.setattr(variants, "ROWS_DERIVED_AS_THEY_ARE", as_they_are)
    repeats = canonical.sample(n=30, replace=True, random_state=5).reset_index(drop=True)
    repeats.loc[::3, "dob"] = repeats.loc[::3, "dob"] + pd.Timedelta(days=400)  # same names, another salt
    repeats.loc[1::4, ["first_name", "forenames"]] = pd.NA
    repeats.loc[2::5, "surname"] = pd.NA
    frame = pd.concat([canonical, repeats], ignore_index=True)
    frame["record_id"] = [f"R{i}" for i in range(len(frame))]
    together = pseudonymise(frame, keyring, "x1")
    alone = pd.concat([pseudonymise(frame.iloc[[i]], keyring, "x1") for i in range(len(frame))], ignore_index=True)
    assert together.duplicated(subset=["t_surname", "t_yob"]).any()  # the frame does repeat values
    pd.testing.assert_frame_equal(together, alone)


def test_a_field_no_row_holds_gives_what_deriving_it_would(canonical, keyring, monkeypatch) -> None:
    """``sources_missing`` skips deriving a column whose source fields are all missing: every
    token, filter and neighbourhood must be what the derivation gives for missing values (the
    pseudonymised frame is the same with the shortcut and without it)."""
    from anonymise import tokens
    from anonymise.variants import BLOOM_VARIANTS, NEIGHBOURHOOD_VARIANTS, VARIANTS

    groups = {v.sources for v in VARIANTS.values()} | {v.sources for _, v in BLOOM_VARIANTS.values()}
    groups |= {v.sources for _, v, _ in NEIGHBOURHOOD_VARIANTS.values()}
    for fields in sorted(groups):
        frame = canonical.copy()
        for field in fields:
            frame[field] = frame[field].mask(np.ones(len(frame), dtype=bool))  # nobody has it
        fast = pseudonymise(frame, keyring, "x1")
        with monkeypatch.context() as m:
            m.setattr(tokens, "sources_missing", lambda *_: False)
            slow = pseudonymise(frame, keyring, "x1")
        pd.testing.assert_frame_equal(fast, slow, obj=str(fields))
        assert all((fast[c] == 0).all() for c, v in VARIANTS.items() if v.sources == fields), fields


def test_a_few_rows_are_derived_as_they_are_with_the_same_pseudonyms(canonical, keyring, monkeypatch) -> None:
    """A frame of a few rows (a re-sent extract's changed rows) is derived row by row, with no
    distinct combinations to find, and gets exactly the pseudonyms the combinations give."""
    from anonymise import variants

    frame = pd.concat([canonical, canonical.iloc[:7]], ignore_index=True)  # repeated combinations
    frame["record_id"] = [f"R{i}" for i in range(len(frame))]
    frame = frame.drop(columns=["previous_surname"])  # a source the frame lacks
    assert len(frame) <= variants.ROWS_DERIVED_AS_THEY_ARE
    found = []
    real = variants.unique_combinations
    monkeypatch.setattr(variants, "unique_combinations", lambda *a: found.append(a[1]) or real(*a))
    as_they_are = pseudonymise(frame, keyring, "x1")
    assert found == []
    monkeypatch.setattr(variants, "ROWS_DERIVED_AS_THEY_ARE", 0)
    pd.testing.assert_frame_equal(as_they_are, pseudonymise(frame, keyring, "x1"))
    assert found  # the other path did find combinations
