"""Minimised clear fields in the store (anonymise.minimise): each rule keeps only what it needs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anonymise.errors import AnonymiseError
from anonymise.minimise import (
    AMOUNT_BANDS, NEEDS, band_amounts, generalise, is_ref, minimise, policy_for, record_refs, ref_key,
)
from councilmatch.home import Home
from matching.conditions import CONDITIONS
from matching.matchtype import load_matchtypes
from matching.minimisation import store_policy


def test_every_condition_declares_what_it_reads() -> None:
    assert set(NEEDS) == set(CONDITIONS)


def test_policy_of_the_shipped_match_types(home: Home) -> None:
    policy = store_policy(home)
    # day precision only where a date is compared with a date of death
    assert policy["deceased"] == {"date_of_death": "day"}
    assert policy["blue_badge"] == {"period_end": "day"}
    assert policy["concessionary_travel"] == {"period_end": "day", "last_used": "day"}
    # overlaps need months; the single person discount is kept for council tax only
    for ds in ("tenancy", "payroll", "council_tax_reduction", "waiting_list", "electoral_register"):
        assert policy[ds] == {"period_start": "month", "period_end": "month"}, ds
    assert policy["council_tax"] == {"period_start": "month", "period_end": "month", "discount": "keep"}
    assert not any("amount" in f for f in policy.values()), "no rule reads an amount: none is kept"


def test_a_condition_without_declared_needs_is_refused(home: Home) -> None:
    mt = next(iter(load_matchtypes(home).values()))
    fake = mt.model_copy(update={"conditions": ["something_new"]})
    with pytest.raises(AnonymiseError, match="something_new"):
        policy_for({"x": fake})


def _frame(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"period_start": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
            "period_end": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
            "date_of_death": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
            "last_used": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
            "discount": pd.Series([pd.NA] * n, dtype="boolean"), "amount": pd.Series([np.nan] * n)}
    for k, v in cols.items():
        base[k] = pd.Series(v, dtype=base[k].dtype)
    return pd.DataFrame(base)


def test_month_precision_shrinks_periods_to_whole_months() -> None:
    f = _frame(period_start=pd.to_datetime(["2024-03-01", "2024-03-02", "2024-12-15"]),
               period_end=pd.to_datetime(["2024-03-31", "2024-04-30", "2025-01-10"]))
    g = generalise(f, {"period_start": "month", "period_end": "month"})
    assert g["period_start"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-01", "2024-04-01", "2025-01-01"]
    assert g["period_end"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-31", "2024-04-30", "2024-12-31"]
    assert (g["period_start"].dt.day == 1).all()
    assert (g["period_end"] + pd.Timedelta(days=1)).dt.day.eq(1).all()


def test_a_move_within_a_month_is_not_an_overlap_but_a_real_one_is() -> None:
    from matching.conditions import periods_overlap

    fields = {"period_start": "month", "period_end": "month"}
    old = generalise(_frame(period_start=pd.to_datetime(["2020-01-10", "2020-01-10"]),
                            period_end=pd.to_datetime(["2024-03-10", pd.NaT])), fields)
    new = generalise(_frame(period_start=pd.to_datetime(["2024-03-20", "2024-03-20"]),
                            period_end=pd.to_datetime([pd.NaT, pd.NaT])), fields)
    assert periods_overlap(old, new).tolist() == [False, True]


def test_unneeded_fields_are_dropped_and_day_fields_kept() -> None:
    f = _frame(date_of_death=pd.to_datetime(["2024-05-17"]), period_start=pd.to_datetime(["2020-02-02"]),
               amount=[34567.89], discount=[True])
    g = generalise(f, {"date_of_death": "day"})
    assert g["date_of_death"].iloc[0] == pd.Timestamp("2024-05-17")
    assert pd.isna(g["period_start"].iloc[0]) and pd.isna(g["amount"].iloc[0]) and pd.isna(g["discount"].iloc[0])
    assert g.dtypes.equals(f.dtypes)


def test_generalising_leaves_the_frame_it_was_given_as_it_was() -> None:
    f = _frame(date_of_death=pd.to_datetime(["2024-05-17"]), period_start=pd.to_datetime(["2020-02-02"]),
               amount=[34567.89], discount=[True])
    before = f.copy()
    generalise(f, {"period_start": "month", "amount": "band"})
    pd.testing.assert_frame_equal(f, before)


def test_a_frame_with_any_clear_record_id_gets_refs_for_all(home: Home) -> None:
    """Refs are made when any record id is not one already (a missing id included)."""
    refs = record_refs(ref_key(home), pd.Series(["E1", "E1"]), pd.Series(["A", "B"]))
    for ids in ([refs.iloc[0], "C"], [refs.iloc[0], None], [refs.iloc[0], refs.iloc[1][:-1]]):
        f = _frame(amount=[1.0, 2.0]).assign(dataset="payroll", council="E1", record_id=ids)
        assert minimise(f, home, {}).record_id.map(is_ref).all(), ids
    f = _frame(amount=[1.0, 2.0]).assign(dataset="payroll", council="E1", record_id=list(refs))
    assert minimise(f, home, {}).record_id.tolist() == list(refs)  # refs already: kept as they are


def test_amounts_in_bands() -> None:
    banded = band_amounts(pd.Series([34567.89, 34000.0, 12.5, -3.0, np.nan, 1e9]))
    assert banded.iloc[0] == banded.iloc[1] == 30_000
    assert banded.iloc[2] == 10 and banded.iloc[3] == 0 and np.isnan(banded.iloc[4])
    assert banded.iloc[5] == AMOUNT_BANDS[-1]


def test_record_refs_are_keyed_stable_and_per_council(home: Home, tmp_path) -> None:
    key = ref_key(home)
    councils, ids = pd.Series(["E1", "E1", "E2"]), pd.Series(["A7", "A7", "A7"])
    refs = record_refs(key, councils, ids)
    assert refs[0] == refs[1] != refs[2] and all(map(is_ref, refs))
    assert "A7" not in "".join(refs)
    assert ref_key(home) == key  # a stable key: flag ids survive key rotation
    from anonymise.keys import rotate_keys

    rotate_keys(home)
    assert ref_key(home) == key
    other = Home(tmp_path / "other").ensure()
    from anonymise.keys import init_keys

    init_keys(other)
    assert record_refs(ref_key(other), councils, ids)[0] != refs[0], "another home's references differ"


def test_minimise_and_reidentify_by_reference(home: Home, people, helpers, keyring) -> None:
    from anonymise.tokens import pseudonymise
    from anonymise.vault import Vault

    canonical = helpers.canonical_frame(people[:6]).assign(amount=34567.89)
    stored = minimise(pseudonymise(canonical, keyring, "payroll_1-abc"), home, store_policy(home))
    assert stored["record_id"].map(is_ref).all()
    assert stored["amount"].isna().all()  # no rule reads a payroll amount
    Vault(home, keyring).store(helpers.CAMDEN, "payroll_1-abc", canonical)
    record = Vault(home, keyring).reidentify(helpers.CAMDEN, stored["record_id"].iloc[3], "inv", "test")
    assert record["record_id"] == canonical["record_id"].iloc[3] and record["nino"] == canonical["nino"].iloc[3]
    audit = (home.vault / "audit.log").read_text()
    assert stored["record_id"].iloc[3] not in audit and canonical["record_id"].iloc[3] not in audit
