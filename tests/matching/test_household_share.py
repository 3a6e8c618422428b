"""The household model's share of left records whose own person is absent, estimated by EM
(``matching.household.absent_share``): recovered from mixtures of known share, kept within its
bounds, and not used where it cannot be trusted."""

import numpy as np
import pytest

from matching.household import MISSING_BOUNDS, absent_share, fallback_reason


#: two comparisons' levels (exact, close, different): how often one person's two records and two
#: people's records fall in each, so that m/u is the likelihood ratio the household model takes
M = np.array([[0.85, 0.10, 0.05], [0.90, 0.07, 0.03]])
U = np.array([[0.05, 0.15, 0.80], [0.02, 0.08, 0.90]])


def _ratios(rng: np.random.Generator, n: int, probs: np.ndarray) -> np.ndarray:
    levels = [rng.choice(3, size=n, p=p) for p in probs]
    return np.prod([M[c][lv] / U[c][lv] for c, lv in enumerate(levels)], axis=0)


def _households(q: float, n: int, seed: int, sampled: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """k right records per left record: the own person's (present with 1 - q) and up to two
    others, each with the likelihood ratio of levels drawn as one person's or two people's;
    each right record kept by a sample with ``sampled``; left records left with none dropped."""
    rng = np.random.default_rng(seed)
    own = rng.random(n) >= q
    others = rng.integers(0, 3, size=n) + ~own  # someone is there
    own &= rng.random(n) < sampled
    others = rng.binomial(others, sampled)
    k = own + others
    total = own * _ratios(rng, n, M)
    for j in range(1, 4):
        total += (others >= j) * _ratios(rng, n, U)
    return k[k > 0], total[k > 0]


@pytest.mark.parametrize("q", [0.01, 0.1, 0.3])
def test_the_share_is_recovered_from_any_start(q: float) -> None:
    k, total = _households(q, 40_000, seed=int(q * 100))
    for start in (0.001, 0.1, 0.5):
        got, iterations = absent_share(k, total, start)
        assert got == pytest.approx(q, abs=0.01 + 0.1 * q), (q, start, got)
        assert 1 < iterations < 500


def test_an_estimate_that_cannot_be_trusted_is_not_used() -> None:
    """A sampled right data set hides own records (the share found is too high); too few
    households, or a share at the upper bound, say nothing reliable: the match type's value stands."""
    k, total = _households(0.05, 40_000, seed=7, sampled=0.9)
    q, _ = absent_share(k, total, 0.1)
    assert q > 0.08
    assert "right data set" in fallback_reason(len(k), q, right_sampled=0.9)
    assert fallback_reason(len(k), q, right_sampled=0.995) is None
    assert "only 20" in fallback_reason(20, 0.05, 1.0)
    assert "recognises almost no" in fallback_reason(5000, MISSING_BOUNDS[1], 1.0)


def test_the_estimate_stays_within_its_bounds() -> None:
    lo, hi = MISSING_BOUNDS
    nobody = np.full(1000, 1e-9)  # no record looks like anyone's own person
    assert absent_share(np.ones(1000), nobody, 0.1)[0] == pytest.approx(hi)
    everyone = np.full(1000, 1e9)
    assert absent_share(np.ones(1000), everyone, 0.1)[0] == pytest.approx(lo)
    assert absent_share(np.ones(0), np.ones(0), 0.1)[0] == 0.1  # nothing to learn from: the start


def test_a_sampled_right_data_set_keeps_the_match_types_share_without_estimating() -> None:
    """A pool over training_max_records trains on a sample: the estimate is not even attempted
    (no models or inputs are touched), and the fit says why."""
    from matching.household import estimate_left_person_missing
    from matching.matchtype import SHIPPED, parse_matchtype

    mt = parse_matchtype((SHIPPED / "spd_other_adult.yaml").read_text(encoding="utf-8"), "shipped")
    fit = estimate_left_person_missing(mt, None, None, None, right_sampled=0.1)  # type: ignore[arg-type]
    assert fit.left_person_missing == mt.left_person_missing and fit.records == 0
    assert "10% of the right data set" in fit.fallback and "match type's 10.00%" in fit.note()
