"""The match-type rules applied to ground truth: which record pairs *should* be flagged.

These restate the rules of ``councilmatch.matchtype_ids`` on true identities
(``person_id``, ``address_id``) instead of pseudonyms, so evaluation can measure
how many of them the pipeline finds. Periods overlap inclusively; a missing
period end means ongoing. Left is the data set named first in the rule; for the
symmetric rules, the side with the smaller (council, record_id).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from councilmatch import matchtype_ids as mt
from synthetic.dates import overlaps

PAIR_COLUMNS = ("left_council", "left_dataset", "left_record_id", "right_council", "right_dataset", "right_record_id")
FLAG_COLUMNS = ("match_type", *PAIR_COLUMNS)
_KEEP = ["council", "dataset", "record_id", "person_id", "address_id", "period_start", "period_end",
         "discount", "last_used", "date_of_death"]


def _side(records: pd.DataFrame, dataset: str) -> pd.DataFrame:
    keep = _KEEP + (["rk"] if "rk" in records.columns else [])
    return records.loc[(records["dataset"] == dataset).to_numpy(), keep]


def _pairs(left: pd.DataFrame, right: pd.DataFrame, on: list[str]) -> pd.DataFrame:
    return left.merge(right, on=on, suffixes=("_l", "_r"))


def _out(p: pd.DataFrame, match_type: str, symmetric: bool = False) -> pd.DataFrame:
    lc, ld, lr = p["council_l"].to_numpy(), p["dataset_l"].to_numpy(), p["record_id_l"].to_numpy()
    rc, rd, rr = p["council_r"].to_numpy(), p["dataset_r"].to_numpy(), p["record_id_r"].to_numpy()
    if symmetric:
        swap = (lc > rc) | ((lc == rc) & (lr > rr))
        lc, rc = np.where(swap, rc, lc), np.where(swap, lc, rc)
        lr, rr = np.where(swap, rr, lr), np.where(swap, lr, rr)
    out = pd.DataFrame({"match_type": match_type, "left_council": lc, "left_dataset": ld, "left_record_id": lr,
                        "right_council": rc, "right_dataset": rd, "right_record_id": rr})
    if "rk_l" in p.columns:    # row keys, for the generator's own bookkeeping
        out["left_rk"], out["right_rk"] = p["rk_l"].to_numpy(), p["rk_r"].to_numpy()
        if symmetric:
            out.loc[swap, ["left_rk", "right_rk"]] = out.loc[swap, ["right_rk", "left_rk"]].to_numpy()
    return out.drop_duplicates(subset=list(FLAG_COLUMNS)) if symmetric else out


def _overlap(p: pd.DataFrame) -> np.ndarray:
    return overlaps(p["period_start_l"].to_numpy(), p["period_end_l"].to_numpy(),
                    p["period_start_r"].to_numpy(), p["period_end_r"].to_numpy())


def _after_death(p: pd.DataFrame) -> np.ndarray:
    end = p["period_end_l"].to_numpy().astype("datetime64[D]")
    dod = p["date_of_death_r"].to_numpy().astype("datetime64[D]")
    return np.isnat(end) | (end > dod)


def expected_flags(records: pd.DataFrame) -> pd.DataFrame:
    """Every pair of truth records that satisfies a match type's rule."""
    r = records
    out = []
    ten, wl, pay = _side(r, "tenancy"), _side(r, "waiting_list"), _side(r, "payroll")
    p = _pairs(ten, ten, ["person_id"])
    out.append(_out(p[(p["council_l"] != p["council_r"]) & _overlap(p)], mt.TENANCY_TWO_BOROUGHS, symmetric=True))
    p = _pairs(wl, ten, ["person_id"])
    out.append(_out(p[(p["council_l"] != p["council_r"]) & _overlap(p)], mt.WAITING_LIST_TENANCY))
    ct = _side(r, "council_tax")
    ct = ct[ct["discount"].fillna(False).astype(bool)]
    p = _pairs(ct, _side(r, "electoral_register"), ["council", "address_id"])
    p = p.rename(columns={"council": "council_l", "address_id": "address_id_l"}).assign(council_r=lambda d: d["council_l"])
    out.append(_out(p[(p["person_id_l"] != p["person_id_r"]) & _overlap(p)], mt.SPD_OTHER_ADULT))
    p = _pairs(pay, pay, ["person_id"])
    out.append(_out(p[(p["council_l"] != p["council_r"]) & _overlap(p)], mt.PAYROLL_TWO_COUNCILS, symmetric=True))
    dec = _side(r, "deceased")
    p = _pairs(_side(r, "blue_badge"), dec, ["person_id"])
    out.append(_out(p[_after_death(p)], mt.BLUE_BADGE_DECEASED))
    p = _pairs(_side(r, "concessionary_travel"), dec, ["person_id"])
    used_after = p["last_used_l"].to_numpy().astype("datetime64[D]") > p["date_of_death_r"].to_numpy().astype("datetime64[D]")
    out.append(_out(p[_after_death(p) | used_after], mt.CONCESSIONARY_TRAVEL_DECEASED))
    p = _pairs(_side(r, "council_tax_reduction"), pay, ["person_id"])
    out.append(_out(p[_overlap(p)], mt.CTR_PAYROLL))
    flags = pd.concat(out, ignore_index=True)
    return flags.sort_values(list(FLAG_COLUMNS), kind="stable").reset_index(drop=True)
