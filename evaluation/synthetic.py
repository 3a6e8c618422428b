"""Synthetic boroughs: a home's published flags scored against the generator's truth/.

The only code that reads truth/; reachable from the CLI's evaluation command and tests.
Flags carry keyed record references (anonymise.minimise), so truth's clear ids are mapped
to them first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from anonymise import at_rest
from anonymise.minimise import record_refs, ref_key
from councilmatch.home import Home
from evaluation.labelled import Metrics, score_pairs

_REFS = ["left_council", "left_dataset", "left_record_id", "right_council", "right_dataset", "right_record_id"]


def _as_refs(home: Home, frame: pd.DataFrame) -> pd.DataFrame:
    """Truth's clear record ids as the store's keyed references (anonymise.minimise), as flags carry them."""
    key = ref_key(home)
    frame = frame.copy()
    for side in ("left", "right"):
        frame[f"{side}_record_id"] = record_refs(key, frame[f"{side}_council"], frame[f"{side}_record_id"])
    return frame


def _pair_keys(frame: pd.DataFrame) -> set:
    """(match_type, unordered pair of record references): orientation-free."""
    f = frame[["match_type"] + _REFS].astype(str)
    left = list(zip(f.left_council, f.left_dataset, f.left_record_id))
    right = list(zip(f.right_council, f.right_dataset, f.right_record_id))
    return {(mt, *sorted((l, r))) for mt, l, r in zip(f.match_type, left, right)}


@dataclass
class SyntheticReport:
    per_type: dict[str, Metrics]
    overall: Metrics
    near_misses_flagged: int
    near_misses: int
    flags_file: str


def evaluate_synthetic(home: Home) -> SyntheticReport:
    started = time.perf_counter()
    files = sorted(home.flags.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no flags in {home.flags}: run the pipeline first")
    expected_path = home.truth / "expected_flags.parquet"
    if not expected_path.exists():
        raise FileNotFoundError(f"{expected_path} not found: generate the home with `councilmatch generate`")

    flags = at_rest.read_frame(files[-1], home=home)  # flags are encrypted at rest
    expected = _as_refs(home, pd.read_parquet(expected_path))
    pred, truth = _pair_keys(flags), _pair_keys(expected)
    per_type = {}
    for mt in sorted(set(expected["match_type"].astype(str)) | set(flags["match_type"].astype(str))):
        per_type[mt] = score_pairs({p for p in pred if p[0] == mt}, {t for t in truth if t[0] == mt})
    near, flagged = 0, 0
    scen_path = home.truth / "scenarios.parquet"
    if scen_path.exists():
        scen = pd.read_parquet(scen_path)
        scen = scen[scen["kind"].astype(str) == "near_miss"]
        scen = _as_refs(home, scen) if set(_REFS) <= set(scen.columns) else scen
        if set(_REFS) <= set(scen.columns) and "match_type" in scen.columns:
            nm = _pair_keys(scen)
            near, flagged = len(nm), len(nm & pred)
    overall = score_pairs(pred, truth, time.perf_counter() - started)
    return SyntheticReport(per_type, overall, flagged, near, str(files[-1]))
