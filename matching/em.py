"""Constrained expectation maximisation for the Fellegi–Sunter m probabilities.

Plain EM on comparison vectors can settle on the wrong two clusters: with few
comparisons, "born in the same year" separates pairs as cleanly as "same person"
does, and nothing stops an agreement level from counting *against* a match. So:

* **u is never estimated here.** It comes from random pairs (``training.py``),
  where almost every pair is two different people; EM only learns m and λ.
* **Monotone evidence.** The levels of a comparison are ordered from most to least
  similar; after every M-step m is projected so the likelihood ratio m/u never
  rises from one level to the next (pool-adjacent-violators, weighted by u: the
  maximum-likelihood monotone fit). "Exact" then counts at least as much as "close".
* **Agreement is never evidence against.** Every level but the last ("different") has
  weight ≥ 0: held there in the weight (:func:`level_weights`), and for a comparison with a
  near-miss level also in m (see :func:`project_monotone`).
* **Several starts.** EM runs from a few starting points; the fit with the best
  likelihood wins (all satisfy the constraints by construction).

EM runs on distinct agreement patterns weighted by their counts, so a million
pairs are a few hundred rows of work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NULL = -1  # level index of "missing on either side" (carries no evidence)
FLOOR = 1e-6  # no level is ever impossible in either class


def unique_patterns(gammas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a comparison-vector matrix, in sorted order, and their counts:
    ``np.unique(gammas, axis=0, return_counts=True)``, but each row packed into one integer
    first (order-preserving), so a million pairs sort as integers, not as byte strings."""
    n, k = gammas.shape
    digits = gammas.astype(np.int64) - NULL  # NULL -> 0: a row's digits keep the rows' order
    radix = int(digits.max()) + 1 if n else 1
    if n == 0 or radix ** k >= 2 ** 62:
        return np.unique(gammas, axis=0, return_counts=True)
    keys = digits @ (radix ** np.arange(k - 1, -1, -1, dtype=np.int64))
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return gammas[first], counts


@dataclass(frozen=True)
class EMSettings:
    """How EM runs (a match type may override these in its YAML ``em:`` block)."""

    max_iter: int = 200
    tol: float = 1e-6
    #: pseudo-pairs spread as the starting m, so a level seen a handful of times keeps a
    #: finite weight; washes out on large data
    prior_strength: float = 20.0
    #: starting λ among the training candidates
    lam_start: float = 0.1


@dataclass
class EMResult:
    m: list[np.ndarray]
    lam: float
    log_likelihood: float
    iterations: int


def normalise(p: np.ndarray) -> np.ndarray:
    p = np.maximum(np.asarray(p, dtype=float), FLOOR)
    return p / p.sum()


def project_monotone(m: np.ndarray, u: np.ndarray, lift: bool = True) -> np.ndarray:
    """The m closest in likelihood to ``m`` whose ratio m/u never increases along the levels.

    Pool-adjacent-violators on r = m/u with weights u: a pooled block takes Σm/Σu.

    ``lift``: every level but the last is also raised to m ≥ u, the mass taken first from the
    last level ("different"), then from the margin above u. That is right for a near miss
    (forenames that differ but share an initial): among look-alikes (twins, members of one
    household) it is as common as among random pairs, and taking its lift out of "different"
    keeps a wholly different forename strong evidence against. Anywhere else it would empty
    "different" of a mass the data gave it (on FEBRL2 it put a different address at −19.5
    bits, one field outweighing an exact surname, date of birth and id), so without ``lift`` the
    fit stays as the data say and "agreement is never evidence against" is applied to the
    weight instead (:func:`level_weights`).
    """
    m = np.maximum(np.asarray(m, dtype=float), 0.0)
    m = m / m.sum()
    u = np.asarray(u, dtype=float)  # as the model holds it: re-normalising would drift the weights
    blocks: list[list[float]] = []  # [sum m, sum u, count]
    for mi, ui in zip(m, u):
        blocks.append([mi, ui, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            sm, su, c = blocks.pop()
            blocks[-1][0] += sm
            blocks[-1][1] += su
            blocks[-1][2] += c
    ratio = np.concatenate([np.full(int(c), sm / su) for sm, su, c in blocks])
    if not lift:
        out = np.maximum(ratio * u, FLOOR)
        return out / out.sum()
    ratio[:-1] = np.maximum(ratio[:-1], 1.0)
    out = ratio * u
    excess = out[:-1].sum() + FLOOR - 1.0
    if excess > 0:  # keep "different" possible: take the mass from the margin above u only
        above = out[:-1] - u[:-1]
        out[:-1] -= above * min(1.0, excess / max(above.sum(), 1e-300))
    out[-1] = 1.0 - out[:-1].sum()  # sums to one by construction
    return out


def level_weights(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """log2(m/u) per level, agreement levels (all but the last) never below 0."""
    w = np.log2(np.asarray(m, dtype=float) / np.asarray(u, dtype=float))
    w[:-1] = np.maximum(w[:-1], 0.0)
    return w


def _pattern_logs(patterns: np.ndarray, probs: list[np.ndarray], use: list[int]) -> np.ndarray:
    out = np.zeros(len(patterns))
    for k in use:
        g = patterns[:, k]
        known = g != NULL
        out[known] += np.log(probs[k][g[known]])
    return out


def fit_m(gammas: np.ndarray, n_levels: list[int], u: list[np.ndarray], m_starts: list[list[np.ndarray]],
          free: list[int], settings: EMSettings = EMSettings(), lift: list[bool] | None = None,
          u_by_home: tuple[np.ndarray, dict[int, list[np.ndarray]]] | None = None) -> EMResult:
    """m of the ``free`` comparisons and λ among ``gammas``, u held fixed; best of several starts.

    Comparisons not in ``free`` (those the training pairs were blocked on, which therefore
    agree by construction) are left out of the likelihood altogether and keep their start.
    ``lift``: per comparison, see :func:`project_monotone` (default: every comparison).
    ``u_by_home``: (a code per pair, {code: u}): the pairs of a nonzero code judged with that
    code's u, as scoring judges a pair that agrees on a field others depend on.
    """
    lift = lift if lift is not None else [True] * len(n_levels)
    if len(gammas) == 0 or not free:
        return EMResult([normalise(x) for x in m_starts[0]], settings.lam_start, float("-inf"), 0)
    if u_by_home is None:
        patterns, counts = unique_patterns(gammas)
        log_u = _pattern_logs(patterns, u, free)
    else:
        home, u_of = u_by_home
        codes = home.astype(np.int8) if home.max(initial=0) < np.iinfo(np.int8).max else home  # as small as the levels
        patterns, counts = unique_patterns(np.column_stack([gammas, codes]))
        codes, patterns = patterns[:, -1], patterns[:, :-1]
        log_u = np.zeros(len(patterns))
        for code in np.unique(codes):
            at = codes == code
            log_u[at] = _pattern_logs(patterns[at], u_of.get(int(code), u), free)
    counts = counts.astype(float)
    best: EMResult | None = None
    for start in m_starts:
        result = _fit_one(patterns, counts, log_u, n_levels, u, [normalise(x) for x in start], free, settings, lift)
        if best is None or result.log_likelihood > best.log_likelihood:
            best = result
    return best


def _fit_one(patterns: np.ndarray, counts: np.ndarray, log_u: np.ndarray, n_levels: list[int],
             u: list[np.ndarray], m: list[np.ndarray], free: list[int], settings: EMSettings,
             lift: list[bool]) -> EMResult:
    m = [project_monotone(m[k], u[k], lift[k]) if k in free else m[k] for k in range(len(m))]
    prior = [settings.prior_strength * x for x in m]
    lam = settings.lam_start
    loglik = float("-inf")
    it = 0
    for it in range(1, settings.max_iter + 1):
        log_m = _pattern_logs(patterns, m, free)
        a = np.log(lam) + log_m
        b = np.log1p(-lam) + log_u
        top = np.maximum(a, b)
        log_mix = top + np.log(np.exp(a - top) + np.exp(b - top))
        loglik = float((counts * log_mix).sum())
        post = np.exp(a - log_mix)
        wm = counts * post
        new_lam = float(np.clip(wm.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        new_m = list(m)
        for k in free:
            g = patterns[:, k]
            known = g != NULL
            raw = np.bincount(g[known], weights=wm[known], minlength=n_levels[k]) + prior[k]
            new_m[k] = project_monotone(raw, u[k], lift[k])
        delta = max([abs(new_lam - lam)] + [float(np.abs(new_m[k] - m[k]).max()) for k in free])
        m, lam = new_m, new_lam
        if delta < settings.tol:
            break
    return EMResult(m, lam, loglik, it)


def fit_lambda_one_to_one(llr: np.ndarray, li: np.ndarray, ri: np.ndarray, population: float,
                          settings: EMSettings = EMSettings()) -> float:
    """Expected matching pairs among linked pairs, when a record matches at most one record
    on the other side (two files, each holding a person once).

    EM on λ with m and u fixed, but the E-step's count is capped per record: a left record
    whose posterior mass is spread over several right records (members of one household,
    say) contributes at most one match, and likewise each right record. Plain EM on λ lets
    such look-alikes each add a share and runs away.

    λ is the share of matches among the ``population`` of pairs that u was measured on (every
    pair of the two files, random pairs), not among the candidates: blocking keeps pairs that
    agree, so among candidates a weak positive pattern (same forename and surname, different
    date of birth: namesakes) is common, and a candidate-level prior made those namesakes
    matches (35x the true count on a held-out home, where the prior of all pairs gives 1.1x).
    """
    if len(llr) == 0:
        return 0.0
    population = max(float(population), float(len(llr)))
    lam = settings.lam_start * len(llr) / population
    n_left, n_right = int(li.max()) + 1, int(ri.max()) + 1
    expected = 0.0
    for _ in range(settings.max_iter):
        post = 1.0 / (1.0 + np.exp(-np.clip(np.log(lam) - np.log1p(-lam) + llr, -700, 700)))
        left = np.minimum(np.bincount(li, weights=post, minlength=n_left), 1.0).sum()
        right = np.minimum(np.bincount(ri, weights=post, minlength=n_right), 1.0).sum()
        expected = float(min(left, right))
        new = float(np.clip(expected / population, 1e-15, 1 - 1e-9))
        if abs(new - lam) < settings.tol * lam:
            break
        lam = new
    return expected


def fit_lambda(gammas: np.ndarray, m: list[np.ndarray], u: list[np.ndarray],
               settings: EMSettings = EMSettings()) -> float:
    """λ among ``gammas`` with m and u fixed (one-parameter EM)."""
    if len(gammas) == 0:
        return settings.lam_start
    patterns, counts = unique_patterns(gammas)
    every = list(range(gammas.shape[1]))
    llr = _pattern_logs(patterns, m, every) - _pattern_logs(patterns, u, every)
    lam = settings.lam_start
    for _ in range(settings.max_iter):
        odds = np.log(lam) - np.log1p(-lam) + llr
        post = 1.0 / (1.0 + np.exp(-np.clip(odds, -700, 700)))
        new = float(np.clip((counts * post).sum() / counts.sum(), 1e-12, 1 - 1e-9))
        if abs(new - lam) < settings.tol * max(lam, 1e-6):
            return new
        lam = new
    return lam


def fit_em(
    gammas: np.ndarray,
    n_levels: list[int],
    m_start: list[np.ndarray],
    u_start: list[np.ndarray],
    lam_start: float = 0.01,
    estimate_u: bool = True,
    estimate_m: bool = True,
    max_iter: int = 200,
    tol: float = 1e-7,
    prior_strength: float = 20.0,
) -> tuple[list[np.ndarray], list[np.ndarray], float, int]:
    """EM for a two-class mixture of independent multi-level comparisons; null levels are ignored.

    Returns (m, u, λ, iterations). Runs on distinct patterns weighted by their counts.
    Maximum a posteriori: each class's level shares get ``prior_strength`` pseudo-pairs
    spread as the starting values, so a level never seen among a few hundred training
    pairs keeps a finite, sensible weight instead of ±∞; on large data it washes out.
    """
    if len(gammas) == 0:
        return [normalise(m) for m in m_start], [normalise(u) for u in u_start], lam_start, 0
    patterns, counts = unique_patterns(gammas)
    counts = counts.astype(float)
    m = [normalise(np.asarray(x, float)) for x in m_start]
    u = [normalise(np.asarray(x, float)) for x in u_start]
    m_prior = [prior_strength * x for x in m]
    u_prior = [prior_strength * x for x in u]
    lam = float(lam_start)
    it = 0
    for it in range(1, max_iter + 1):
        log_m = np.zeros(len(patterns))
        log_u = np.zeros(len(patterns))
        for k in range(len(n_levels)):
            g = patterns[:, k]
            known = g != NULL
            log_m[known] += np.log(m[k][g[known]])
            log_u[known] += np.log(u[k][g[known]])
        log_odds = np.log(lam) - np.log1p(-lam) + log_m - log_u
        post = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        wm, wu = counts * post, counts * (1.0 - post)
        new_lam = float(np.clip(wm.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        new_m, new_u = [], []
        for k, n in enumerate(n_levels):
            g = patterns[:, k]
            known = g != NULL
            new_m.append(normalise(np.bincount(g[known], weights=wm[known], minlength=n) + m_prior[k])
                         if estimate_m else m[k])
            new_u.append(normalise(np.bincount(g[known], weights=wu[known], minlength=n) + u_prior[k])
                         if estimate_u else u[k])
        delta = max([abs(new_lam - lam)] + [float(np.abs(a - b).max()) for a, b in zip(new_m + new_u, m + u)])
        m, u, lam = new_m, new_u, new_lam
        if delta < tol:
            break
    return m, u, lam, it
