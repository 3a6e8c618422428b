"""The rules that turn a link into a flag: a small vocabulary match types name in YAML.

Each condition is a vectorised test over a batch of pairs (left and right rows
aligned). A missing ``period_end`` means "still going"; a missing
``period_start`` means "since always". Adding a word here is the only code
change a brand new *kind* of rule needs; new match types just combine these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import numpy as np
import pandas as pd

from councilmatch.contracts import NON_IDENTIFYING

Condition = Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]

_NEVER = np.datetime64("NaT")


def _dates(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), _NEVER, dtype="datetime64[ns]")
    return pd.to_datetime(frame[column], errors="coerce").to_numpy(dtype="datetime64[ns]")


def _end_or_forever(frame: pd.DataFrame) -> np.ndarray:
    end = _dates(frame, "period_end")
    return np.where(np.isnat(end), np.datetime64("2262-01-01", "ns"), end)


def _start_or_always(frame: pd.DataFrame) -> np.ndarray:
    start = _dates(frame, "period_start")
    return np.where(np.isnat(start), np.datetime64("1678-01-01", "ns"), start)


def periods_overlap(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """The two records' periods share at least one day (missing end = ongoing)."""
    return (_start_or_always(left) <= _end_or_forever(right)) & (_start_or_always(right) <= _end_or_forever(left))


def right_date_of_death_before_left_period_end(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """The left record's period ends after the right record's date of death (end must be known)."""
    end, death = _dates(left, "period_end"), _dates(right, "date_of_death")
    return ~np.isnat(end) & ~np.isnat(death) & (end > death)


def left_active_after_right_date_of_death(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """The left record is still active after the right's date of death (end missing or after it)."""
    end, death = _dates(left, "period_end"), _dates(right, "date_of_death")
    return ~np.isnat(death) & (np.isnat(end) | (end > death))


def left_used_after_right_date_of_death(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """The left record was used (``last_used``) after the right's date of death."""
    used, death = _dates(left, "last_used"), _dates(right, "date_of_death")
    return ~np.isnat(used) & ~np.isnat(death) & (used > death)


def left_active_or_used_after_right_date_of_death(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """The left record is still active (end missing or after) or was used after the right's date of death."""
    return left_active_after_right_date_of_death(left, right) | left_used_after_right_date_of_death(left, right)


def left_discount(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """The left record has a discount (e.g. single person discount) applied."""
    if "discount" not in left.columns:
        return np.zeros(len(left), dtype=bool)
    return left["discount"].fillna(False).astype(bool).to_numpy()


CONDITIONS: dict[str, Condition] = {
    f.__name__: f
    for f in (
        periods_overlap,
        right_date_of_death_before_left_period_end,
        left_active_after_right_date_of_death,
        left_used_after_right_date_of_death,
        left_active_or_used_after_right_date_of_death,
        left_discount,
    )
}


def met(conditions: Sequence[str], left: pd.DataFrame, right: pd.DataFrame, li: np.ndarray,
        ri: np.ndarray) -> np.ndarray:
    """Which pairs (rows ``li`` of ``left``, ``ri`` of ``right``) meet every condition named."""
    ok = np.ones(len(li), dtype=bool)
    if not len(conditions) or not len(li):
        return ok
    lf = left[[c for c in NON_IDENTIFYING if c in left.columns]].iloc[li].reset_index(drop=True)
    rf = right[[c for c in NON_IDENTIFYING if c in right.columns]].iloc[ri].reset_index(drop=True)
    for name in conditions:
        ok &= CONDITIONS[name](lf, rf)
    return ok


def describe(name: str) -> str:
    return (CONDITIONS[name].__doc__ or name).strip()
