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


def test_dirty_records_are_the_added_changed_and_removed(make_frame):
    import pandas as pd

    from matching.incremental import dirty_refs, frame_ref_keys, record_index

    people = [{"forename": n, "surname": "SMITH", "dob": "1970-01-01", "record_id": f"R{i}"}
              for i, n in enumerate(["ANN", "BOB", "CAT", "DAN"])]
    before = make_frame(people)
    after = make_frame([people[0], {**people[1], "surname": "JONES"}, people[3],
                        {"forename": "EVE", "surname": "SMITH", "record_id": "R9"}])
    after["extract_id"] = "a later extract"  # a new extract id alone changes nothing
    dirty = dirty_refs(record_index({"tenancy": before}), record_index({"tenancy": after}))
    keys = dict(zip(pd.concat([before, after])["record_id"],
                    np.concatenate([frame_ref_keys(before), frame_ref_keys(after)]).view(np.int64)))
    assert set(dirty.tolist()) == {keys["R1"], keys["R2"], keys["R9"]}  # changed, removed, added
