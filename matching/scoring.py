"""Scoring one shard of a match type's candidate pairs with its trained models: the flags.

    link(match_type, models, inputs, run_id, shard, shards) -> (flags frame, stats)

``same_person``: candidate pairs are scored by the person model; a flag needs
probability ≥ threshold. ``same_address_different_person``: pairs are scored by
the address model (≥ its threshold) and then by a person model trained on the
address-linked pairs, which must say "not the same person" (< person.threshold); with
``left_person_missing`` that is judged among every right record at the left
record's address (:mod:`matching.household`), not pair by pair.
Both then need the scope and every condition of the match type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from councilmatch.flag_ids import flag_ids
from matching import conditions as cond
from matching.blocking import Candidates, iter_candidate_pairs
from matching.comparisons import Pairs
from matching.flags import SHARD_COLUMNS, empty_flags, evidence_columns
from matching.household import household_p_same
from matching.inputs import LinkInputs, in_scope
from matching.matchtype import Linkage, MatchType
from matching.model import FittedModel, score
from matching.training import Models


def vetoed(linkage: Linkage, model: FittedModel, gammas: np.ndarray) -> np.ndarray:
    """Pairs a ``veto`` comparison puts at its "different" level, with no ``veto_unless`` id agreeing."""
    out = np.zeros(len(gammas), dtype=bool)
    if not linkage.veto:
        return out
    index = {c.name: k for k, c in enumerate(model.comparisons)}
    for name in linkage.veto:
        k = index[name]
        out |= gammas[:, k] == len(model.comparisons[k].levels) - 1
    for name in linkage.veto_unless:
        out &= gammas[:, index[name]] != 0
    return out


SCORE_BATCH = 1_000_000  # pairs scored at a time: bounds memory whatever the shard's size


def link(mt: MatchType, models: Models, inp: LinkInputs, run_id: str,
         shard: int = 0, shards: int = 1, cands: Candidates | None = None) -> tuple[pd.DataFrame, dict]:
    """Candidate flags of one shard (flag columns without first_seen/last_seen) and counts.

    ``cands``: score these candidate pairs instead of the shard's (an incremental night's
    pairs touching changed records, see :mod:`matching.incremental`). The shard's own pairs
    are made and scored a part at a time (:func:`iter_candidate_pairs`), so its memory does
    not grow with its blocks."""
    parts = [cands] if cands is not None else iter_candidate_pairs(
        inp.left, inp.right, mt.linkage.blocking, inp.dedupe, shard, shards, SCORE_BATCH)
    stats = {"candidates": 0, "meeting_conditions": 0, "flags": 0}
    found = []
    for part in parts:
        part = in_scope(mt, inp, part)
        stats["candidates"] += len(part)
        for start in range(0, len(part), SCORE_BATCH):
            flags, met = _link_batch(mt, models, inp, run_id, part.li[start:start + SCORE_BATCH],
                                     part.ri[start:start + SCORE_BATCH])
            stats["meeting_conditions"] += met
            if len(flags):
                found.append(flags)
    if not found:
        return empty_flags(SHARD_COLUMNS), stats
    out = pd.concat(found, ignore_index=True)
    stats["flags"] = len(out)
    return out, stats


def _link_batch(mt: MatchType, models: Models, inp: LinkInputs, run_id: str,
                li: np.ndarray, ri: np.ndarray) -> tuple[pd.DataFrame, int]:
    ok = cond.met(mt.conditions, inp.left_frame, inp.right_frame, li, ri)
    li, ri = li[ok], ri[ok]
    met = len(li)
    scores = score(models.linkage, Pairs(inp.left, inp.right, li, ri).compact())
    keep = (scores.probability >= mt.linkage.threshold) & ~vetoed(mt.linkage, models.linkage, scores.gammas)
    comps = list(models.linkage.comparisons)
    gammas, weights = scores.gammas[keep], scores.level_weights[keep]
    prob, mw = scores.probability[keep], scores.match_weight[keep]
    li, ri = li[keep], ri[keep]
    if mt.link == "same_address_different_person" and models.person is not None:
        person = score(models.person, Pairs(inp.left, inp.right, li, ri).compact())
        p_same = person.probability
        if mt.left_person_missing is not None and len(li):
            # judged among all the right records at the left record's address: that posterior
            # holds the pair's own evidence and the others' (the holder is usually one of them),
            # so it alone decides, both ways: no flag where this record is probably the holder
            # after all, a flag where another record there clearly is the holder
            p_same = household_p_same(mt, models.left_person_missing(mt), models.linkage, models.person, inp, li,
                                      person.match_weight)
        other = p_same < mt.person.threshold
        li, ri = li[other], ri[other]
        prob = prob[other] * (1.0 - p_same[other])
        with np.errstate(divide="ignore"):
            mw = np.log2(prob) - np.log2(np.maximum(1.0 - prob, 1e-300))
        gammas = np.hstack([gammas[other], person.gammas[other]])
        weights = np.hstack([weights[other], person.level_weights[other]])
        comps += list(models.person.comparisons)
    if len(li) == 0:
        return empty_flags(SHARD_COLUMNS), met
    lref, rref = inp.left_frame.iloc[li], inp.right_frame.iloc[ri]
    out = pd.DataFrame({
        "left_council": lref["council"].astype(str).to_numpy(),
        "left_dataset": lref["dataset"].astype(str).to_numpy(),
        "left_record_id": lref["record_id"].astype(str).to_numpy(),
        "right_council": rref["council"].astype(str).to_numpy(),
        "right_dataset": rref["dataset"].astype(str).to_numpy(),
        "right_record_id": rref["record_id"].astype(str).to_numpy(),
    })
    out.insert(0, "flag_id", flag_ids(mt.id, out).to_numpy())
    out.insert(1, "run_id", run_id)
    out.insert(2, "match_type", mt.id)
    out["match_probability"] = prob.astype("float64")
    out["match_weight"] = mw.astype("float64")
    labels = [np.array([lv.label for lv in c.levels] + ["missing"], dtype=object)[gammas[:, k]]
              for k, c in enumerate(comps)]  # NULL (-1) indexes the trailing "missing"
    out["evidence"], out["evidence_hash"] = evidence_columns([c.name for c in comps], labels, weights)
    out["priority"] = int(mt.priority)
    out["key_id"] = lref["key_id"].astype(str).to_numpy() if "key_id" in lref else ""
    return out[list(SHARD_COLUMNS)], met
