"""Training a match type's model: u from random pairs, m by constrained EM per blocking rule,
λ over all pairs, then a fit check that refuses a degenerate model.

Learned from how Splink trains, and made harder to fool:

* **u** always from random pairs (two random records are almost always two people),
  and for an exact level on one token the share of random pairs agreeing is computed
  exactly from token frequencies (Σ p_left·p_right) rather than sampled.
* **m** by EM (``matching.em``) with u fixed, once per blocking rule; a rule teaches
  only the comparisons it does not block on, and only when at least two informative
  comparisons are free (one cannot tell two classes apart). A field only some records
  carry (a NINO, an email) is learned from the rule's pairs that carry it. Each
  comparison's m comes from the purest rule that taught it; one no rule teaches keeps
  its documented starting m (the comparison library's defaults, or the YAML's).
* **λ** (the prior) by EM over the candidates with m and u fixed, scaled to all pairs.
* **Bound**: no comparison may decide a pair on its own when every other comparison
  present disagrees: its weight is capped so that such a pair scores below threshold.
* **Fit check** (``FitCheck``): random pairs must not be flagged beyond what λ
  allows, the match class must agree more than it disagrees, λ must be plausible.
  A failing fit falls back to the documented priors; if that fails too,
  :class:`DegenerateFit` is raised: the match type does not flag at all that night.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from councilmatch.contracts import BLOOM_SALT_TOKENS
from matching.comparisons import NULL, Comparison, DiceAtLeast, Pairs, Side
from matching.em import (fit_em, fit_lambda, fit_lambda_one_to_one, fit_m, level_weights, normalise,
                         project_monotone)
from matching.household import HouseholdFit, estimate_left_person_missing
from matching.inputs import POOL, LinkInputs, scope_mask, training_candidates
from matching.kept import Kept
from matching.matchtype import Linkage, MatchType, TrainingSettings
from matching.model import (FittedModel, agreement_patterns, comparison_vectors, measured_column, measuring, score,
                            tf_tables)

LN2 = math.log(2.0)  # level weights are in bits; likelihood ratios here in nats

#: the bound leaves a single field this many bits short of the threshold
CAP_MARGIN_BITS = 1.0


class DegenerateFit(RuntimeError):
    """A trained model (and its fallback) failed the fit check: flagging with it would mislead."""


@dataclass
class FitCheck:
    """What the fit check found; shown in the run report per match type."""

    passed: bool
    fallback: bool
    reasons: list[str]
    random_pairs_scored: int
    random_pairs_flagged: int
    random_pairs_expected: float
    expected_matches: float
    records: int
    m_from_prior: list[str]
    capped: dict[str, float]
    #: what the operator should know though the check passed (e.g. a model that expects no match)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


#: Bump when training estimates differently from the same data (a saved model of an older
#: revision is re-trained on the next night, not at its weekly turn). 2: λ when linking two
#: files is a share of all pairs, not of the candidates. 3: evidence at one address (``given``)
#: is measured from 50 pairs of different people there, not 200. 4: a rule with two free
#: comparisons can only lower how often matches differ on a field (``bounded_difference``).
#: 5: a salted level's u from same-salt pairs of different birthdays (``other_birthdays``); λ
#: of a dedupe asks for exact agreement only where most matches agree exactly (``deterministic_matches``).
#: 6: where under ten pairs meet a dedupe's rule, all but one comparison must (``MIN_RULE_PAIRS``).
#: 7: with a NINO to judge by, comparisons depending on the same columns wait for their own u at
#: one address (``conditional_u``: twins). 8: pairs at one address drawn per record, not per pair
#: (``same_salt_pairs(per_record=True)``: large addresses no longer set a household's u), and m
#: estimated again with each blocking rule's u among the different people it pairs up (``rule_u``).
ESTIMATOR_REVISION = 8


def random_pairs(left: Side, right: Side, dedupe: bool, n: int, seed: int) -> Pairs:
    total = left.n * (left.n - 1) // 2 if dedupe else left.n * right.n
    n = int(min(n, max(total, 0)))
    if n == 0:
        return Pairs(left, right, np.zeros(0, np.int64), np.zeros(0, np.int64))
    # imported here: recordlinkage brings scikit-learn and SciPy (a second of imports) into every
    # process that imports matching, and only training draws its pairs with it: a DAG task that
    # ingests a feed or links a shard starts that much sooner (tests/e2e/test_task_imports.py)
    from recordlinkage.index import Random

    lf = pd.DataFrame(index=pd.RangeIndex(left.n))
    idx = (Random(n, random_state=seed).index(lf) if dedupe
           else Random(n, random_state=seed).index(lf, pd.DataFrame(index=pd.RangeIndex(right.n))))
    return Pairs(left, right, idx.get_level_values(0).to_numpy(np.int64), idx.get_level_values(1).to_numpy(np.int64))


def _exact_share(left: Side, right: Side, column: str, dedupe: bool) -> float | None:
    """P(two random records carry the same non-missing token in ``column``), exactly."""
    a = pd.Series(left.token(column))
    a = a[a != 0]
    if dedupe:
        n = left.n
        if n < 2:
            return None
        c = a.value_counts().to_numpy(dtype=float)
        return float((c * (c - 1)).sum() / (n * (n - 1)))
    b = pd.Series(right.token(column))
    b = b[b != 0]
    ca, cb = a.value_counts(), b.value_counts()
    common = ca.index.intersection(cb.index)
    return float((ca[common].to_numpy(float) * cb[common].to_numpy(float)).sum() / max(left.n * right.n, 1))


def same_salt_pairs(left: Side, right: Side, dedupe: bool, tokens: tuple[str, ...], n: int, seed: int,
                    per_record: bool = False) -> Pairs:
    """Random pairs drawn uniformly among the pairs whose ``tokens`` all agree (and are present).

    ``per_record``: each left record that has such a partner is drawn equally often (then one
    of its partners), instead of each pair: a group's weight grows with its records, not with
    their square, so one care home or block of flats whose address carries no flat number
    (a hundred records, five thousand pairs) weighs as much as the households of a hundred
    records, not as fifty of them."""
    rng = np.random.default_rng(seed)

    def keys(side: Side) -> np.ndarray:
        key = np.zeros(side.n, dtype=np.int64)
        ok = np.ones(side.n, dtype=bool)
        for col in tokens:
            t = side.token(col)
            ok &= t != 0
            key = key * np.int64(1_000_003) + t  # wraps: a collision only merges two groups
        return np.where(ok, key, 0)

    lk, rk = keys(left), keys(right)
    if len(lk) == 0 or len(rk) == 0:
        return Pairs(left, right, np.zeros(0, np.int64), np.zeros(0, np.int64))
    r_order = np.argsort(rk, kind="stable")
    # each left record's group among the right's sorted keys, found among the distinct keys
    # (a salt has few values: a search in them beats one in every right record)
    groups, first, counts = np.unique(rk[r_order], return_index=True, return_counts=True)
    at = np.minimum(np.searchsorted(groups, lk), len(groups) - 1)
    found = groups[at] == lk
    start = np.where(found, first[at], 0)
    size = np.where(found, counts[at], 0)
    size = np.where(lk == 0, 0, size - (1 if dedupe else 0))  # dedupe: not the record itself
    if size.sum() <= 0 or n <= 0:
        return Pairs(left, right, np.zeros(0, np.int64), np.zeros(0, np.int64))
    weight = (size > 0).astype(float) if per_record else size.astype(float)
    li = rng.choice(left.n, size=n, p=weight / weight.sum())
    ri = r_order[start[li] + (rng.random(n) * (size[li] + (1 if dedupe else 0))).astype(np.int64)]
    keep = li != ri
    return Pairs(left, right, li[keep].astype(np.int64), ri[keep].astype(np.int64))


#: :func:`other_birthdays` keeps its pairs only if at least this many remain (else the data has no
#: dates of birth to tell people apart by, and the pairs are used as drawn)
MIN_OTHER_BIRTHDAYS = 1000


def other_birthdays(pairs: Pairs) -> Pairs:
    """The pairs whose records both carry a date of birth, and different ones.

    Why: pairs that share a salt are mostly unrelated people in a large file, but the salt is
    made of a person's own attributes, so a person's two records nearly always share it too: in
    a small file they are a large share of the same-salt pairs (FEBRL1's 1,000 records: most of
    them), and the u of "near spelling" measured there was the share of *matches* with a typo
    (0.049 for the surname, where different people give about 0.0005), so a typo'd surname
    counted +2.2 bits instead of +7. A person's two records nearly always share a birthday; two
    different people's names are as alike whatever their birthdays, so dropping the pairs that
    share one removes the matches without biasing u (twins, strangers who share a birthday and
    often a surname, are dropped too: a small share of the strangers).
    """
    a, b = pairs.tokens("t_dob")
    unlike = (a != b) & (a != 0) & (b != 0)
    if unlike.sum() < MIN_OTHER_BIRTHDAYS:
        return pairs
    return Pairs(pairs.left, pairs.right, pairs.li[unlike], pairs.ri[unlike])


def _salted_levels(comp: Comparison) -> tuple[list[int], tuple[str, ...]]:
    """Levels of ``comp`` that test Dice on a salted Bloom column, and that column's salt tokens."""
    found, tokens = [], ()
    for i, level in enumerate(comp.levels):
        if isinstance(level.test, DiceAtLeast) and level.test.column in BLOOM_SALT_TOKENS:
            found.append(i)
            tokens = BLOOM_SALT_TOKENS[level.test.column]
    return found, tokens


def estimate_u(comparisons: list[Comparison], rand: Pairs, gammas: np.ndarray, dedupe: bool,
               smoothing: float = 0.5, seed: int = 0) -> list[np.ndarray]:
    """u per level from random pairs; an exact first level on one token is computed exactly.

    A level on a salted Bloom column is measured among random pairs *that share the salt*:
    across salts its Dice is meaningless, so among all random pairs it almost never fires,
    and a u taken there would make it look like near-proof whenever the blocking (on a date
    of birth, say) has already made the salts agree; and among those, only pairs of different
    birthdays (:func:`other_birthdays`), so a person's own records do not count as strangers.
    """
    out = []
    for k, comp in enumerate(comparisons):
        n = len(comp.levels)
        g = gammas[:, k]
        known = g[g != NULL]
        counts = np.bincount(known, minlength=n).astype(float) + smoothing
        u = counts / counts.sum()
        column = measured_column(comp)
        if column is not None and len(known):
            # the share among pairs where both are present: divide by the present share
            present = len(known) / max(len(g), 1)
            exact = _exact_share(rand.left, rand.right, column, dedupe)
            if exact is not None and present > 0:
                exact = min(max(exact / present, 1e-9), 0.999)
                rest = counts[1:] / counts[1:].sum()
                u = np.concatenate([[exact], (1 - exact) * rest])
        salted, tokens = _salted_levels(comp)
        if salted and len(rand):
            # drawn once per random pair set and salt: every comparison salted alike, in every
            # match type sharing these random pairs, measures u on the same pairs (and their Dice)
            same = rand.memo(("same salt, other birthdays", tokens, dedupe, seed), lambda: other_birthdays(
                same_salt_pairs(rand.left, rand.right, dedupe, tokens, len(rand), seed)))
            g_same = comp.levels_of(same)
            g_same = g_same[g_same != NULL]
            if len(g_same):
                share = (np.bincount(g_same, minlength=n)[salted] + smoothing) / (len(g_same) + smoothing)
                others = [i for i in range(1, n) if i not in salted]  # level 0 (exact) stays as computed
                u = u.copy()
                u[salted] = share
                u[others] *= max(1.0 - u[0] - share.sum(), 1e-6) / u[others].sum()
        out.append(normalise(u))
    return out


#: u among non-matches is kept at least this share of u among random pairs
U_KEEP = 0.25


def without_matches(u: list[np.ndarray], m: list[np.ndarray], lam: float) -> list[np.ndarray]:
    """u among non-matching pairs, from u among random pairs.

    Random pairs include the matching ones (a share λ of them, distributed by m), and for a
    specific level (an identical full address) they are most of its random agreements: u
    taken as it is makes such a level look λ·m more common among different people than it
    is. Subtracted, with u kept at least ``U_KEEP`` of its measured value so that a noisy λ
    cannot turn a level into proof.
    """
    return [normalise(np.maximum((uk - lam * mk) / (1.0 - lam), U_KEEP * uk)) for uk, mk in zip(u, m)]


def _informative(gammas: np.ndarray, k: int) -> bool:
    """Present in enough of a rule's pairs to help EM tell the two classes apart."""
    return bool((gammas[:, k] != NULL).mean() >= 0.2)


#: a blocking rule's EM must expect at least this many matching pairs to teach anything
MIN_EXPECTED_MATCHES = 20.0


#: a field present in fewer than 20% of a rule's pairs is learned from the pairs that carry it,
#: when there are at least this many of them
MIN_PRESENT_PAIRS = 200


#: EM over a rule's pairs identifies how often matches *differ* on a field only when at least
#: this many informative comparisons are free there (latent classes need three indicators)
IDENTIFIED_FREE = 3


@dataclass(frozen=True)
class Taught:
    """What one rule's EM says about one comparison: λ among its pairs, m, how many comparisons were free."""

    lam: float
    m: np.ndarray
    free: int


def _rule_taught(gammas: np.ndarray, unblocked: list[int], n_levels: list[int], u: list[np.ndarray],
                 m_start: list[np.ndarray], settings: TrainingSettings, lift: list[bool],
                 u_by_home: tuple[np.ndarray, dict[int, list[np.ndarray]]] | None = None) -> dict[int, Taught]:
    """What EM over one rule's pairs teaches each comparison it leaves free."""
    taught = _teach(gammas, unblocked, n_levels, u, m_start, settings, lift, u_by_home)
    # a field only some data sets carry (a NINO, an email) is present in few of a rule's
    # pairs: EM over all of them leaves it out, and it would keep its documented start
    # whatever the data say. Learn it from the pairs that carry it, where it is informative.
    for k in unblocked:
        present = gammas[:, k] != NULL
        if k not in taught and MIN_PRESENT_PAIRS <= present.sum() < len(gammas):
            sub = _teach(gammas[present], unblocked, n_levels, u, m_start, settings, lift,
                         None if u_by_home is None else (u_by_home[0][present], u_by_home[1]))
            if k in sub:
                taught[k] = sub[k]
    return taught


def _teach(gammas: np.ndarray, unblocked: list[int], n_levels: list[int], u: list[np.ndarray],
           m_start: list[np.ndarray], settings: TrainingSettings, lift: list[bool],
           u_by_home: tuple[np.ndarray, dict[int, list[np.ndarray]]] | None = None) -> dict[int, Taught]:
    """EM over one set of pairs on its informative unblocked comparisons: {k: Taught}."""
    free = [k for k in unblocked if _informative(gammas, k)]
    if len(free) < 2:
        return {}
    result = fit_m(gammas, n_levels, u, _starts(m_start, u, n_levels), free, settings.em, lift, u_by_home)
    if result.lam * len(gammas) < MIN_EXPECTED_MATCHES:
        return {}
    return {k: Taught(result.lam, result.m[k], len(free)) for k in free}


def bounded_difference(taught: Taught, bound: np.ndarray) -> np.ndarray:
    """m with its last level ("different") at most ``bound``'s, the other levels scaled to make up the rest.

    Why: with only two comparisons free, one of them alone tells EM's two classes apart, so
    look-alikes that agree on it are taken for matches whose other field is wrong: within one
    surname, namesakes (same forename, another date of birth) made "a different date of birth"
    32% of matches in a names-and-birthdays file, where it is a few per cent, and flagged them.
    Such an estimate of "different" is biased upwards, never downwards; it is bounded by a
    better-identified rule's (``IDENTIFIED_FREE`` comparisons free) or, with none, the documented
    start (``m_start``), and only ever lowered.
    """
    m = np.asarray(taught.m, dtype=float).copy()
    if taught.free >= IDENTIFIED_FREE:
        return m
    cap = float(normalise(np.asarray(bound, dtype=float))[-1])
    if m[-1] <= cap:
        return m
    m[:-1] *= (1.0 - cap) / max(m[:-1].sum(), 1e-300)
    m[-1] = cap
    return m


#: an anchor pair agrees exactly on at least this many comparisons besides the one being
#: taught and disagrees on none it carries (same surname, date of birth and address or NINO)
ANCHOR_MIN_EXACT = 3
#: the anchors bound a "different" level's m only when there are at least this many
MIN_ANCHOR_PAIRS = 50


def anchor_levels(gammas: np.ndarray, k: int) -> np.ndarray:
    """Rows of ``gammas`` that are anchors for comparison ``k``: ``k`` present, every other
    comparison present agreeing exactly, at least ``ANCHOR_MIN_EXACT`` of them."""
    present = gammas != NULL
    others = np.ones(gammas.shape[1], dtype=bool)
    others[k] = False
    exact = (gammas[:, others] == 0) | ~present[:, others]
    return present[:, k] & exact.all(axis=1) & (present[:, others].sum(axis=1) >= ANCHOR_MIN_EXACT)


def anchored_m(m: np.ndarray, u: np.ndarray, agreeing: int, counts: np.ndarray) -> np.ndarray:
    """m of a comparison with near-miss levels after the first ``agreeing`` ("the forenames
    differ but share an initial"), its last level ("different") bounded by anchor pairs.

    Why: EM cannot tell a near miss among matches from the same among look-alikes (members of
    one household agree on everything else a rule does not block on), and put the m of a wholly
    different forename anywhere from 0 to 18% of matches. Pairs agreeing exactly on several
    other fields are almost surely matches (Splink trains m on deterministic-rule pairs for the
    same reason), but they also hold twins and namesakes at one address, so their share at the
    last level is an upper bound on its m: it lowers EM's, though never below the share that no
    anchor at all at the last level would give (half a pair's worth). The near-miss levels keep
    EM's m (taking theirs from the anchors too was measured and cost recall: docs/benchmarks.md).
    """
    n = len(m)
    if agreeing >= n - 1 or counts.sum() < MIN_ANCHOR_PAIRS:
        return m
    share = (counts + 0.5 * u) / (counts.sum() + 0.5)
    out = np.asarray(m, dtype=float).copy()
    # ... and never below what no anchor at all there would give: EM's m of 0 made a wholly
    # different forename a veto (-19.8 bits) that the same SSN, surname and birthday could not
    # overcome where the forename given was the other's middle name, mistyped (DNNIS / ROBERT DENNIS)
    floor = 0.5 * u[n - 1] / (counts.sum() + 0.5)
    out[n - 1] = min(max(out[n - 1], floor), share[n - 1])
    rest = 1.0 - out[agreeing:].sum()
    out[:agreeing] *= rest / max(out[:agreeing].sum(), 1e-300)
    return project_monotone(out, u)


def estimate_m(comparisons: list[Comparison], blocking: list[list[str]], u: list[np.ndarray],
               m_start: list[np.ndarray], pairs_of_rule, settings: TrainingSettings,
               u_under: Callable[[list[str]], list[np.ndarray]] | None = None,
               done: dict[tuple[str, ...], tuple[Pairs, np.ndarray, dict[int, Taught] | None]] | None = None,
               u_home: Callable[[Pairs, list[np.ndarray]], tuple[np.ndarray, dict[int, list[np.ndarray]]] | None]
               | None = None) -> tuple[list[np.ndarray], list[str]]:
    """m per comparison: EM once per blocking rule on the comparisons it leaves free.

    Each comparison takes its m from the *purest* rule that can teach it: the one whose
    pairs are most often matches (highest λ among rules expecting at least
    ``MIN_EXPECTED_MATCHES``). Why not an average: a rule on surname or address pairs up
    whole households, whose members agree on the other shared fields far more often than
    random pairs do; EM then counts them as matches and learns that a different forename
    or date of birth is common among matches. A rule on a person-specific field (an id,
    a date of birth, a full name) has few such look-alikes.

    ``pairs_of_rule(rule)`` gives the training pairs that rule finds; ``u_under(rule)`` the u
    of each comparison among the different people that rule pairs up (:func:`rule_u`; default
    ``u``). ``done``: each rule's pairs, levels and what EM taught with ``u`` (filled here, and
    read by a second call for the rules whose u it leaves as they were). Returns m and the names
    of comparisons no rule could teach (they keep ``m_start``).
    """
    n_levels = [len(c.levels) for c in comparisons]
    best: list[Taught | None] = [None] * len(comparisons)
    identified: list[Taught | None] = [None] * len(comparisons)  # the purest with IDENTIFIED_FREE free
    lift = [c.near_miss for c in comparisons]  # see matching.em.project_monotone
    anchored = [k for k, near_miss in enumerate(lift) if near_miss]
    # per anchored comparison: (pair code, level) of the anchors each rule found; a pair found by
    # several rules is counted once
    anchors: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in anchored}
    done = {} if done is None else done
    for rule in blocking:
        pairs, gammas, earlier = done.get(tuple(rule)) or (pairs_of_rule(rule), None, None)
        if len(pairs) == 0:
            continue
        gammas = comparison_vectors(comparisons, pairs) if gammas is None else gammas
        unblocked = [k for k, c in enumerate(comparisons) if not c.columns() & set(rule)]
        u_rule = u_under(rule) if u_under else u
        by_home = u_home(pairs, u_rule) if u_home else None
        plain = by_home is None and all(a is b or np.array_equal(a, b) for a, b in zip(u_rule, u))
        for k in anchored:
            if k in unblocked:  # a rule blocking on the field would make its anchors agree on it
                rows = np.flatnonzero(anchor_levels(gammas, k))
                codes = pairs.li[rows].astype(np.int64) * np.int64(pairs.right.n) + pairs.ri[rows]
                anchors[k].append((codes, gammas[rows, k].astype(np.int64)))
        taught = earlier if plain and earlier is not None else _rule_taught(gammas, unblocked, n_levels, u_rule,
                                                                              m_start, settings, lift, by_home)
        done[tuple(rule)] = (pairs, gammas, taught if plain else earlier)
        for k, t in taught.items():
            if best[k] is None or t.lam > best[k].lam:
                best[k] = t
            if t.free >= IDENTIFIED_FREE and (identified[k] is None or t.lam > identified[k].lam):
                identified[k] = t
    m = []
    for k, b in enumerate(best):
        if b is not None:
            bound = m_start[k] if identified[k] is None else identified[k].m
            m.append(project_monotone(bounded_difference(b, bound), u[k], lift[k]))
        else:
            m.append(project_monotone(m_start[k], u[k], lift[k]))
    for k in anchored:
        codes = np.concatenate([c for c, _ in anchors[k]]) if anchors[k] else np.zeros(0, np.int64)
        levels = np.concatenate([lv for _, lv in anchors[k]]) if anchors[k] else np.zeros(0, np.int64)
        _, first = np.unique(codes, return_index=True)
        counts = np.bincount(levels[first], minlength=n_levels[k]).astype(float)
        m[k] = anchored_m(m[k], u[k], comparisons[k].agreeing, counts)
    return m, [c.name for c, b in zip(comparisons, best) if b is None]


def _starts(m_start: list[np.ndarray], u: list[np.ndarray], n_levels: list[int]) -> list[list[np.ndarray]]:
    """The declared start, a confident one (most matches agree exactly) and a cautious one."""
    confident = [normalise(np.r_[0.9, np.full(n - 1, 0.1 / (n - 1))]) for n in n_levels]
    cautious = [normalise(0.5 * normalise(m) + 0.5 * np.r_[np.full(n - 1, 1.0 / n), 1.0 / n])
                for m, n in zip(m_start, n_levels)]
    return [[normalise(x) for x in m_start], confident, cautious]


#: :func:`deterministic_matches` asks for exact agreement on a comparison when at least this share
#: of matches agree on it exactly, else for any level that is evidence for a match if at least this
#: share of matches reach one
RELIABLE = 0.5


def deterministic_matches(gammas: np.ndarray, m: list[np.ndarray], u: list[np.ndarray] | None = None) -> float:
    """Expected matching pairs among ``gammas``, from the pairs that agree on every comparison
    both records carry (at least two): each counts 1 / P(all agree | match).

    This is Splink's "λ from deterministic rules" with the rule's recall taken from the
    model itself rather than assumed. Unlike EM on λ it cannot run away: a pair that
    disagrees anywhere never counts, however the rest of the model is fitted.

    On a comparison few matches agree on exactly (m of "exact" below :data:`RELIABLE`) but most
    reach a level that is evidence for a match (m > u; FEBRL's addresses: 9% exact, 99% exact,
    near or similar), any such level will do. Exact there leaves a dozen pairs to count, and
    the recall as a product of m's assumes errors independent, which they are not where every
    duplicate has at least one change: on FEBRL2, 13 pairs agreed exactly on all five
    comparisons and λ came out a sixth of the truth (330 of 1,934 matches), so true pairs
    among random ones looked like a degenerate fit. A comparison that, by the model, most
    matches *disagree* on stays exact: that m is more likely EM's mistake (namesakes taken for
    matches with another birthday) than the data's, and relaxing it would count the namesakes.
    """
    if len(gammas) == 0:
        return 0.0
    exact = [np.arange(len(mk)) == 0 for mk in m]
    # per comparison: the levels the rule accepts
    counted = [_evidence(mk, u[k], exact[k]) if u is not None and float(mk[0]) < RELIABLE else exact[k]
               for k, mk in enumerate(m)]
    present = gammas != NULL
    level = np.where(present, gammas, 0)
    agree = np.column_stack([counted[k][level[:, k]] for k in range(len(m))]) & present
    enough = present.sum(axis=1) >= 2
    rows = enough & (agree | ~present).all(axis=1)
    rule = np.array([mk[c].sum() for mk, c in zip(m, counted)])  # P(counted level | match)
    strict = float((1.0 / _recall(present[rows], rule)).sum())
    if int(rows.sum()) >= MIN_RULE_PAIRS or u is None:
        return strict
    # Too few pairs for the rule to say anything (none, where every duplicate has one change
    # in one field, as in RLdata): all but one comparison at a counted level, the one left at
    # a level that is still evidence for a match (a typo, not another birthday)
    evidence = [_evidence(mk, uk, c) for mk, uk, c in zip(m, u, counted)]
    near = np.column_stack([evidence[k][level[:, k]] for k in range(len(m))]) & present
    loose = enough & (near | ~present).all(axis=1) & ((present & ~agree).sum(axis=1) <= 1)
    if int(loose.sum()) <= int(rows.sum()):
        return strict
    support = np.array([mk[e].sum() for mk, e in zip(m, evidence)])  # P(evidence level | match)
    return float((1.0 / _recall(present[loose], rule, support)).sum())


#: fewer pairs than this meeting a dedupe's deterministic rule say nothing about λ
MIN_RULE_PAIRS = 10


def _evidence(m: np.ndarray, u: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``base`` levels widened to every level that is evidence for a match (m > u), if most
    matches reach one by the model; else ``base`` (not on a comparison most matches disagree on:
    see :func:`deterministic_matches`)."""
    levels = (m > u) | base
    return levels if float(m[levels].sum()) >= RELIABLE else base


def _recall(present: np.ndarray, rule: np.ndarray, support: np.ndarray | None = None) -> np.ndarray:
    """P(a match meets the rule) for each row's present comparisons (independent): every one at a
    counted level, or (``support``) all but at most one, that one at an evidence level."""
    p = np.where(present, rule, 1.0)
    every = np.prod(p, axis=1)
    if support is None:
        return every
    one_off = np.zeros(len(present))
    for k in range(present.shape[1]):
        others = np.prod(np.delete(p, k, axis=1), axis=1)
        one_off += np.where(present[:, k], (support[k] - rule[k]) * others, 0.0)
    return every + one_off


def logit2(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def caps_for(model: FittedModel, threshold: float) -> dict[str, float]:
    """Per comparison, the most weight it may give: a pair agreeing on it alone while every
    other comparison disagrees must stay ``CAP_MARGIN_BITS`` below the threshold."""
    if len(model.comparisons) < 3:
        return {}
    w = model.weights()
    prior = logit2(model.lam)
    target = logit2(threshold) - CAP_MARGIN_BITS
    diff = np.array([wk[-1] for wk in w])
    caps = {}
    for k, comp in enumerate(model.comparisons):
        cap = target - prior - (diff.sum() - diff[k])
        top = float(w[k].max())
        if top > cap or comp.levels[0].tf_column:
            caps[comp.name] = float(max(cap, 0.0))
    return caps


def check_fit(model: FittedModel, rand: Pairs, threshold: float, expected_matches: float, records: int,
              settings: TrainingSettings, in_scope: np.ndarray) -> list[str]:
    """The reasons the model is degenerate (empty: it passed).

    ``in_scope``: which random pairs lie in the match type's scope. Only those count as flagged:
    λ counts the matches in scope, and a person's two records in two councils, say, are a
    true match a same-council type's random pairs may well draw (and should score high).
    """
    reasons = []
    flagged = int(((score(model, rand).probability >= threshold) & in_scope).sum()) if len(rand) else 0
    allowed = settings.random_pair_tolerance * model.lam * len(rand) + 3
    model.fit_stats = {"random_pairs_scored": len(rand), "random_pairs_flagged": flagged,
                       "random_pairs_expected": float(model.lam * len(rand))}
    if flagged > allowed:
        reasons.append(f"{flagged} of {len(rand)} random pairs score ≥ {threshold} where about "
                       f"{model.lam * len(rand):.1f} would be the same person")
    agreeing = sum(float(m[0]) > float(m[-1]) for m in model.m)
    if agreeing * 2 < len(model.m):
        reasons.append("the match class disagrees on most comparisons (EM found the wrong cluster)")
    if expected_matches > 5 * max(records, 1):
        reasons.append(f"λ implies {expected_matches:.0f} matching pairs among {records} records")
    return reasons


# ---------------------------------------------------------------------------
# Training one match type (the steps above, in order)
# ---------------------------------------------------------------------------

@dataclass
class Models:
    linkage: FittedModel
    person: FittedModel | None = None
    #: ``left_person_missing`` as estimated from the data (None: the match type's value is used)
    household: HouseholdFit | None = None

    def to_json(self) -> dict:
        out = self.linkage.to_json()
        if self.person is not None:
            out["person"] = self.person.to_json()
        if self.household is not None:
            out["household"] = self.household.to_json()
        return out

    def left_person_missing(self, mt: MatchType) -> float:
        return self.household.left_person_missing if self.household is not None else float(mt.left_person_missing)


@dataclass
class TrainingContext:
    """What one run's training shares between match types: the pool and its learned m.

    Match types with the same person linkage share one pooled estimate; the context is
    made per run (no process-wide cache), so two runs never see each other's models.
    Linkages that differ in a comparison or two each need their own estimate, but they draw
    the same random pairs and blocking-rule pairs from the pool: those are kept here, so a
    comparison the linkages share is evaluated on them once (``Pairs`` keeps its levels).
    """

    pool: LinkInputs | None = None
    #: data set -> share of its records in the training sample (absent: all of them)
    sampled: dict[str, float] = field(default_factory=dict)
    pooled_m: Kept = field(default_factory=Kept)
    pool_pairs: Kept = field(default_factory=Kept)

    def m_from_pool(self, linkage: Linkage) -> tuple[list[np.ndarray], list[str]]:
        key = (tuple(map(tuple, linkage.blocking)), tuple(c.model_dump_json() for c in linkage.comparisons))

        def estimate() -> tuple[list[np.ndarray], list[str]]:
            u = _u_of(linkage, self.pool, self.pool_pairs)[0]
            return _estimate_m(_POOL_TYPE, linkage, self.pool, u, self.pool_pairs)

        m, untaught = self.pooled_m.get(key, estimate)
        return [x.copy() for x in m], list(untaught)

    def pooled_work(self, linkages: list[Linkage]) -> list[Callable[[], object]]:
        """The pool's pairs that the pooled estimates of ``linkages`` start from (random pairs, each
        blocking rule's pairs) with their comparisons' levels, one piece of work per set of pairs.

        Why: run on the training threads before the match types, these are shared out between
        the threads; otherwise the first match type to ask makes them all, one after another,
        and another thread asking for the same pairs waits for it (:class:`matching.kept.Kept`)."""
        if self.pool is None:
            return []
        work: dict[tuple, tuple[Callable[[], Pairs], dict[Comparison, None]]] = {}
        for linkage in linkages:
            if linkage.m_from != "pool" or linkage.u_from == "em":
                continue
            settings, comps = linkage.training_settings(), linkage.built()
            pieces = [_random_pairs_of(linkage, self.pool, self.pool_pairs)]
            pieces += [_rule_pairs_of(_POOL_TYPE, self.pool, rule, settings, self.pool_pairs) for rule in linkage.blocking]
            for key, make in pieces:
                work.setdefault(key, (make, {}))[1].update(dict.fromkeys(comps))
        return [partial(_levels_of_kept, make, list(comps)) for make, comps in work.values()]


#: the pool's stand-in match type: its pairs lie in any scope
_POOL_TYPE = MatchType.model_construct(id=POOL, left=POOL, right=POOL, scope="any")


def _levels_of_kept(make: Callable[[], Pairs], comps: list[Comparison]) -> None:
    comparison_vectors(comps, make())  # kept with the pairs (Pairs.memo)


def _kept(shared: Kept | None, key: tuple, make: Callable[[], Pairs]) -> Pairs:
    """``make()``, kept in ``shared`` under ``key`` for the next linkage (no cache: None)."""
    return make() if shared is None else shared.get(key, make)


def _random_pairs_of(linkage: Linkage, inp: LinkInputs, shared: Kept | None) -> tuple[tuple, Callable[[], Pairs]]:
    """(key, maker) of the random pairs ``linkage`` draws from ``inp`` (kept in ``shared``)."""
    settings = linkage.training_settings()
    key = ("random", settings.random_pairs, settings.seed)
    return key, partial(_kept, shared, key,
                        lambda: random_pairs(inp.left, inp.right, inp.dedupe, settings.random_pairs, settings.seed))


def _rule_pairs_of(mt: MatchType, inp: LinkInputs, rule: list[str], settings: TrainingSettings,
                   shared: Kept | None) -> tuple[tuple, Callable[[], Pairs]]:
    """(key, maker) of the training pairs a blocking rule finds in ``inp`` (kept in ``shared``)."""
    def find() -> Pairs:
        cands, _ = training_candidates(mt, inp, [rule], settings.max_training_pairs)
        return Pairs(inp.left, inp.right, cands.li, cands.ri)
    key = ("rule", tuple(rule), settings.max_training_pairs)
    return key, partial(_kept, shared, key, find)


def _u_of(linkage: Linkage, inp: LinkInputs, shared: Kept | None = None) -> tuple[list[np.ndarray], Pairs]:
    """u of each comparison from random pairs (``shared``: a cache of pairs drawn from ``inp`` before)."""
    settings = linkage.training_settings()
    comps = linkage.built()
    rand = _random_pairs_of(linkage, inp, shared)[1]()
    return estimate_u(comps, rand, comparison_vectors(comps, rand), inp.dedupe, seed=settings.seed), rand


def rule_u(comparisons: list[Comparison], u: list[np.ndarray],
           u_given: dict[str, dict[tuple[str, ...], np.ndarray]], rule: list[str]) -> list[np.ndarray]:
    """u of each comparison among the *different people* a blocking rule pairs up, where the
    rule holds equal a field another one depends on (``given``).

    Why: EM over a rule's pairs weighs them with u from random pairs, as if the rule's field
    said nothing about the others. A rule on the address pairs up households, whose members
    share a surname; a rule on the surname pairs up families, who share an address. With the
    random u, a housemate's shared surname (or a relative's shared address) is strong evidence,
    EM counts household members as matches, and learns that one person's two records often
    differ in forename ("same initial" rose to +1 bit on a census-like set). So, where the rule
    holds a ``given`` group's columns equal, a dependent comparison takes its u among such pairs
    (of several groups held, the one that discounts agreement most); where it holds a dependent
    comparison's own token equal, the comparison whose first level is agreement on a one-column
    group agrees that much more often (Bayes' rule:
    P(same address | same surname) = P(same surname | same address) P(same address) / P(same surname)).
    """
    out = [x.copy() for x in u]
    held = set(rule)
    for c, comp in enumerate(comparisons):
        groups = u_given.get(comp.name, {})  # (only comparisons with ``given`` have one)
        if comp.columns() & held:
            if measured_column(comp) in held:
                for group, ug in groups.items():
                    if len(group) == 1:
                        _raise_agreement_on(comparisons, u, out, group[0], ug[0] / max(u[c][0], 1e-12), held, c)
            continue
        at = [ug for group, ug in groups.items() if set(group) <= held]
        if at:
            out[c] = max(at, key=lambda ug: ug[0]).copy()
    return out


def _raise_agreement_on(comparisons: list[Comparison], u: list[np.ndarray], out: list[np.ndarray],
                        column: str, ratio: float, held: set[str], skip: int) -> None:
    """Where a rule holds a dependent field equal, the comparison agreeing first on ``column``
    agrees ``ratio`` times as often among the pairs (capped at one in two; the rest renormalised)."""
    for k, other in enumerate(comparisons):
        if k == skip or measured_column(other) != column or other.columns() & held:
            continue
        agree = min(u[k][0] * ratio, 0.5)
        rest = u[k][1:] * (1 - agree) / max(1 - u[k][0], 1e-12)
        out[k] = np.concatenate([[agree], rest])


def _estimate_m(mt: MatchType, linkage: Linkage, inp: LinkInputs, u: list[np.ndarray], shared: Kept | None = None
                ) -> tuple[list[np.ndarray], list[str]]:
    settings = linkage.training_settings()
    comps = linkage.built()

    def pairs_of_rule(rule: list[str]) -> Pairs:
        return _rule_pairs_of(mt, inp, rule, settings, shared)[1]()

    done: dict = {}  # each rule's pairs, levels and EM with the random u: the second round reuses them
    m, untaught = estimate_m(comps, linkage.blocking, u, linkage.m_starts(), pairs_of_rule, settings, done=done)
    if not any(c.given for c in comps):
        return m, untaught
    # how housemates agree, judged with the m just learned; then m again, with EM over a rule that
    # pairs up households no longer taking them for one person (rule_u)
    first = FittedModel(comps, m, u, 1e-4)
    u_given = conditional_u(first, inp.left, inp.right, inp.dedupe, settings.random_pairs, settings.seed)
    if not u_given:
        return m, untaught
    # ... and within any rule, a pair that agrees on a given group judged with the u there, as
    # scoring judges it (a rule on the birthday pairs up twins at home, one on the surname a
    # household's members): else EM counts them as one person and learns that one person's
    # forenames often differ
    first.given_alike = alike_levels(first)
    alike = first.alike()
    return estimate_m(comps, linkage.blocking, u, linkage.m_starts(), pairs_of_rule, settings,
                      lambda rule: rule_u(comps, u, u_given, rule), done,
                      lambda pairs, u_rule: home_u(comps, pairs, u_rule, u_given, alike))


#: a level of the comparison measuring a ``given`` column counts as agreeing on it when the model
#: weighs it within this many bits of agreement itself (see :func:`alike_levels`)
ALIKE_BITS = 1.0


def alike_levels(model: FittedModel) -> dict[str, tuple[int, ...]]:
    """Per ``given`` column, the levels of the comparison measuring it (after its first,
    agreement) that the model weighs as much as agreement, within :data:`ALIKE_BITS`.

    Why: a household is told apart at one address, but where addresses are typed by hand one
    member's may carry a typo ("4337 S E FAIRBQX STEEET"): the pair is at the "near" level, not
    the same token, and the surname counted as between strangers (+11 bits, not +2), so parent
    and child scored 0.9-0.99 (a census with four times pseudopeople's noise: 78% of pairs in
    that band were one person; docs/benchmarks.md). Only where the data make the level as
    strong as agreement: in a set where "near" addresses are mostly neighbours it weighs about
    nothing, and a pair there is no household."""
    out: dict[str, tuple[int, ...]] = {}
    comparisons = model.comparisons
    columns = {column for comp in comparisons for group in comp.given for column in group}
    for column in sorted(columns):
        try:
            comp = measuring(comparisons, column)
        except KeyError:  # a column no comparison measures (an email's names): the token decides
            continue
        k = comparisons.index(comp)
        w = model.weights_of(model.m[k], model.u[k])
        levels = tuple(j for j in range(1, len(comp.levels) - 1)
                       if comp.levels[j].agrees and w[j] > 0 and w[j] >= w[0] - ALIKE_BITS)
        if levels:
            out[column] = levels
    return out


def home_u(comparisons: list[Comparison], pairs: Pairs, u_rule: list[np.ndarray],
           u_given: dict[str, dict[tuple[str, ...], np.ndarray]],
           alike: dict[str, tuple[Comparison, tuple[int, ...]]] | None = None
           ) -> tuple[np.ndarray, dict[int, list[np.ndarray]]] | None:
    """Per pair, a code of the ``given`` groups it agrees on, and per code the u EM judges such
    pairs with: a dependent comparison's u among people agreeing on them (of several groups, the
    one that discounts agreement most, as :func:`rule_u`). None if no pair agrees on any.
    ``alike``: levels that count as agreeing on a column too (:func:`alike_levels`)."""
    groups = sorted({g for by_group in u_given.values() for g in by_group})
    home = np.zeros(len(pairs), dtype=np.int64)
    for bit, group in enumerate(groups):
        holds = next(c for c in comparisons if group in c.given).given_holds(pairs, group, alike)  # as scoring tests it
        home |= holds.astype(np.int64) << bit
    if not home.any():
        return None
    u_of = {}
    for code in np.unique(home[home > 0]):
        held = {g for bit, g in enumerate(groups) if int(code) >> bit & 1}
        u_of[int(code)] = [max((ug for g, ug in u_given.get(c.name, {}).items() if g in held), key=lambda ug: ug[0],
                               default=u_rule[k]) for k, c in enumerate(comparisons)]
    return home, u_of


def fit_linkage(mt: MatchType, linkage: Linkage, inp: LinkInputs, train_pairs: Pairs, fraction: float,
                ctx: TrainingContext | None = None) -> FittedModel:
    """A fitted, bounded and checked model of one linkage (see :mod:`matching.training`)."""
    settings = linkage.training_settings()
    comps = linkage.built()
    n_levels = [len(c.levels) for c in comps]
    u, rand = _u_of(linkage, inp)
    train_gammas = comparison_vectors(comps, train_pairs)
    floor = linkage.u_from != "em"  # see FittedModel.agreement_floor

    def expected_and_lambda(m: list[np.ndarray], u: list[np.ndarray]) -> tuple[float, float]:
        expected = _expected_matches(train_pairs, train_gammas, m, u, inp.dedupe, settings,
                                     inp.all_pairs * fraction) / fraction
        return expected, float(np.clip(expected / max(inp.all_pairs, 1), 1e-12, 0.5))

    def bounded(m: list[np.ndarray], u: list[np.ndarray], lam: float) -> FittedModel:
        return _bounded(FittedModel(comps, m, u, lam, 0, len(train_pairs), len(rand), agreement_floor=floor),
                        linkage, inp)

    if linkage.u_from == "em":
        # u among the candidates themselves (e.g. people at one address, where random pairs
        # say nothing about how two members of a household differ): m, u and λ by plain EM
        m, u, lam, _ = fit_em(train_gammas, n_levels, linkage.m_starts(), u)
        untaught: list[str] = []
        expected = lam * len(train_pairs)
    else:
        if ctx is not None and ctx.pool is not None and linkage.m_from == "pool":
            m, untaught = ctx.m_from_pool(linkage)
            own = [k for k, c in enumerate(linkage.comparisons) if c.m_from == "em"]
            if own:  # these comparisons' m from the match type's own pairs
                own_m, own_untaught = _estimate_m(mt, linkage, inp, u)
                for k in own:
                    m[k] = own_m[k]
                names = {comps[k].name for k in own}
                untaught = [n for n in untaught if n not in names] + [n for n in own_untaught if n in names]
        else:
            m, untaught = _estimate_m(mt, linkage, inp, u)
        expected, lam = expected_and_lambda(m, u)
        u = without_matches(u, m, lam)
    model = bounded(m, u, lam)
    in_scope = scope_mask(mt, inp, rand.li, rand.ri)
    reasons = check_fit(model, rand, linkage.threshold, expected, inp.records, settings, in_scope)
    fallback = False
    if reasons and linkage.u_from != "em":
        fallback = True
        m = [project_monotone(mk, uk, c.near_miss) for mk, uk, c in zip(linkage.m_starts(), u, comps)]
        expected, lam = expected_and_lambda(m, u)
        model = bounded(m, u, lam)
        again = check_fit(model, rand, linkage.threshold, expected, inp.records, settings, in_scope)
        if again:
            raise DegenerateFit(f"match type {mt.id}: the trained model is degenerate ({'; '.join(reasons)}) "
                                f"and so is the fallback to documented priors ({'; '.join(again)})")
    model.patterns = agreement_patterns(train_gammas)
    notes = []
    if expected < 1:
        notes.append(f"the model expects {expected:.2g} matching pairs among {inp.records:,} records, so it will "
                     "flag almost nothing: right for a file without duplicates, wrong if some are known to be there")
    model.fit_check = FitCheck(passed=not reasons, fallback=fallback, reasons=reasons, notes=notes,
                               expected_matches=float(expected), records=int(inp.records),
                               m_from_prior=untaught, capped=dict(model.caps), **model.fit_stats)
    return model


def _expected_matches(pairs: Pairs, gammas: np.ndarray, m: list[np.ndarray], u: list[np.ndarray],
                      dedupe: bool, settings, population: float) -> float:
    """Matching pairs among the training candidates (a sample of ``population`` pairs).

    Linking two files: EM on λ with each record matching at most one on the other side
    (:func:`matching.em.fit_lambda_one_to_one`). Deduplicating, where a person may have any
    number of records: the pairs agreeing on everything (exactly where most matches do), over
    the model's recall of that rule (:func:`matching.training.deterministic_matches`).
    """
    if dedupe or len(gammas) == 0:
        return deterministic_matches(gammas, m, u)
    llr = np.zeros(len(gammas))
    for k in range(gammas.shape[1]):
        g = gammas[:, k]
        known = g != NULL
        llr[known] += LN2 * level_weights(m[k], u[k])[g[known]]
    return fit_lambda_one_to_one(llr, pairs.li, pairs.ri, population, settings.em)


def _bounded(model: FittedModel, linkage: Linkage, inp: LinkInputs) -> FittedModel:
    model.tf = tf_tables(model.comparisons, inp.frames()) if linkage.tf_adjust else {}
    model.caps = caps_for(model, linkage.threshold)
    settings = linkage.training_settings()
    model.u_given = conditional_u(model, inp.left, inp.right, inp.dedupe, settings.random_pairs, settings.seed)
    model.given_alike = alike_levels(model) if model.u_given else {}
    return model


#: conditional u needs at least this many non-matching pairs that agree on the given columns.
#: Enough that a share is known to within about 0.07 (one standard error); far above the handful
#: a data set without households has (FEBRL: 0-5, true pairs whose names were both changed, which
#: the other fields' posterior takes for two people), and low enough for a small file of real
#: households: at 200 a 5,000 x 5,000 council link without NINOs (168 such pairs) missed it, and
#: twins, lodgers and look-alikes sharing a flat and a birthday were scored as one person.
MIN_GIVEN_PAIRS = 50.0

#: the token of a person identifier: the surest judge of whether two records are one person,
#: though a household sometimes copies one member's number onto another's form
PERSON_ID = "t_nino"
#: the identifier's u among people sharing a home counts only pairs at least this surely two people
SURELY_DIFFERENT = 0.95


def conditional_u(model: FittedModel, left: Side, right: Side, dedupe: bool, n: int, seed: int,
                  smoothing: float = 1.0) -> dict[str, dict[tuple[str, ...], np.ndarray]]:
    """u per level among *different people who agree on a comparison's* ``given`` *columns*,
    for each of its groups.

    Why: the model multiplies evidence as if fields were independent, but a surname is not
    independent of an address (a household shares both) nor an email of a name. Among random
    pairs an exact surname is 1 in 80; among two people at one address it is more like 1 in 2,
    so for a pair already agreeing on the address the surname adds little, and twins or a
    parent and child at one address no longer look like one person counted twice.

    Pairs are drawn uniformly among those agreeing on the given columns; the matches among
    them (one person's two records share an address far more often than two people do) are
    weighed out by the model's posterior on the *other* comparisons (λ among these pairs by
    EM with m and u fixed). An agreement level's weight only falls, never below 0 (u ≤ u_given
    ≤ m); a comparison with too few such pairs keeps its ordinary u.
    """
    out: dict[str, dict[tuple[str, ...], np.ndarray]] = {}
    drawn_for: dict[tuple[str, ...], tuple[Pairs, np.ndarray]] = {}
    # twice: a second pass judges each pair with the others' conditional u from the first (the
    # surname and the date of birth of two people at one address must not vouch for each other)
    for _ in range(2):
        found: dict[str, dict[tuple[str, ...], np.ndarray]] = {}
        for k, comp in enumerate(model.comparisons):
            for group in comp.given:
                if group not in drawn_for:
                    drawn_for[group] = _housemates_levels(model.comparisons, left, right, dedupe, group, n, seed)
                u = _u_given(model, k, group, drawn_for[group][1], out, smoothing)
                if u is not None:
                    found.setdefault(comp.name, {})[group] = u
        out = found
    return out


def _housemates_levels(comparisons: list[Comparison], left: Side, right: Side, dedupe: bool,
                       group: tuple[str, ...], n: int, seed: int) -> tuple[Pairs, np.ndarray]:
    """Random pairs of different records agreeing on ``group`` (each pair once), and the
    comparisons' levels there. Deduplicating (the training pool), they are kept with the
    records (``Side.memo``, as arrays: nothing that holds the side, so the pool is freed with
    it): every linkage estimated on the pool, in both rounds of m, draws them alike."""
    def draw() -> tuple[np.ndarray, np.ndarray]:
        # per record: what two people at one address share is a household's pattern for most
        # records, though a few large addresses (a hostel, a block without flat numbers) hold
        # most of the pairs and share little but the address
        drawn = same_salt_pairs(left, right, dedupe, group, n, seed, per_record=True)
        # drawn with replacement: count each pair once, so a few look-alikes cannot pass for many
        _, first = np.unique(drawn.li * np.int64(right.n) + drawn.ri, return_index=True)
        return drawn.li[first], drawn.ri[first]

    if right is not left:
        pairs = Pairs(left, right, *draw())
        return pairs, comparison_vectors(comparisons, pairs)
    key = ("housemates", dedupe, group, n, seed)
    pairs = Pairs(left, right, *left.memo(key, draw))
    return pairs, comparison_vectors(comparisons, pairs, kept=lambda k, make: left.memo((key, k), make))


def _u_given(model: FittedModel, k: int, group: tuple[str, ...], gammas: np.ndarray,
             known_u: dict[str, dict[tuple[str, ...], np.ndarray]], smoothing: float) -> np.ndarray | None:
    """Comparison ``k``'s u among the drawn pairs agreeing on ``group``, the matches among them
    weighed out by the other comparisons (``known_u``: the conditional u found so far)."""
    if len(gammas) == 0:
        return None
    comps = model.comparisons
    use = [j for j, other in enumerate(comps) if j != k and not other.columns() & set(group)]
    if any(PERSON_ID in comps[j].columns() for j in use):
        # a comparison that depends on the same columns (the surname, for the birthday at one
        # address) judges these pairs only once its own u among them is known: with its u among
        # random pairs, twins' shared surname passed them for one person where most pairs at
        # an address are one person's two records, and neither u was ever found. Only with a
        # person identifier to judge by: the forename alone cannot tell twins from duplicates
        # whose forename was changed (FEBRL: docs/benchmarks.md, session 31). The identifier
        # itself judges with its ordinary u until its own at home is known
        use = [j for j in use if PERSON_ID in comps[j].columns() or group not in comps[j].given
               or group in known_u.get(comps[j].name, {})] or use
    u_use = [known_u.get(comps[j].name, {}).get(group, model.u[j]) for j in use]
    non_match = np.ones(len(gammas))
    if use:
        sub = gammas[:, use]
        lam = float(np.clip(fit_lambda(sub, [model.m[j] for j in use], u_use), 1e-9, 1 - 1e-9))
        llr = np.full(len(gammas), math.log(lam) - math.log1p(-lam))
        for i, j in enumerate(use):
            g = gammas[:, j]
            known = g != NULL
            llr[known] += LN2 * model.weights_of(model.m[j], u_use[i])[g[known]]
        non_match = 1.0 - 1.0 / (1.0 + np.exp(-np.clip(llr, -700, 700)))
        if PERSON_ID in comps[k].columns():
            # one person's records agree on the identifier nearly always and two people's
            # nearly never, so the few of one person's records the names take for two people
            # (both names changed) would outnumber the housemates who share a number: only
            # pairs surely two people count
            non_match = np.where(non_match >= SURELY_DIFFERENT, non_match, 0.0)
    g = gammas[:, k]
    known = g != NULL
    if non_match[known].sum() < MIN_GIVEN_PAIRS:
        return None
    counts = np.bincount(g[known], weights=non_match[known], minlength=len(comps[k].levels)) \
        + smoothing * model.u[k]
    u = normalise(counts)
    # an agreement level stays evidence for a match (u ≤ m), and sharing a home only
    # discounts it (u ≥ its u among random pairs): a level hardly seen among such pairs
    # must not turn into proof on a handful of counts
    u[:-1] = np.clip(u[:-1], model.u[k][:-1], np.maximum(model.m[k][:-1], model.u[k][:-1]))
    return u


def train(mt: MatchType, inp: LinkInputs, ctx: TrainingContext | None = None) -> Models:
    """Fit the match type's model(s). ``ctx`` carries the run's pool, used when a linkage
    takes m from the pool; without it, m comes from the match type's own pairs."""
    settings = mt.linkage.training_settings()
    cands, fraction = training_candidates(mt, inp, mt.linkage.blocking, settings.max_training_pairs)
    pairs = Pairs(inp.left, inp.right, cands.li, cands.ri)
    linkage_model = fit_linkage(mt, mt.linkage, inp, pairs, fraction, ctx)
    if mt.link == "same_person":
        return Models(linkage_model)
    # same address, different person: the person model learns on address-linked pairs
    linked = score(linkage_model, pairs).probability >= mt.linkage.threshold
    person_pairs = Pairs(inp.left, inp.right, cands.li[linked], cands.ri[linked])
    person = fit_linkage(mt, mt.person, inp, person_pairs, fraction, ctx)
    household = None
    if mt.left_person_missing is not None and mt.left_person_missing_from == "em":
        household = estimate_left_person_missing(mt, linkage_model, person, inp,
                                                 ctx.sampled.get(mt.right, 1.0) if ctx is not None else 1.0)
    return Models(linkage_model, person, household)


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
    household = HouseholdFit(**data["household"]) if "household" in data else None
    return Models(linkage, person, household)
