"""The household model: is an address-linked record the left record's own person?

Used by ``same_address_different_person`` match types with ``left_person_missing``
(e.g. a single person discount and the adults on the electoral register at that address).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from matching import conditions
from matching.blocking import Candidates, iter_candidate_pairs
from matching.comparisons import Pairs
from matching.inputs import LinkInputs, in_scope
from matching.matchtype import MatchType
from matching.model import FittedModel, score

#: the estimate of ``left_person_missing`` stays within these (a share of 0 or 1 would make one
#: side of the household judgement impossible whatever the evidence)
MISSING_BOUNDS = (1e-4, 0.9)
#: the estimate looks at up to this many left records (a deterministic spread over them)
MISSING_MAX_RECORDS = 200_000
#: ... and needs at least this many with someone at their address, else the start value stands
MISSING_MIN_RECORDS = 50
#: ... and the right data set whole, or nearly (a sample drops people's own records)
MISSING_MIN_SAMPLED = 0.99


def household_evidence(mt: MatchType, linkage: FittedModel, person: FittedModel, inp: LinkInputs,
                       rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per left row (arrays over all of ``inp.left``, filled for ``rows``): how many right records
    the address model links to it and that meet the match type's conditions with it (for a
    discount: registered while the account ran), and the sum of their person-model likelihood
    ratios (the evidence without the prior). They are found afresh: a left record's right
    records can lie in other shards; a part of the pairs at a time, so the memory is bounded
    by a part, not by the blocks."""
    k = np.zeros(inp.left.n, dtype=np.int64)
    total = np.zeros(inp.left.n, dtype=np.float64)
    for part in iter_candidate_pairs(inp.left, inp.right, mt.linkage.blocking, inp.dedupe, left_rows=rows):
        cands = in_scope(mt, inp, part)
        met = conditions.met(mt.conditions, inp.left_frame, inp.right_frame, cands.li, cands.ri)
        cands = Candidates(cands.li[met], cands.ri[met], cands.rule[met])
        linked = score(linkage, Pairs(inp.left, inp.right, cands.li, cands.ri).compact()).probability \
            >= mt.linkage.threshold
        house = Pairs(inp.left, inp.right, cands.li[linked], cands.ri[linked])
        lr = likelihood_ratio(person, score(person, house.compact()).match_weight)
        k += np.bincount(house.li, minlength=inp.left.n)
        total += np.bincount(house.li, weights=lr, minlength=inp.left.n)
    return k, total


def likelihood_ratio(person: FittedModel, weight: np.ndarray) -> np.ndarray:
    """The person model's evidence for a pair, its match weight without the prior, as a ratio."""
    prior = math.log2(person.lam / (1 - person.lam))
    return np.exp2(np.clip(weight - prior, -500, 500))


def household_p_same(mt: MatchType, q: float, linkage: FittedModel, person: FittedModel, inp: LinkInputs,
                     li: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """P(same person) of address-linked pairs (left rows ``li``, person match weights ``weight``),
    judged among all the right records at each left record's address.

    The left record's own person is usually on one of those right records (a discount
    holder is on the register at home): with probability 1 - q (q: the share of left
    records whose person is on none of them, see :func:`estimate_left_person_missing`) it is
    one of the k right records there, each a priori equally, else none. So with the
    person model's likelihood ratio LR_j of each right record, P(record j is the left
    record's person) = (1-q)/k·LR_j / (q + (1-q)/k·Σ LR). When no right record at the
    address looks like the left record's person, the closest one, e.g. the holder with a
    mistyped forename and no date of birth, keeps a high probability unless such holders
    are rarer than absent ones; when one clearly is, every other record there is someone else.
    """
    k, total = household_evidence(mt, linkage, person, inp, np.unique(li))
    k, total = k[li], total[li]
    lr = likelihood_ratio(person, weight)
    k, total = np.maximum(k, 1), np.maximum(total, lr)  # the pair itself is always among them
    share = (1 - q) / k
    return share * lr / (q + share * total)


@dataclass
class HouseholdFit:
    """The estimate of ``left_person_missing`` a trained model keeps (and the run report shows)."""

    left_person_missing: float
    start: float
    #: left records with at least one right record at their address, of those looked at
    records: int
    iterations: int
    #: share of the right data set trained on (a sample hides a person's own record as often)
    right_sampled: float = 1.0
    at_bound: bool = False
    #: why the match type's value is used instead of the estimate (too few records, or an
    #: estimate at the upper bound: a person model that recognises almost nobody)
    fallback: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def note(self) -> str:
        """One line for the run report."""
        if self.fallback:
            return (f"Household: the share of left records whose own person is on none of the right records at "
                    f"the address is the match type's {self.start:.2%}, not estimated: {self.fallback}.")
        bound = " (at the bound of the estimate)" if self.at_bound else ""
        return (f"Household: the left record's own person is on none of the right records at the address for "
                f"an estimated {self.left_person_missing:.2%} of {self.records:,} left records "
                f"(EM from {self.start:.2%}){bound}.")


def estimate_left_person_missing(mt: MatchType, linkage: FittedModel, person: FittedModel, inp: LinkInputs,
                                 right_sampled: float = 1.0) -> HouseholdFit:
    """How often the left record's own person is on none of the right records at its address,
    estimated from the data (EM on the household mixture: "absent" or "record j, 1/k each"),
    starting from the match type's ``left_person_missing``.

    Why not a fixed share: it is a property of each council's data (how complete its register
    is, how its council tax names people), and it decides the lone register entry whose forename
    differs from the holder's: the holder under another form of the name, or another adult while
    the holder is unregistered. Each left record's likelihood is q + (1-q)/k·ΣLR (the person
    model's likelihood ratios of the k records there); q is the mean of its posterior "absent".
    ``right_sampled``: the share of the right data set training sees. A sample hides a person's
    own record as often as it leaves it out, so past :data:`MISSING_MIN_SAMPLED` the match
    type's value is used (a pool over ``training_max_records``)."""
    start = float(mt.left_person_missing)
    if right_sampled < MISSING_MIN_SAMPLED:  # not worth the pass: the estimate would not be used
        return HouseholdFit(start, start, 0, 0, right_sampled, fallback=fallback_reason(0, start, right_sampled))
    step = max(1, math.ceil(inp.left.n / MISSING_MAX_RECORDS))
    rows = np.arange(0, inp.left.n, step, dtype=np.int64)
    k, total = household_evidence(mt, linkage, person, inp, rows)
    k, total = k[rows], total[rows]
    at = k > 0
    q, seen = absent_share(k[at], total[at], start)
    fit = HouseholdFit(q, start, int(at.sum()), seen, right_sampled,
                       at_bound=bool(np.isclose(q, MISSING_BOUNDS[0]) or np.isclose(q, MISSING_BOUNDS[1])),
                       fallback=fallback_reason(int(at.sum()), q, right_sampled))
    if fit.fallback:
        fit.left_person_missing = start
    return fit


def absent_share(k: np.ndarray, total: np.ndarray, start: float) -> tuple[float, int]:
    """EM for the share q of left records whose own person is none of their k right records
    (``total``: the sum of those records' likelihood ratios), within :data:`MISSING_BOUNDS`,
    and the iterations it took. Each record's likelihood is q + (1-q)/k·ΣLR."""
    lo, hi = MISSING_BOUNDS
    k = np.asarray(k, dtype=float)
    q, seen = min(max(start, lo), hi), 0
    for seen in range(1, 501):
        new = float(np.mean(q / (q + (1 - q) / k * total))) if len(k) else q
        new = min(max(new, lo), hi)
        done = abs(new - q) < 1e-7
        q = new
        if done:
            break
    return q, seen


def fallback_reason(records: int, q: float, right_sampled: float) -> str | None:
    """Why an estimate must not be used (the match type's value is, and the note says why)."""
    if right_sampled < MISSING_MIN_SAMPLED:
        return (f"training sees {right_sampled:.0%} of the right data set, so households are incomplete "
                f"(under {MISSING_MIN_SAMPLED:.0%})")
    if records < MISSING_MIN_RECORDS:
        return f"only {records} left records with someone at their address, under {MISSING_MIN_RECORDS}"
    if np.isclose(q, MISSING_BOUNDS[1]):
        return f"the estimate reached {MISSING_BOUNDS[1]:.0%}: the person model recognises almost no left record's own person"
    return None
