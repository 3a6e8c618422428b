import numpy as np
import pandas as pd

from matching.comparisons import Pairs, Side, name
from matching.em import fit_em
from matching.model import FittedModel, score, tf_tables


def test_em_recovers_known_m_and_u():
    rng = np.random.default_rng(7)
    n, lam = 200_000, 0.1
    m_true = [np.array([0.85, 0.1, 0.05]), np.array([0.9, 0.1]), np.array([0.7, 0.2, 0.05, 0.05])]
    u_true = [np.array([0.02, 0.08, 0.9]), np.array([0.05, 0.95]), np.array([0.01, 0.04, 0.15, 0.8])]
    match = rng.random(n) < lam
    gammas = np.empty((n, 3), dtype=np.int8)
    for k in range(3):
        gammas[match, k] = rng.choice(len(m_true[k]), size=match.sum(), p=m_true[k])
        gammas[~match, k] = rng.choice(len(u_true[k]), size=(~match).sum(), p=u_true[k])
    gammas[rng.random(n) < 0.05, 1] = -1  # some missing values: ignored, not a level
    starts_m = [np.full(len(p), 1 / len(p)) + np.eye(len(p))[0] for p in m_true]
    starts_u = [np.full(len(p), 1 / len(p)) + np.eye(len(p))[-1] for p in u_true]
    m, u, lam_hat, its = fit_em(gammas, [3, 2, 4], starts_m, starts_u, lam_start=0.3)
    assert abs(lam_hat - lam) < 0.01
    for k in range(3):
        np.testing.assert_allclose(m[k], m_true[k], atol=0.02)
        np.testing.assert_allclose(u[k], u_true[k], atol=0.02)
    assert its > 1


def test_tf_adjustment_lowers_weight_of_common_surname(make_frame):
    people = [{"surname": "SMITH"}] * 50 + [{"surname": f"RARE{c}NAME"} for c in "ABCDEFGHIJ"]
    frame = make_frame(people)
    side = Side(frame)
    comp = name("surname")
    model = FittedModel([comp], [np.array([0.8, 0.05, 0.02, 0.03, 0.03, 0.01, 0.06])],
                        [np.array([0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.94])], lam=0.01)
    model.tf = tf_tables([comp], [frame])
    # pair (0, 1): SMITH = SMITH (common); pair (50, 50): a rare name with itself
    pairs = Pairs(side, side, np.array([0, 50]), np.array([1, 50]))
    s = score(model, pairs)
    assert (s.gammas[:, 0] == 0).all()  # both agree exactly
    common, rare = s.level_weights[:, 0]
    assert common < np.log2(0.8 / 0.01) < rare
    assert s.probability[0] < s.probability[1]
