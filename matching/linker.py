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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from councilmatch.contracts import NON_IDENTIFYING
from councilmatch.flag_ids import flag_ids
from matching import conditions as cond
from matching.blocking import Candidates, candidate_pairs, expected_pairs
from matching.comparisons import NULL, Pairs, Side
from matching.em import fit_em, project_monotone
from matching.flags import SHARD_COLUMNS, empty_flags, evidence_columns
from matching.matchtype import Linkage, MatchType
from matching.model import FittedModel, agreement_patterns, comparison_vectors, score, tf_tables
from matching.em import fit_lambda_one_to_one
from matching.training import (DegenerateFit, FitCheck, caps_for, check_fit, deterministic_matches, estimate_m,
                               estimate_u, random_pairs)

__all__ = ["DegenerateFit", "LinkInputs", "Models", "TrainingContext", "link", "load_models", "train"]

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

    @property
    def records(self) -> int:
        return self.left.n if self.dedupe else max(self.left.n, self.right.n)

    @property
    def all_pairs(self) -> int:
        return self.left.n * (self.left.n - 1) // 2 if self.dedupe else self.left.n * self.right.n


def _in_scope(mt: MatchType, inp: LinkInputs, cands: Candidates) -> Candidates:
    li, ri, rule = cands.li, cands.ri, cands.rule
    if inp.dedupe:
        swap = inp.rank[li] > inp.rank[ri]
        li, ri = np.where(swap, ri, li), np.where(swap, li, ri)
    same = inp.left_council[li] == inp.right_council[ri]
    keep = {"different_councils": ~same, "same_council": same, "any": np.ones(len(li), bool)}[mt.scope]
    return Candidates(li[keep], ri[keep], rule[keep])


def _training_candidates(mt: MatchType, inp: LinkInputs, rules: list[list[str]], cap: int
                         ) -> tuple[Candidates, float]:
    """All candidate pairs of ``rules``, or a deterministic sample of whole blocks when there
    are more than ``cap`` (then also the share of blocks sampled)."""
    total = expected_pairs(inp.left, inp.right, rules, inp.dedupe)
    parts = max(1, math.ceil(total / cap))
    return _in_scope(mt, inp, candidate_pairs(inp.left, inp.right, rules, inp.dedupe, 0, parts)), 1.0 / parts


POOL = "pool"


def pool_inputs(data: dict[str, pd.DataFrame]) -> LinkInputs:
    """Every data set's records together, deduplicated against each other: the pool m learns from."""
    frames = [f for f in data.values() if len(f)]
    mt = MatchType.model_construct(id=POOL, left=POOL, right=POOL, scope="any")
    return LinkInputs(mt, {POOL: pd.concat(frames, ignore_index=True)})


@dataclass
class TrainingContext:
    """What one run's training shares between match types: the pool and its learned m.

    Match types with the same person linkage share one pooled estimate; the context is
    made per run (no process-wide cache), so two runs never see each other's models.
    """

    pool: LinkInputs | None = None
    pooled_m: dict = field(default_factory=dict)

    def m_from_pool(self, linkage: Linkage) -> tuple[list[np.ndarray], list[str]]:
        key = (tuple(map(tuple, linkage.blocking)), tuple(c.model_dump_json() for c in linkage.comparisons))
        if key not in self.pooled_m:
            pool = self.pool
            mt = MatchType.model_construct(id=POOL, left=POOL, right=POOL, scope="any")
            self.pooled_m[key] = _estimate_m(mt, linkage, pool, _u_of(linkage, pool)[0])
        m, untaught = self.pooled_m[key]
        return [x.copy() for x in m], list(untaught)


def _u_of(linkage: Linkage, inp: LinkInputs) -> tuple[list[np.ndarray], Pairs]:
    settings = linkage.training_settings()
    comps = linkage.built()
    rand = random_pairs(inp.left, inp.right, inp.dedupe, settings.random_pairs, settings.seed)
    return estimate_u(comps, rand, comparison_vectors(comps, rand), inp.dedupe, seed=settings.seed), rand


def _estimate_m(mt: MatchType, linkage: Linkage, inp: LinkInputs, u: list[np.ndarray]
                ) -> tuple[list[np.ndarray], list[str]]:
    settings = linkage.training_settings()
    comps = linkage.built()

    def pairs_of_rule(rule: list[str]) -> Pairs:
        cands, _ = _training_candidates(mt, inp, [rule], settings.max_training_pairs)
        return Pairs(inp.left, inp.right, cands.li, cands.ri)

    return estimate_m(comps, linkage.blocking, u, linkage.m_starts(), pairs_of_rule, settings)


def fit_linkage(mt: MatchType, linkage: Linkage, inp: LinkInputs, train_pairs: Pairs, fraction: float,
                ctx: TrainingContext | None = None) -> FittedModel:
    """A fitted, bounded and checked model of one linkage (see :mod:`matching.training`)."""
    settings = linkage.training_settings()
    comps = linkage.built()
    n_levels = [len(c.levels) for c in comps]
    u, rand = _u_of(linkage, inp)
    train_gammas = comparison_vectors(comps, train_pairs)
    if linkage.u_from == "em":
        # u among the candidates themselves (e.g. people at one address, where random pairs
        # say nothing about how two members of a household differ): m, u and λ by plain EM
        m, u, lam, _ = fit_em(train_gammas, n_levels, linkage.m_starts(), u)
        untaught: list[str] = []
        expected = lam * len(train_pairs)
    else:
        if ctx is not None and ctx.pool is not None and linkage.m_from == "pool":
            m, untaught = ctx.m_from_pool(linkage)
        else:
            m, untaught = _estimate_m(mt, linkage, inp, u)
        expected = _expected_matches(train_pairs, train_gammas, m, u, inp.dedupe, settings) / fraction
        lam = float(np.clip(expected / max(inp.all_pairs, 1), 1e-12, 0.5))
    model = _bounded(FittedModel(comps, m, u, lam, 0, len(train_pairs), len(rand)), linkage, inp)
    reasons = check_fit(model, rand, linkage.threshold, expected, inp.records, settings)
    fallback = False
    if reasons and linkage.u_from != "em":
        fallback = True
        m = [project_monotone(mk, uk) for mk, uk in zip(linkage.m_starts(), u)]
        expected = _expected_matches(train_pairs, train_gammas, m, u, inp.dedupe, settings) / fraction
        lam = float(np.clip(expected / max(inp.all_pairs, 1), 1e-12, 0.5))
        model = _bounded(FittedModel(comps, m, u, lam, 0, len(train_pairs), len(rand)), linkage, inp)
        again = check_fit(model, rand, linkage.threshold, expected, inp.records, settings)
        if again:
            raise DegenerateFit(f"match type {mt.id}: the trained model is degenerate ({'; '.join(reasons)}) "
                                f"and so is the fallback to documented priors ({'; '.join(again)})")
    model.patterns = agreement_patterns(train_gammas)
    model.fit_check = FitCheck(passed=not reasons, fallback=fallback, reasons=reasons,
                               expected_matches=float(expected), records=int(inp.records),
                               m_from_prior=untaught, capped=dict(model.caps), **model.fit_stats)
    return model


def _expected_matches(pairs: Pairs, gammas: np.ndarray, m: list[np.ndarray], u: list[np.ndarray],
                      dedupe: bool, settings) -> float:
    """Matching pairs among the training candidates.

    Linking two files: EM on λ with each record matching at most one on the other side
    (:func:`matching.em.fit_lambda_one_to_one`). Deduplicating, where a person may have any
    number of records: the pairs agreeing exactly on everything, over the model's recall of
    that rule (:func:`matching.training.deterministic_matches`).
    """
    if dedupe or len(gammas) == 0:
        return deterministic_matches(gammas, m)
    llr = np.zeros(len(gammas))
    for k in range(gammas.shape[1]):
        g = gammas[:, k]
        known = g != NULL
        llr[known] += np.log(m[k][g[known]]) - np.log(u[k][g[known]])
    return fit_lambda_one_to_one(llr, pairs.li, pairs.ri, settings.em)


def _bounded(model: FittedModel, linkage: Linkage, inp: LinkInputs) -> FittedModel:
    model.tf = tf_tables(model.comparisons, inp.frames()) if linkage.tf_adjust else {}
    model.caps = caps_for(model, linkage.threshold)
    return model


def train(mt: MatchType, inp: LinkInputs, ctx: TrainingContext | None = None) -> Models:
    """Fit the match type's model(s). ``ctx`` carries the run's pool, used when a linkage
    takes m from the pool; without it, m comes from the match type's own pairs."""
    settings = mt.linkage.training_settings()
    cands, fraction = _training_candidates(mt, inp, mt.linkage.blocking, settings.max_training_pairs)
    pairs = Pairs(inp.left, inp.right, cands.li, cands.ri)
    linkage_model = fit_linkage(mt, mt.linkage, inp, pairs, fraction, ctx)
    if mt.link == "same_person":
        return Models(linkage_model)
    # same address, different person: the person model learns on address-linked pairs
    linked = score(linkage_model, pairs).probability >= mt.linkage.threshold
    person_pairs = Pairs(inp.left, inp.right, cands.li[linked], cands.ri[linked])
    return Models(linkage_model, fit_linkage(mt, mt.person, inp, person_pairs, fraction, ctx))


def load_models(mt: MatchType, data: dict, inp: LinkInputs, tf: dict | None = None) -> Models:
    """A saved model, ready to score. ``tf``: the term-frequency tables saved with it
    ({"linkage": ..., "person": ...}); without them they are computed from ``inp``."""
    linkage = FittedModel.from_json(data, mt.linkage.built())
    if tf is not None:
        linkage.tf = dict(tf.get("linkage", {})) if mt.linkage.tf_adjust else {}
    else:
        linkage.tf = tf_tables(linkage.comparisons, inp.frames()) if mt.linkage.tf_adjust else {}
    person = None
    if mt.person is not None and "person" in data:
        person = FittedModel.from_json(data["person"], mt.person.built())
        if tf is not None:
            person.tf = dict(tf.get("person", {})) if mt.person.tf_adjust else {}
        else:
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
    pairs touching changed records, see :mod:`matching.incremental`)."""
    if cands is None:
        cands = candidate_pairs(inp.left, inp.right, mt.linkage.blocking, inp.dedupe, shard, shards)
    cands = _in_scope(mt, inp, cands)
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
    keep = (scores.probability >= mt.linkage.threshold) & ~vetoed(mt.linkage, models.linkage, scores.gammas)
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
