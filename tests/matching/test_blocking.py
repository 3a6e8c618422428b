import itertools

import numpy as np
import pytest

from matching.blocking import candidate_pairs
from matching.comparisons import Side

RULES = [["t_dob", "t_surname"], ["t_surname"], ["t_postcode"]]


def _brute_force(side_l, side_r, dedupe):
    found = set()
    n_l, n_r = side_l.n, side_r.n
    for i, j in itertools.product(range(n_l), range(n_r)):
        if dedupe and i >= j:
            continue
        for rule in RULES:
            if all(side_l.token(c)[i] == side_r.token(c)[j] != 0 for c in rule):
                found.add((i, j))
                break
    return found


def test_union_of_rules_each_pair_once_any_shard_count(make_frame):
    rng = np.random.default_rng(3)
    recs = [{"surname": ["SMITH", "JONES", "KHAN", None][rng.integers(4)],
             "dob": ["1980-01-01", "1990-02-02", None][rng.integers(3)],
             "postcode": ["E1 6AN", "N1 1AA", None][rng.integers(3)]} for _ in range(40)]
    left = Side(make_frame(recs[:25]))
    right = Side(make_frame(recs[25:]))
    expected = _brute_force(left, right, dedupe=False)
    for shards in (1, 3, 4):
        got = []
        for s in range(shards):
            c = candidate_pairs(left, right, RULES, dedupe=False, shard=s, shards=shards)
            got += list(zip(c.li.tolist(), c.ri.tolist()))
        assert len(got) == len(set(got))  # each pair generated exactly once
        assert set(got) == expected
    whole = Side(make_frame(recs))
    c = candidate_pairs(whole, whole, RULES, dedupe=True)
    pairs = {tuple(sorted(p)) for p in zip(c.li.tolist(), c.ri.tolist())}
    assert len(pairs) == len(c) and pairs == _brute_force(whole, whole, dedupe=True)
    # the rule that found a pair is the first one it satisfies
    first = candidate_pairs(left, right, RULES, dedupe=False)
    by_dob_surname = first.rule == 0
    assert (left.token("t_dob")[first.li[by_dob_surname]] == right.token("t_dob")[first.ri[by_dob_surname]]).all()


def test_a_married_name_with_an_initial_is_found_by_birthday_and_home(make_frame):
    """Every shipped same-person type that compares the address also blocks on it: a pass holder
    whose death is registered under the maiden name, forename as an initial and day and month
    written the other way round shares nothing else with her record (every other rule misses)."""
    from matching.matchtype import load_matchtypes

    left = Side(make_frame([{"forename": "MARGARET", "surname": "OKAFOR", "prev_surname": "EVANS",
                             "dob": "1941-03-07", "address": "12 ELM ROAD", "postcode": "NW1 4AB"}]))
    right = Side(make_frame([{"forename": "M", "surname": "EVANS", "dob": "1941-07-03",
                              "address": "12 ELM ROAD", "postcode": "NW1 4AB"}]))
    types = [mt for mt in load_matchtypes().values()
             if mt.link == "same_person" and any(c.use == "address" for c in mt.linkage.comparisons)]
    assert {mt.id for mt in types} >= {"blue_badge_deceased", "concessionary_travel_deceased", "ctr_payroll"}
    for mt in types:
        rules = mt.linkage.blocking
        assert len(candidate_pairs(left, right, rules, dedupe=False).li) == 1, mt.id
        others = [r for r in rules if "t_postcode" not in r]
        assert len(candidate_pairs(left, right, others, dedupe=False).li) == 0, mt.id


def _first_rule_pairs(left, right, rules, dedupe):
    """Every (left, right, first rule that holds) by trying all pairs (dedupe: left > right)."""
    cols = sorted({c for rule in rules for c in rule})
    lt = {c: left.token(c) for c in cols}
    rt = {c: right.token(c) for c in cols}
    found = set()
    for i, j in itertools.product(range(left.n), range(right.n)):
        if dedupe and i <= j:
            continue
        for k, rule in enumerate(rules):
            if all(lt[c][i] == rt[c][j] != 0 for c in rule):
                found.add((i, j, k))
                break
    return found


def test_pairs_made_a_part_at_a_time_are_the_shards_pairs_found_by_the_same_rule():
    """``iter_candidate_pairs`` (what a shard scores) and ``candidate_pairs`` (what training reads)
    give every pair that some rule holds, each once and credited to the first rule that holds,
    the first in parts of at most about ``max_pairs``, whatever the shard; also with keys
    colliding across rules' columns."""
    import pandas as pd

    from matching.blocking import iter_candidate_pairs

    rng = np.random.default_rng(0)

    def side(n):  # few distinct values: big blocks, many pairs found by several rules
        return Side(pd.DataFrame({c: rng.integers(0, k, n).astype(np.int64)
                                  for c, k in (("t_a", 6), ("t_b", 4), ("t_c", 3))}))

    rules = [["t_a"], ["t_b", "t_c"], ["t_c"]]
    for dedupe in (True, False):
        left = side(400)
        right = left if dedupe else side(300)
        every = _first_rule_pairs(left, right, rules, dedupe)
        in_shards = set()
        for shards in (1, 3):
            for shard in range(shards):
                whole = candidate_pairs(left, right, rules, dedupe, shard, shards)
                parts = list(iter_candidate_pairs(left, right, rules, dedupe, shard, shards, max_pairs=500))
                assert len(parts) > 3 and max(len(p) for p in parts) <= 500
                got = [t for p in parts for t in zip(p.li.tolist(), p.ri.tolist(), p.rule.tolist())]
                assert len(got) == len(set(got))
                assert set(got) == set(zip(whole.li.tolist(), whole.ri.tolist(), whole.rule.tolist()))
                in_shards |= set(got)
                if shards == 1:
                    assert set(got) == every
        assert in_shards == every
    # restricted to some left rows (the household model's evidence for a shard's left records)
    left, right = side(400), side(300)
    rows = np.sort(rng.choice(400, 60, replace=False))
    whole = candidate_pairs(left, right, rules, False, left_rows=rows)
    parts = list(iter_candidate_pairs(left, right, rules, False, max_pairs=200, left_rows=rows))
    got = {t for p in parts for t in zip(p.li.tolist(), p.ri.tolist(), p.rule.tolist())}
    assert got == set(zip(whole.li.tolist(), whole.ri.tolist(), whole.rule.tolist()))
    assert got and got == {t for t in _first_rule_pairs(left, right, rules, False) if t[0] in set(rows.tolist())}
    with pytest.raises(ValueError):
        next(iter_candidate_pairs(left, left, rules, True, left_rows=rows))
