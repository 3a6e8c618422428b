"""Fellegi–Sunter model: multi-level m/u estimated by EM, term-frequency adjustment, scoring.

Why not recordlinkage's ECMClassifier: it only takes binary features, and our
comparisons have several levels plus a null level that must carry no weight.
The EM here is written on *agreement patterns* (distinct comparison vectors
with their counts), so a million candidate pairs are a few hundred rows of work.

Per comparison k and level l: m = P(level | same), u = P(level | different),
weight = log2(m/u). A pair's match weight is log2(λ/(1-λ)) plus the weights of
its levels (null level: 0) plus term-frequency adjustments; its probability is
2^W / (1 + 2^W).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matching.comparisons import NULL, Comparison, Pairs, Same
from matching.em import level_weights, unique_patterns


@dataclass
class FittedModel:
    comparisons: list[Comparison]
    m: list[np.ndarray]
    u: list[np.ndarray]
    lam: float
    iterations: int = 0
    training_pairs: int = 0
    random_pairs: int = 0
    #: comparison name -> (token column, frequency per token value) for its TF-adjusted level
    tf: dict[str, tuple[str, pd.Series]] = field(default_factory=dict)
    #: comparison name -> the most weight it may give (see training.caps_for)
    caps: dict[str, float] = field(default_factory=dict)
    #: what the fit check found (training.FitCheck), once trained
    fit_check: object = None
    fit_stats: dict = field(default_factory=dict)
    #: agreement pattern -> share among the training candidates (the baseline drift is measured
    #: against, see matching.incremental)
    patterns: dict[str, float] = field(default_factory=dict)
    #: comparison name -> ``given`` group -> u per level among different people who agree on
    #: the group's columns (used for the pairs that agree on them; see training.conditional_u)
    u_given: dict[str, dict[tuple[str, ...], np.ndarray]] = field(default_factory=dict)
    #: given column -> levels of the comparison measuring it that count as agreeing on it too
    #: (training.alike_levels: an address a typo apart, where the model weighs it as the same one)
    given_alike: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: agreement levels weigh at least 0 (u from random pairs; see matching.em.project_monotone).
    #: Not for a model whose u is measured among the candidates themselves (the household
    #: model: among people at one address, "born in the same year" is rarer for one person's
    #: two records than for two residents, and rightly counts against)
    agreement_floor: bool = True

    def weights_of(self, m: np.ndarray, u: np.ndarray) -> np.ndarray:
        """log2(m/u) per level, agreement levels floored at 0 if the model says so."""
        return level_weights(m, u) if self.agreement_floor else np.log2(m / u)

    def weights(self) -> list[np.ndarray]:
        return [self.weights_of(m, u) for m, u in zip(self.m, self.u)]

    def alike(self) -> dict[str, tuple[Comparison, tuple[int, ...]]]:
        """:attr:`given_alike` with the comparison each column's levels belong to
        (``Comparison.given_holds``)."""
        return {column: (measuring(self.comparisons, column), levels)
                for column, levels in self.given_alike.items()}

    def given_weights(self, k: int) -> dict[tuple[str, ...], np.ndarray]:
        """Comparison ``k``'s level weights for pairs agreeing on each of its ``given`` groups."""
        return {group: self.weights_of(self.m[k], u)
                for group, u in self.u_given.get(self.comparisons[k].name, {}).items()}

    def to_json(self) -> dict:
        comps = []
        for comp, m, u, w in zip(self.comparisons, self.m, self.u, self.weights()):
            comps.append({
                "name": comp.name,
                "description": comp.description,
                "levels": [
                    {"label": lv.label, "description": lv.description, "m": float(mi), "u": float(ui),
                     "weight": float(wi), "tf_adjusted": lv.tf_column is not None}
                    for lv, mi, ui, wi in zip(comp.levels, m, u, w)
                ],
            })
            if comp.name in self.u_given:
                comps[-1]["given"] = [
                    {"columns": list(group), "u": [float(x) for x in ug],
                     "weight": [float(x) for x in self.weights_of(m, ug)]}
                    for group, ug in self.u_given[comp.name].items()]
        for entry in comps:
            if entry["name"] in self.caps:
                entry["cap"] = self.caps[entry["name"]]
        out = {"lambda": self.lam, "prior_weight": float(np.log2(self.lam / (1 - self.lam))),
               "iterations": self.iterations, "training_pairs": self.training_pairs,
               "random_pairs": self.random_pairs, "agreement_floor": self.agreement_floor, "comparisons": comps}
        if self.given_alike:
            out["given_alike"] = {column: [measuring(self.comparisons, column).levels[i].label for i in levels]
                                  for column, levels in self.given_alike.items()}
        if self.fit_check is not None:
            out["fit_check"] = self.fit_check.to_json()
        if self.patterns:
            out["patterns"] = dict(self.patterns)
        return out

    @classmethod
    def from_json(cls, data: dict, comparisons: list[Comparison]) -> "FittedModel":
        by_name = {c["name"]: c for c in data["comparisons"]}
        m, u = [], []
        for comp in comparisons:
            levels = by_name[comp.name]["levels"]
            if [lv["label"] for lv in levels] != [lv.label for lv in comp.levels]:
                raise ValueError(f"saved model for {comp.name!r} has other levels than the library's")
            m.append(np.array([lv["m"] for lv in levels]))
            u.append(np.array([lv["u"] for lv in levels]))
        caps = {c["name"]: float(c["cap"]) for c in data["comparisons"] if "cap" in c}
        u_given = {c["name"]: {tuple(g["columns"]): np.array(g["u"]) for g in c["given"]}
                   for c in data["comparisons"] if c.get("given") and c["name"] in {x.name for x in comparisons if x.given}}
        given_alike = {}
        for column, labels in data.get("given_alike", {}).items():  # (a model saved before: none)
            levels = [lv.label for lv in measuring(comparisons, column).levels]
            given_alike[column] = tuple(levels.index(label) for label in labels)
        return cls(comparisons, m, u, float(data["lambda"]), data.get("iterations", 0),
                   data.get("training_pairs", 0), data.get("random_pairs", 0), caps=caps,
                   patterns={str(k): float(v) for k, v in data.get("patterns", {}).items()},
                   u_given=u_given, given_alike=given_alike,
                   # a model saved before the field held m ≥ u wherever its u came from random pairs
                   agreement_floor=bool(data.get("agreement_floor", False)))


def measured_column(comp: Comparison) -> str | None:
    """The token column whose agreement is the comparison's first level (``t_address`` for the
    address), or None."""
    test = comp.levels[0].test
    return test.column if isinstance(test, Same) and not test.other else None


def measuring(comparisons: list[Comparison], column: str) -> Comparison:
    """The comparison whose first level is agreement on ``column`` (the address for ``t_address``)."""
    for comp in comparisons:
        if measured_column(comp) == column:
            return comp
    raise KeyError(f"no comparison measures {column!r}")


def comparison_vectors(comparisons: list[Comparison], pairs: Pairs,
                       kept: Callable[[Hashable, Callable[[], np.ndarray]], np.ndarray] | None = None) -> np.ndarray:
    """n_pairs × n_comparisons matrix of level indices (int8, NULL = missing).

    Each comparison's levels are kept with the pairs: training evaluates the same pairs for
    several linkages that share most comparisons (``matching.training.TrainingContext``).
    ``kept(key, make)``: keep them elsewhere instead (pairs drawn again alike, see
    ``matching.training._housemates_levels``)."""
    kept = kept or pairs.memo
    out = np.empty((len(pairs), len(comparisons)), dtype=np.int8)
    for k, comp in enumerate(comparisons):
        out[:, k] = kept(("levels", comp), lambda: comp.levels_of(pairs))
    return out


# ---------------------------------------------------------------------------
# Term frequencies (computed on the pseudonymised tokens)
# ---------------------------------------------------------------------------


def token_frequencies(frames: list[pd.DataFrame], column: str) -> pd.Series:
    """Share of records carrying each token value (missing excluded), over the given frames."""
    values = pd.concat([f[column] for f in frames if column in f.columns], ignore_index=True) \
        if any(column in f.columns for f in frames) else pd.Series([], dtype="int64")
    values = values[values.fillna(0) != 0]
    if values.empty:
        return pd.Series([], dtype=float)
    return values.value_counts(normalize=True)


def tf_tables(comparisons: list[Comparison], frames: list[pd.DataFrame]) -> dict[str, tuple[str, pd.Series]]:
    out = {}
    for comp in comparisons:
        for level in comp.levels:
            if level.tf_column:
                out[comp.name] = (level.tf_column, token_frequencies(frames, level.tf_column))
                break
    return out


def tf_adjustment(freq: pd.Series, tokens: np.ndarray) -> np.ndarray:
    """log2(u_exact / p_value): agreeing on a common token is worth less than on a rare one.

    u_exact = Σ p² is the chance two random records agree on this field at all;
    p_value is the chance they agree on this particular value.
    """
    if freq.empty:
        return np.zeros(len(tokens))
    u_exact = float((freq.to_numpy() ** 2).sum())
    p = freq.reindex(tokens).to_numpy(dtype=float)
    p = np.where(np.isnan(p), freq.min(), p)
    return np.log2(u_exact / p)


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------


@dataclass
class Scores:
    gammas: np.ndarray  # n × K level indices
    level_weights: np.ndarray  # n × K weight of each comparison incl. TF adjustment (null: 0)
    match_weight: np.ndarray  # n
    probability: np.ndarray  # n


def score(model: FittedModel, pairs: Pairs, gammas: np.ndarray | None = None) -> Scores:
    if gammas is None:
        gammas = comparison_vectors(model.comparisons, pairs)
    weights = np.zeros(gammas.shape, dtype=float)
    alike = model.alike()
    for k, (comp, w) in enumerate(zip(model.comparisons, model.weights())):
        g = gammas[:, k]
        known = g != NULL
        weights[known, k] = w[g[known]]
        # agreeing on a field it depends on: the evidence among such pairs, the least of any group that holds
        dependent = np.zeros(len(g), dtype=bool)
        given_weights = model.given_weights(k)
        given = np.full(len(g) if given_weights else 0, np.inf)
        for group, given_w in given_weights.items():
            holds = np.flatnonzero(comp.given_holds(pairs, group, alike) & known)
            dependent[holds] = True
            given[holds] = np.minimum(given[holds], given_w[g[holds]])
        if comp.name in model.tf:
            column, freq = model.tf[comp.name]
            level = next(i for i, lv in enumerate(comp.levels) if lv.tf_column)
            hit = np.flatnonzero((g == level) & ~dependent)
            if len(hit):
                weights[hit, k] += tf_adjustment(freq, pairs.left.token(column)[pairs.li[hit]])
        if dependent.any():
            weights[dependent, k] = given[dependent]
        if comp.name in model.caps:
            np.minimum(weights[:, k], model.caps[comp.name], out=weights[:, k])
    total = np.log2(model.lam / (1 - model.lam)) + weights.sum(axis=1)
    prob = 1.0 / (1.0 + np.exp2(-np.clip(total, -1000, 1000)))
    return Scores(gammas, weights, total, prob)


# ---------------------------------------------------------------------------
# Agreement patterns (the drift measure's distribution)
# ---------------------------------------------------------------------------

#: patterns kept per model; rarer ones are lumped together as "other"
MAX_PATTERNS = 200


def agreement_patterns(gammas: np.ndarray, keep: int = MAX_PATTERNS) -> dict[str, float]:
    """Share of pairs per agreement pattern (comparison levels joined by ','), the ``keep``
    commonest and the rest as "other"."""
    if len(gammas) == 0:
        return {}
    rows, counts = unique_patterns(gammas)
    order = np.argsort(-counts, kind="stable")
    total = float(counts.sum())
    out = {",".join(map(str, rows[i].tolist())): float(counts[i] / total) for i in order[:keep]}
    rest = float(counts[order[keep:]].sum() / total)
    if rest > 0:
        out["other"] = rest
    return out


def total_variation(baseline: dict[str, float], tonight: dict[str, float]) -> float:
    """Total-variation distance between two pattern distributions (0 = same, 1 = disjoint);
    patterns the baseline does not name count as its "other"."""
    mapped: dict[str, float] = {}
    for key, share in tonight.items():
        k = key if key in baseline else "other"
        mapped[k] = mapped.get(k, 0.0) + share
    keys = set(baseline) | set(mapped)
    return 0.5 * float(sum(abs(baseline.get(k, 0.0) - mapped.get(k, 0.0)) for k in keys))
