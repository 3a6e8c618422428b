"""Day arithmetic on numpy ``datetime64[D]`` arrays (NaT = missing / ongoing)."""

from __future__ import annotations

from datetime import date

import numpy as np

NAT = np.datetime64("NaT", "D")
FAR_FUTURE = np.datetime64("2999-12-31", "D")
DAYS_PER_YEAR = 365.25


def day(d: date | str) -> np.datetime64:
    return np.datetime64(d, "D")


def uniform_days(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A day drawn uniformly from [lo, hi] per element (hi < lo gives lo)."""
    lo = np.asarray(lo, dtype="datetime64[D]")
    hi = np.asarray(hi, dtype="datetime64[D]")
    span = np.maximum((hi - lo).astype(np.int64), 0)
    off = np.floor(rng.random(np.broadcast(lo, hi).shape) * (span + 1)).astype(np.int64)
    return lo + off.astype("timedelta64[D]")


def years(n: float | np.ndarray) -> np.ndarray:
    """A duration of ``n`` years in days."""
    return np.round(np.asarray(n, dtype=float) * DAYS_PER_YEAR).astype("timedelta64[D]")


def days(n: int | np.ndarray) -> np.ndarray:
    return np.asarray(n, dtype=np.int64).astype("timedelta64[D]")


def open_end(end: np.ndarray) -> np.ndarray:
    """Missing period end read as 'ongoing'."""
    end = np.asarray(end, dtype="datetime64[D]")
    return np.where(np.isnat(end), FAR_FUTURE, end)


def overlaps(start_a: np.ndarray, end_a: np.ndarray, start_b: np.ndarray, end_b: np.ndarray) -> np.ndarray:
    """Periods overlap (inclusive of both ends; a missing end is ongoing)."""
    return (np.asarray(start_a, "datetime64[D]") <= open_end(end_b)) & (np.asarray(start_b, "datetime64[D]") <= open_end(end_a))


def age_on(dob: np.ndarray, on: np.datetime64 | np.ndarray) -> np.ndarray:
    """Age in whole-ish years (days / 365.25), good enough for eligibility rules."""
    return ((np.asarray(on, "datetime64[D]") - np.asarray(dob, "datetime64[D]")).astype(np.int64) / DAYS_PER_YEAR)
