"""Linkage attack on the clear fields: which records do they single out?

An insider who knows when someone's tenancy started, when they died or what they are paid
finds their record if that value (within its council and data set) belongs to one record
only. A record id kept as the council's own id singles out every record by itself.
"""

from __future__ import annotations

import pandas as pd

#: Quasi-identifier sets scored: each within its council and data set unless it names them.
QUASI_IDENTIFIERS: tuple[tuple[str, ...], ...] = (
    ("period_start",),
    ("period_end",),
    ("date_of_death",),
    ("last_used",),
    ("amount",),
    ("period_start", "period_end"),
    ("period_start", "amount"),
)
CONTEXT = ("council", "dataset")


def unique_share(frame: pd.DataFrame, fields: tuple[str, ...]) -> tuple[float, int]:
    """(share of the records holding ``fields`` that are alone with their values in their council
    and data set, number of those records); (0.0, 0) if no record holds them."""
    present = [f for f in fields if f in frame.columns]
    if len(present) != len(fields):
        return 0.0, 0
    rows = frame.dropna(subset=list(fields))
    if rows.empty:
        return 0.0, 0
    sizes = rows.groupby(list(CONTEXT) + list(fields), dropna=False, observed=True)[fields[0]].transform("size")
    return float((sizes == 1).mean()), len(rows)


def clear_field_attack(frame: pd.DataFrame) -> list[dict]:
    """One row per quasi-identifier set: share of records it singles out."""
    out = []
    for fields in QUASI_IDENTIFIERS:
        share, n = unique_share(frame, fields)
        out.append({"fields": "+".join(fields), "records_holding": n, "singled_out": share})
    return out


def record_id_attack(store_ids: pd.Series, council_ids: pd.Series) -> float:
    """Share of store rows whose record id is the council's own record id (aligned Series)."""
    if len(store_ids) == 0:
        return 0.0
    return float((store_ids.astype(str).to_numpy() == council_ids.astype(str).to_numpy()).mean())
