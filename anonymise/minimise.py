"""Minimise and generalise the clear fields of the pseudonymised store.

The store keeps only what a match type's rules read, at the coarsest precision
the rule needs (docs/security.md lists each kept field and why):

* **dates**: ``day`` where a rule compares a date with a date of death (a pass used
  three days after its holder died is fraud, three days before is not);
  ``month`` for period overlaps: a period is shrunk to the whole calendar months it
  covers (start -> first day of the next month unless it is already the 1st; end ->
  last day of the previous month unless it is already a month end), so two periods
  "overlap" only if they share a whole month: a move within one month never looks
  like two homes at once, and a period shorter than a month never overlaps;
  ``drop`` (missing) where no rule reads it.
* **amounts**: in bands (the band's lower bound) where a rule reads them, else dropped.
* **record ids**: a keyed hash (``ref:`` + 16 hex of HMAC-SHA-256 under the
  KEK-wrapped at-rest key ``refs``, of council + id). Equal ids stay equal (so
  linkage and flag ids work); the vault index holds the same hash, so an
  investigator's own-council re-identification still finds the clear record.
  The key never rotates, so flag ids and investigators' decisions survive ``keys rotate``.

Which rule needs what is declared below per condition (``NEEDS``); the policy for a
home is derived from its match types, so a new match type that reads a field makes
the store keep it (re-pseudonymise from the archive to fill it for old extracts).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from anonymise import at_rest
from anonymise.encodings import hmac64
from anonymise.errors import AnonymiseError
from councilmatch.contracts import NON_IDENTIFYING
from councilmatch.home import Home

Precision = Literal["day", "month", "band", "keep", "drop"]
_RANK = {"drop": 0, "band": 1, "month": 1, "keep": 2, "day": 2}

#: condition -> {"left"|"right": {field: precision}}: what each rule reads (matching/conditions.py).
NEEDS: dict[str, dict[str, dict[str, Precision]]] = {
    "periods_overlap": {"left": {"period_start": "month", "period_end": "month"},
                        "right": {"period_start": "month", "period_end": "month"}},
    "right_date_of_death_before_left_period_end": {"left": {"period_end": "day"},
                                                   "right": {"date_of_death": "day"}},
    "left_active_after_right_date_of_death": {"left": {"period_end": "day"}, "right": {"date_of_death": "day"}},
    "left_used_after_right_date_of_death": {"left": {"last_used": "day"}, "right": {"date_of_death": "day"}},
    "left_active_or_used_after_right_date_of_death": {"left": {"period_end": "day", "last_used": "day"},
                                                      "right": {"date_of_death": "day"}},
    "left_discount": {"left": {"discount": "keep"}, "right": {}},
}

#: Amount bands (pounds, lower bounds): coarse enough that a salary or award does not single anyone out.
AMOUNT_BANDS: tuple[float, ...] = (0, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000,
                                   40_000, 50_000, 75_000, 100_000)
REF_PREFIX = "ref:"
#: a ref is the prefix and 16 hex digits
REF_LENGTH = len(REF_PREFIX) + 16
REF_KEY_ID = "refs"
Policy = dict[str, dict[str, Precision]]


def policy_for(matchtypes: dict) -> Policy:
    """dataset -> {non-identifying field: precision} from the match types' conditions."""
    policy: Policy = {}
    for mt in matchtypes.values():
        for cond in mt.conditions:
            if cond not in NEEDS:
                raise AnonymiseError(f"match type {mt.id}: condition {cond!r} declares no data needs in "
                                     "anonymise.minimise.NEEDS; add what it reads there")
            for side, dataset in (("left", mt.left), ("right", mt.right)):
                fields = policy.setdefault(dataset, {})
                for field, precision in NEEDS[cond][side].items():
                    if _RANK[precision] > _RANK.get(fields.get(field, "drop"), 0):
                        fields[field] = precision
    return policy


def _month_start_up(d: pd.Series) -> pd.Series:
    first = d.dt.to_period("M").dt.to_timestamp()
    return first.where(d == first, first + pd.offsets.MonthBegin(1))


def _month_end_down(d: pd.Series) -> pd.Series:
    first = d.dt.to_period("M").dt.to_timestamp()
    last = first + pd.offsets.MonthEnd(0)
    return last.where(d == last, first - pd.Timedelta(days=1))


def band_amounts(values: pd.Series) -> pd.Series:
    """Each amount as the lower bound of its band (negative amounts fall in the lowest band)."""
    bands = np.asarray(AMOUNT_BANDS, dtype="float64")
    x = values.to_numpy(dtype="float64", na_value=np.nan)
    idx = np.clip(np.searchsorted(bands, x, side="right") - 1, 0, len(bands) - 1)
    return pd.Series(np.where(np.isnan(x), np.nan, bands[idx]), index=values.index, dtype="float64")


def generalise(frame: pd.DataFrame, fields: dict[str, Precision]) -> pd.DataFrame:
    """The non-identifying fields of one data set's frame at the precision ``fields`` allows."""
    out = frame.copy(deep=False)  # each generalised column is replaced, never changed in place
    for col in NON_IDENTIFYING:
        precision = fields.get(col, "drop")
        series = out[col]
        if precision in ("day", "keep"):
            continue
        if precision == "drop":
            out[col] = pd.Series(pd.NA if series.dtype == "boolean" else np.nan, index=out.index).astype(series.dtype)
        elif precision == "month":
            if col == "period_start":
                out[col] = _month_start_up(series).astype(series.dtype)
            else:
                out[col] = _month_end_down(series).astype(series.dtype)
        elif precision == "band":
            out[col] = band_amounts(series)
    return out


def ref_key(home: Home) -> bytes:
    """The record-reference key: an at-rest data key under the KEK that never rotates."""
    return at_rest.data_key(home, REF_KEY_ID, create=True)


def record_refs(key: bytes, councils: pd.Series, record_ids: pd.Series) -> pd.Series:
    """``ref:`` + 16 hex of HMAC-SHA-256(key, council US record id), computed once per distinct pair."""
    pairs = councils.astype(str) + "\x1f" + record_ids.astype(str)
    codes, uniques = pd.factorize(pairs)
    digests = hmac64(key, uniques.tolist()).astype(">i8").tobytes().hex()  # the HMACs' first 8 bytes
    refs = np.array([REF_PREFIX + digests[i:i + 16] for i in range(0, len(digests), 16)], dtype=object)
    return pd.Series(refs[codes] if len(codes) else [], index=record_ids.index, dtype=object)


def is_ref(record_id: str) -> bool:
    return record_id.startswith(REF_PREFIX) and len(record_id) == REF_LENGTH


def _all_refs(record_ids: pd.Series) -> bool:
    """Every record id is a keyed ref already (:func:`is_ref`, by Arrow string kernels)."""
    text = record_ids.astype("string[pyarrow]")
    return bool((text.str.startswith(REF_PREFIX) & (text.str.len() == REF_LENGTH)).fillna(False).all())


def minimise(frame: pd.DataFrame, home: Home, policy: Policy) -> pd.DataFrame:
    """The pseudonymised frame as the store keeps it: generalised fields, record ids as keyed refs.

    ``policy`` comes from the match types (``matching.minimisation.store_policy``): anonymise
    keeps what matching needs and nothing more, but does not read match types itself.
    """
    datasets = frame["dataset"].unique()
    if len(datasets) == 1:  # an extract is one data set
        out = generalise(frame, policy.get(str(datasets[0]), {}))
    else:
        parts = [generalise(part, policy.get(str(dataset), {}))
                 for dataset, part in frame.groupby("dataset", sort=False, dropna=False)]
        out = pd.concat(parts).loc[frame.index] if parts else frame.copy()
    if not _all_refs(out["record_id"]):
        out["record_id"] = record_refs(ref_key(home), out["council"], out["record_id"])
    return out
