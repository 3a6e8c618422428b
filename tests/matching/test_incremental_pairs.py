"""Candidate pairs touching given records are exactly those of all candidate pairs that touch them."""

from __future__ import annotations

import numpy as np
import pytest

from matching.blocking import candidate_pairs
from matching.comparisons import Side
from matching.incremental import touching_pairs

RULES = [["t_dob", "t_surname"], ["t_dob", "t_forename"], ["t_name_sorted"], ["t_postcode"]]


def _set(li, ri):
    return set(zip(li.tolist(), ri.tolist()))


@pytest.mark.parametrize("dedupe", [False, True])
def test_touching_pairs_equal_all_pairs_restricted(make_frame, dedupe):
    rng = np.random.default_rng(4)
    names = ["JOHN", "MARY", "ALI", "SMITH", "KHAN", "JONES"]
    people = [{"forename": names[rng.integers(3)], "surname": names[3 + rng.integers(3)],
               "dob": f"19{rng.integers(50, 53)}-01-0{rng.integers(1, 4)}",
               "address": "1 HIGH ST", "postcode": f"E1 {rng.integers(1, 6)}AA"} for _ in range(400)]
    left = Side(make_frame(people[:250]))
    right = left if dedupe else Side(make_frame(people[250:]))
    full = candidate_pairs(left, right, RULES, dedupe)
    li, ri = full.li, full.ri
    if dedupe:
        li, ri = np.minimum(li, ri), np.maximum(li, ri)
    all_pairs = _set(li, ri)
    assert len(all_pairs) > 1000
    lrows = rng.choice(left.n, 20, replace=False)
    rrows = rng.choice(right.n, 15, replace=False)
    got = touching_pairs(left, right, RULES, dedupe, lrows, rrows)
    if dedupe:
        touched = set(lrows.tolist()) | set(rrows.tolist())
        want = {(a, b) for a, b in all_pairs if a in touched or b in touched}
    else:
        want = {(a, b) for a, b in all_pairs if a in set(lrows.tolist()) or b in set(rrows.tolist())}
    assert _set(got.li, got.ri) == want and len(got) == len(want)
    assert 0 < len(want) < len(all_pairs)
