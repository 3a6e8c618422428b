"""Synthetic flags (FLAG_COLUMNS) for tests, screenshots and the load benchmark (never production).

Flag ids and evidence hashes use the one recipe matching uses (``councilmatch.flag_ids``), so a demo flag
looks exactly like a real one to the review store.

Vectorised so 100k flags take well under a second; record ids look like a
council's own references and are not identifiers of real people.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from councilmatch import matchtype_ids as mt
from councilmatch.flag_ids import evidence_hash, flag_ids
from councilmatch.councils import CENTRAL

_DATASETS = {
    mt.TENANCY_TWO_BOROUGHS: ("tenancy", "tenancy", True),
    mt.WAITING_LIST_TENANCY: ("waiting_list", "tenancy", False),
    mt.SPD_OTHER_ADULT: ("council_tax", "electoral_register", False),
    mt.PAYROLL_TWO_COUNCILS: ("payroll", "payroll", True),
    mt.BLUE_BADGE_DECEASED: ("blue_badge", "deceased", False),
    mt.CONCESSIONARY_TRAVEL_DECEASED: ("concessionary_travel", "deceased", False),
    mt.CTR_PAYROLL: ("council_tax_reduction", "payroll", False),
}
_COMPARISONS = {
    "surname": ["exact", "jaro_winkler>0.92", "else"],
    "forenames": ["exact", "nickname", "initial", "else"],
    "dob": ["exact", "transposed", "year", "else"],
    "postcode": ["exact", "sector", "else"],
    "nino": ["exact", "missing", "else"],
}
_WEIGHTS = {"exact": 6.5, "jaro_winkler>0.92": 4.1, "nickname": 3.2, "initial": 1.1, "transposed": 3.0,
            "year": 0.8, "sector": 1.4, "missing": 0.0, "else": -4.2}


def make_flags(n: int, councils: list[str], run_id: str = "2026-11-24", seed: int = 0,
               run_date: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    types = np.array(list(_DATASETS))
    match_type = types[rng.integers(0, len(types), n)]
    left = np.array(councils)[rng.integers(0, len(councils), n)]
    right = np.array(councils)[rng.integers(0, len(councils), n)]
    cross = pd.Series(match_type).map({k: v[2] for k, v in _DATASETS.items()}).to_numpy()
    if len(councils) > 1:  # "two boroughs" types: never the same council on both sides
        pos = pd.Series(left).map({c: i for i, c in enumerate(councils)}).to_numpy()
        other = np.array(councils)[(pos + 1 + rng.integers(0, len(councils) - 1, n)) % len(councils)]
        right = np.where(cross, other, right)
    same_council = match_type == mt.SPD_OTHER_ADULT
    right = np.where(same_council, left, right)
    deceased = np.isin(match_type, [mt.BLUE_BADGE_DECEASED, mt.CONCESSIONARY_TRAVEL_DECEASED])
    right = np.where(deceased, CENTRAL, right)
    left_ds = pd.Series(match_type).map({k: v[0] for k, v in _DATASETS.items()}).to_numpy()
    right_ds = pd.Series(match_type).map({k: v[1] for k, v in _DATASETS.items()}).to_numpy()
    idx = np.arange(n)
    left_id = np.char.add("L", np.char.zfill(idx.astype(str), 7))
    right_id = np.char.add("R", np.char.zfill(((idx * 7919) % 10_000_000).astype(str), 7))
    levels = {k: np.array(v)[rng.integers(0, len(v), n)] for k, v in _COMPARISONS.items()}
    weights = {k: pd.Series(v).map(_WEIGHTS).to_numpy() for k, v in levels.items()}
    prior = 2.0
    total = prior + sum(weights.values())
    prob = 1.0 / (1.0 + 2.0 ** (-total))
    evidence = [json.dumps({k: {"level": str(levels[k][i]), "weight": float(weights[k][i])} for k in _COMPARISONS})
                for i in range(n)]
    ev_hash = [evidence_hash({k: str(levels[k][i]) for k in _COMPARISONS}) for i in range(n)]
    refs = pd.DataFrame({"left_council": left, "left_dataset": left_ds, "left_record_id": left_id,
                         "right_council": right, "right_dataset": right_ds, "right_record_id": right_id})
    date = run_date or run_id[:10]
    return pd.DataFrame({
        "flag_id": flag_ids(pd.Series(match_type), refs).to_numpy(), "run_id": run_id, "match_type": match_type,
        "left_council": left, "left_dataset": left_ds, "left_record_id": left_id,
        "right_council": right, "right_dataset": right_ds, "right_record_id": right_id,
        "match_probability": prob, "match_weight": total, "evidence": evidence, "evidence_hash": ev_hash,
        "priority": np.select([prob > 0.99, prob > 0.9], [1, 2], 3).astype("int64"),
        "key_id": "k1", "first_seen": date, "last_seen": date,
    })
