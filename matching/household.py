"""The household model: is an address-linked record the left record's own person?

Used by ``same_address_different_person`` match types with ``left_person_missing``
(e.g. a single person discount and the adults on the electoral register at that address).
"""

from __future__ import annotations

import math

import numpy as np

from matching.blocking import candidate_pairs
from matching.comparisons import Pairs
from matching.inputs import LinkInputs, in_scope
from matching.matchtype import MatchType
from matching.model import score
from matching.training import Models


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
    cands = in_scope(mt, inp, candidate_pairs(inp.left, inp.right, mt.linkage.blocking, inp.dedupe,
                                               left_rows=rows))
    linked = score(models.linkage, Pairs(inp.left, inp.right, cands.li, cands.ri).compact()).probability \
        >= mt.linkage.threshold
    prior = math.log2(models.person.lam / (1 - models.person.lam))
    house = Pairs(inp.left, inp.right, cands.li[linked], cands.ri[linked])
    lr_all = np.exp2(np.clip(score(models.person, house.compact()).match_weight - prior, -500, 500))
    k = np.bincount(house.li, minlength=inp.left.n)[li]
    total = np.bincount(house.li, weights=lr_all, minlength=inp.left.n)[li]
    lr = np.exp2(np.clip(weight - prior, -500, 500))
    k, total = np.maximum(k, 1), np.maximum(total, lr)  # the pair itself is always among them
    share = (1 - q) / k
    return share * lr / (q + share * total)
