"""Linking one match type: train its model once, then score any shard of its candidate pairs.

    train(match_type, inputs)                       -> Models   (independent of sharding)
    link(match_type, models, inputs, run_id, shard, shards) -> (flags frame, stats)

``same_person``: candidate pairs are scored by the person model; a flag needs
probability ≥ threshold. ``same_address_different_person``: pairs are scored by
the address model (≥ its threshold) and then by a person model trained on the
address-linked pairs, which must say "not the same person" (< person.threshold);
with ``left_person_missing`` also when judged among every right record at the
left record's address (:func:`household_p_same`).
Both then need the scope and every condition of the match type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from recordlinkage.index import Random

from councilmatch.contracts import NON_IDENTIFYING
from matching import conditions as cond
from matching.blocking import Candidates, candidate_pairs, expected_pairs
from matching.comparisons import NULL, Comparison, Pairs, Side
from matching.flags import SHARD_COLUMNS, empty_flags, evidence_columns, flag_ids
from matching.matchtype import Linkage, MatchType
from matching.model import (FittedModel, comparison_vectors, fit_em, level_frequencies, score,
                            tf_tables)

RANDOM_PAIRS = 200_000  # pairs drawn at random to measure u
TRAIN_PAIRS = 1_000_000  # cap on the candidate pairs EM trains on (a deterministic sample)
SEED = 20240611


@dataclass
class Models:
    linkage: FittedModel
    person: FittedModel | None = None

    def to_json(self) -> dict:
        out = self.linkage.to_json()
        if self.person is not None:
            out["person"] = self.person.to_json()
        return out


class LinkInputs:
    """The two sides of a match type, as :class:`Side` s (one shared Side when deduplicating)."""

    def __init__(self, mt: MatchType, data: dict[str, pd.DataFrame]):
        for ds in (mt.left, mt.right):
            if ds not in data or data[ds].empty:
                raise LookupError(f"match type {mt.id}: no pseudonymised records for data set {ds!r}")
        self.left_frame = data[mt.left].reset_index(drop=True)
        self.right_frame = self.left_frame if mt.dedupe else data[mt.right].reset_index(drop=True)
        self.left = Side(self.left_frame)
        self.right = self.left if mt.dedupe else Side(self.right_frame)
        self.dedupe = mt.dedupe
        councils = pd.concat([self.left_frame["council"], self.right_frame["council"]]).astype(str)
        cats = pd.CategoricalDtype(sorted(councils.unique()))
        self.left_council = self.left_frame["council"].astype(str).astype(cats).cat.codes.to_numpy()
        self.right_council = self.right_frame["council"].astype(str).astype(cats).cat.codes.to_numpy()
        if mt.dedupe:
            # rank by (council, record_id): the left of a pair is the smaller reference
            order = self.left_frame.sort_values(["council", "record_id"], kind="stable").index.to_numpy()
            self.rank = np.empty(len(order), dtype=np.int64)
            self.rank[order] = np.arange(len(order))

    def frames(self) -> list[pd.DataFrame]:
        return [self.left_frame] if self.dedupe else [self.left_frame, self.right_frame]


def _in_scope(mt: MatchType, inp: LinkInputs, cands: Candidates) -> Candidates:
    li, ri, rule = cands.li, cands.ri, cands.rule
    if inp.dedupe:
        swap = inp.rank[li] > inp.rank[ri]
        li, ri = np.where(swap, ri, li), np.where(swap, li, ri)
    same = inp.left_council[li] == inp.right_council[ri]
    keep = {"different_councils": ~same, "same_council": same, "any": np.ones(len(li), bool)}[mt.scope]
    return Candidates(li[keep], ri[keep], rule[keep])


def _random_pairs(inp: LinkInputs, n: int) -> Pairs:
    total = inp.left.n * (inp.left.n - 1) // 2 if inp.dedupe else inp.left.n * inp.right.n
    n = int(min(n, max(total, 0)))
    if n == 0:
        return Pairs(inp.left, inp.right, np.zeros(0, np.int64), np.zeros(0, np.int64))
    lf = pd.DataFrame(index=pd.RangeIndex(inp.left.n))
    idx = (Random(n, random_state=SEED).index(lf) if inp.dedupe
           else Random(n, random_state=SEED).index(lf, pd.DataFrame(index=pd.RangeIndex(inp.right.n))))
    return Pairs(inp.left, inp.right, idx.get_level_values(0).to_numpy(np.int64),
                 idx.get_level_values(1).to_numpy(np.int64))


def _all_pairs(inp: LinkInputs) -> int:
    return inp.left.n * (inp.left.n - 1) // 2 if inp.dedupe else inp.left.n * inp.right.n


def _fit(comparisons: list[Comparison], linkage: Linkage, inp: LinkInputs, train: Pairs,
         sample_fraction: float = 1.0, m_fixed: list[np.ndarray] | None = None) -> FittedModel:
    """EM on the training candidates gives m (unless ``m_fixed``, e.g. from the pool), u and λ
    among candidates; with ``u_from: random`` u is replaced by its value on random pairs and
    λ by the expected matches over all pairs."""
    n_levels = [len(c.levels) for c in comparisons]
    rand = _random_pairs(inp, RANDOM_PAIRS)
    u_random = level_frequencies(comparison_vectors(comparisons, rand), n_levels)
    m0 = m_fixed or [np.array([lv.m_start for lv in c.levels]) for c in comparisons]
    m, u, lam, its = fit_em(comparison_vectors(comparisons, train), n_levels, m0, u_random,
                            estimate_m=m_fixed is None)
    if linkage.u_from == "random" and len(train):
        expected_matches = lam * len(train) / sample_fraction
        lam = float(np.clip(expected_matches / max(_all_pairs(inp), 1), 1e-12, 0.5))
        u = u_random
    model = FittedModel(comparisons, m, u, lam, its, len(train), len(rand))
    model.tf = tf_tables(comparisons, inp.frames()) if linkage.tf_adjust else {}
    return model


def _training_candidates(mt: MatchType, inp: LinkInputs, linkage: Linkage | None = None
                         ) -> tuple[Candidates, float]:
    """All candidate pairs, or a deterministic sample of whole blocks when there are too many
    (then also the share of blocks sampled)."""
    rules = (linkage or mt.linkage).blocking
    total = expected_pairs(inp.left, inp.right, rules, inp.dedupe)
    parts = max(1, math.ceil(total / TRAIN_PAIRS))
    return _in_scope(mt, inp, candidate_pairs(inp.left, inp.right, rules, inp.dedupe, 0, parts)), 1.0 / parts


POOL = "pool"


def pool_inputs(data: dict[str, pd.DataFrame]) -> LinkInputs:
    """Every data set's records together, deduplicated against each other: the pool m learns from."""
    frames = [f for f in data.values() if len(f)]
    mt = MatchType.model_construct(id=POOL, left=POOL, right=POOL, scope="any")
    return LinkInputs(mt, {POOL: pd.concat(frames, ignore_index=True)})


def pooled_m(linkage: Linkage, pool: LinkInputs) -> list[np.ndarray]:
    """m per comparison level, learned over candidate pairs of the pooled records.

    As in Splink, one EM per blocking rule, and a rule only teaches the m of comparisons
    it does not block on (pairs that must agree on a date of birth say nothing about how
    often one person's dates of birth disagree). A rule that leaves fewer than three
    comparisons free and mostly present teaches nothing: two features cannot tell two
    classes apart. Each
    comparison's m is the match-weighted mean over the rules that may teach it; one no
    rule teaches keeps the EM of all rules together.
    """
    cache = pool.__dict__.setdefault("_pooled_m", {})
    key = (tuple(map(tuple, linkage.blocking)), tuple(c.model_dump_json() for c in linkage.comparisons))
    if key not in cache:  # match types with the same person linkage share one estimate
        cache[key] = _pooled_m(linkage, pool)
    return [m.copy() for m in cache[key]]


def _pooled_m(linkage: Linkage, pool: LinkInputs) -> list[np.ndarray]:
    comparisons = linkage.built()
    n_levels = [len(c.levels) for c in comparisons]
    u0 = level_frequencies(comparison_vectors(comparisons, _random_pairs(pool, RANDOM_PAIRS)), n_levels)
    m0 = [np.array([lv.m_start for lv in c.levels]) for c in comparisons]
    sums = [np.zeros(n) for n in n_levels]
    weights = np.zeros(len(comparisons))
    all_gammas = []
    for rule in linkage.blocking:
        one = Linkage.model_construct(**{**dict(linkage), "blocking": [rule]})
        mt = MatchType.model_construct(id=POOL, left=POOL, right=POOL, scope="any", linkage=one)
        cands, _ = _training_candidates(mt, pool)
        if len(cands) == 0:
            continue
        gammas = comparison_vectors(comparisons, Pairs(pool.left, pool.right, cands.li, cands.ri))
        all_gammas.append(gammas)
        m, _, lam, _ = fit_em(gammas, n_levels, m0, u0)
        free = [k for k, comp in enumerate(comparisons) if not comp.columns() & set(rule)]
        informative = [k for k in free if (gammas[:, k] != NULL).mean() >= 0.5]
        if len(informative) < 3:
            continue
        for k in free:
            sums[k] += lam * len(cands) * m[k]
            weights[k] += lam * len(cands)
    if not all_gammas:
        return m0
    fallback, _, _, _ = fit_em(np.vstack(all_gammas), n_levels, m0, u0)
    return [sums[k] / weights[k] if weights[k] > 0 else fallback[k] for k in range(len(comparisons))]


def train(mt: MatchType, inp: LinkInputs, pool: LinkInputs | None = None) -> Models:
    """Fit the match type's model(s). ``pool``: all records (see :func:`pool_inputs`), used when
    a linkage takes m from the pool; without it, m comes from the match type's own pairs."""
    cands, fraction = _training_candidates(mt, inp)
    pairs = Pairs(inp.left, inp.right, cands.li, cands.ri)
    m = pooled_m(mt.linkage, pool) if pool is not None and mt.linkage.m_from == "pool" else None
    linkage_model = _fit(mt.linkage.built(), mt.linkage, inp, pairs, fraction, m)
    if mt.link == "same_person":
        return Models(linkage_model)
    # same address, different person: the person model learns on address-linked pairs
    linked = score(linkage_model, pairs).probability >= mt.linkage.threshold
    person_pairs = Pairs(inp.left, inp.right, cands.li[linked], cands.ri[linked])
    m = pooled_m(mt.person, pool) if pool is not None and mt.person.m_from == "pool" else None
    return Models(linkage_model, _fit(mt.person.built(), mt.person, inp, person_pairs, fraction, m))


def load_models(mt: MatchType, data: dict, inp: LinkInputs) -> Models:
    linkage = FittedModel.from_json(data, mt.linkage.built())
    linkage.tf = tf_tables(linkage.comparisons, inp.frames()) if mt.linkage.tf_adjust else {}
    person = None
    if mt.person is not None and "person" in data:
        person = FittedModel.from_json(data["person"], mt.person.built())
        person.tf = tf_tables(person.comparisons, inp.frames()) if mt.person.tf_adjust else {}
    return Models(linkage, person)


def _condition_frames(inp: LinkInputs, li: np.ndarray, ri: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    lcols = [c for c in NON_IDENTIFYING if c in inp.left_frame.columns]
    rcols = [c for c in NON_IDENTIFYING if c in inp.right_frame.columns]
    return (inp.left_frame[lcols].iloc[li].reset_index(drop=True),
            inp.right_frame[rcols].iloc[ri].reset_index(drop=True))


def household_p_same(mt: MatchType, models: Models, inp: LinkInputs, li: np.ndarray,
                     weight: np.ndarray) -> np.ndarray:
    """P(same person) of address-linked pairs (left rows ``li``, person match weights ``weight``),
    judged among all the right records at each left record's address.

    The left record's own person is usually on one of those right records (a discount
    holder is on the register at home): with probability 1 - q (q = ``left_person_missing``)
    it is one of the k right records there, each a priori equally, else none. So with the
    person model's likelihood ratio LR_j of each right record (its evidence without the
    prior), P(record j is the left record's person) = (1-q)/k·LR_j / (q + (1-q)/k·Σ LR).
    When no right record at the address looks like the left record's person, the closest
    one, e.g. the holder with a mistyped forename and no date of birth, keeps a high
    probability; when one clearly is, every other record there is someone else. The
    right records of one left record can lie in other shards, so they are found afresh.
    """
    q = float(mt.left_person_missing)
    rows = np.unique(li)
    cands = _in_scope(mt, inp, candidate_pairs(inp.left, inp.right, mt.linkage.blocking, inp.dedupe,
                                               left_rows=rows))
    pairs = Pairs(inp.left, inp.right, cands.li, cands.ri)
    linked = score(models.linkage, pairs).probability >= mt.linkage.threshold
    prior = math.log2(models.person.lam / (1 - models.person.lam))
    house = Pairs(inp.left, inp.right, cands.li[linked], cands.ri[linked])
    lr_all = np.exp2(np.clip(score(models.person, house).match_weight - prior, -500, 500))
    k = np.bincount(house.li, minlength=inp.left.n)[li]
    total = np.bincount(house.li, weights=lr_all, minlength=inp.left.n)[li]
    lr = np.exp2(np.clip(weight - prior, -500, 500))
    k, total = np.maximum(k, 1), np.maximum(total, lr)  # the pair itself is always among them
    share = (1 - q) / k
    return share * lr / (q + share * total)


SCORE_BATCH = 1_000_000  # pairs scored at a time: bounds memory whatever the shard's size


def link(mt: MatchType, models: Models, inp: LinkInputs, run_id: str,
         shard: int = 0, shards: int = 1) -> tuple[pd.DataFrame, dict]:
    """Candidate flags of one shard (flag columns without first_seen/last_seen) and counts."""
    cands = _in_scope(mt, inp, candidate_pairs(inp.left, inp.right, mt.linkage.blocking, inp.dedupe,
                                               shard, shards))
    stats = {"candidates": len(cands), "meeting_conditions": 0, "flags": 0}
    parts = []
    for start in range(0, len(cands), SCORE_BATCH):
        flags, met = _link_batch(mt, models, inp, run_id, cands.li[start:start + SCORE_BATCH],
                                 cands.ri[start:start + SCORE_BATCH])
        stats["meeting_conditions"] += met
        if len(flags):
            parts.append(flags)
    if not parts:
        return empty_flags(SHARD_COLUMNS), stats
    out = pd.concat(parts, ignore_index=True)
    stats["flags"] = len(out)
    return out, stats


def _link_batch(mt: MatchType, models: Models, inp: LinkInputs, run_id: str,
                li: np.ndarray, ri: np.ndarray) -> tuple[pd.DataFrame, int]:
    if len(li) and mt.conditions:
        lf, rf = _condition_frames(inp, li, ri)
        ok = np.ones(len(li), dtype=bool)
        for name in mt.conditions:
            ok &= cond.CONDITIONS[name](lf, rf)
        li, ri = li[ok], ri[ok]
    met = len(li)
    pairs = Pairs(inp.left, inp.right, li, ri)
    scores = score(models.linkage, pairs)
    keep = scores.probability >= mt.linkage.threshold
    comps = list(models.linkage.comparisons)
    gammas, weights = scores.gammas[keep], scores.level_weights[keep]
    prob, mw = scores.probability[keep], scores.match_weight[keep]
    li, ri = li[keep], ri[keep]
    if mt.link == "same_address_different_person" and models.person is not None:
        person = score(models.person, Pairs(inp.left, inp.right, li, ri))
        other = person.probability < mt.person.threshold
        if mt.left_person_missing is not None and other.any():
            # judged among the left record's other right records too: no flag where this one
            # is probably the left record's own person after all
            household = household_p_same(mt, models, inp, li[other], person.match_weight[other])
            other[np.flatnonzero(other)[household >= mt.person.threshold]] = False
        li, ri = li[other], ri[other]
        prob = prob[other] * (1.0 - person.probability[other])
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
