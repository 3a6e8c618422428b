"""Flags: evidence an investigator can read, and the union of a run's shards (ids: ``councilmatch.flag_ids``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from anonymise import at_rest
from councilmatch.contracts import FLAG_COLUMNS
from councilmatch.flag_ids import evidence_hash
from councilmatch.home import Home

SHARD_COLUMNS = tuple(c for c in FLAG_COLUMNS if c not in ("first_seen", "last_seen"))


def evidence_columns(names: list[str], labels: list[np.ndarray], weights: np.ndarray) -> tuple[list[str], list[str]]:
    """(evidence JSON, evidence hash) per flag. The hash covers levels only, so a re-fitted
    model (slightly different weights) does not re-open a flag an investigator closed."""
    evidence, hashes = [], []
    for i in range(len(weights)):
        levels = {n: str(lab[i]) for n, lab in zip(names, labels)}
        evidence.append(json.dumps(
            {n: {"level": levels[n], "weight": round(float(weights[i, k]), 3)} for k, n in enumerate(names)},
            sort_keys=True))
        hashes.append(evidence_hash(levels))
    return evidence, hashes


def write_parquet_atomic(frame: pd.DataFrame, path: Path, home: Home | None = None) -> Path:
    """Shards and flags are encrypted at rest (anonymise.at_rest); written atomically."""
    return at_rest.write_frame(path, frame, home)


def read_parquet_at_rest(path: Path, home: Home | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """Decrypt a shard or flags file written by :func:`write_parquet_atomic`."""
    return at_rest.read_frame(path, columns=columns, home=home)


def empty_flags(columns: tuple[str, ...] = FLAG_COLUMNS) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    for c in ("match_probability", "match_weight"):
        if c in frame:
            frame[c] = frame[c].astype("float64")
    if "priority" in frame:
        frame["priority"] = frame["priority"].astype("int64")
    return frame


def first_seen_dates(flags_dir: Path, run_id: str, home: Home | None = None) -> pd.Series:
    """flag_id -> first_seen over every earlier run's flags file (earliest wins)."""
    seen: list[pd.DataFrame] = []
    for path in sorted(flags_dir.glob("*.parquet")):
        if path.stem >= run_id:
            continue
        try:
            earlier = read_parquet_at_rest(path, home, columns=["flag_id", "first_seen"])
        except Exception:  # noqa: BLE001 - a damaged old file must not stop tonight's run
            continue
        seen.append(earlier)
    if not seen:
        return pd.Series([], dtype=object)
    allseen = pd.concat(seen, ignore_index=True).dropna()
    return allseen.groupby("flag_id")["first_seen"].min()
