"""Graph/pattern attack on Bloom-filter columns (after Christen et al. 2017-18, Vidanage et al. 2019).

Without the key nobody can compute the filter of a guessed name, but a deterministic
per-field filter keeps its name's frequency, its Hamming weight tracks the name's length,
and two filters overlap in about ``kappa`` bits per q-gram their names share (plus chance):
the filters' overlap graph mirrors the names' q-gram graph. The attack:

1. **Hamming weight -> length**: quantile-map the filters' weights onto the public table's
   q-gram counts, so each filter gets an estimated number of q-grams (``kappa`` = bits per q-gram);
2. **seed**: anchors - filters whose names the attacker believes it knows. Either the most
   frequent filters matched to frequent public names (frequency, length and pairwise overlaps;
   :func:`seed_by_graph`), or a few records the insider happens to know (known plaintext);
3. **decode by fingerprint**: a filter's overlaps with the anchors are compared with what each
   public name's shared q-grams with the anchor names predict; the best-fitting name of a
   compatible length wins (a small frequency prior breaks near-ties);
4. **grow**: the more confident half of each round's decodes of the frequent filters become
   anchors, and the next round decodes more filters; finally every filter is decoded.

The attacker assumes only what the code in this repository tells an insider: padded bigrams
plus single letters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from privacy_attacks.insider_store import bits
from privacy_attacks.knowledge import Table

PAD = "_"
PRIOR = 0.02     # weight of the log frequency prior of a public name (breaks near-ties only)
LENGTH_SLACK = 2.0  # |q-grams of a name - q-grams estimated from the weight| allowed


def grams(value: str) -> set[str]:
    """Padded bigrams and inner single letters (a unigram is the letter + NUL, as in the encoder)."""
    p = PAD + value + PAD
    return {p[i: i + 2] for i in range(len(p) - 1)} | {c + "\0" for c in value}


class Vocabulary:
    """q-gram -> column index, grown as candidate values are added."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def ids(self, values: list[str]) -> np.ndarray:
        """(len(values), longest) q-gram indices of each value, padded with -1."""
        sets = [sorted(grams(v)) for v in values]
        for gs in sets:
            for g in gs:
                self.index.setdefault(g, len(self.index))
        width = max((len(gs) for gs in sets), default=0)
        out = np.full((len(values), width), -1, dtype=np.int64)
        for i, gs in enumerate(sets):
            out[i, : len(gs)] = [self.index[g] for g in gs]
        return out

    def indicator(self, ids: np.ndarray) -> np.ndarray:
        """(n, len(vocab)) float32 0/1 matrix from :meth:`ids` rows."""
        out = np.zeros((len(ids), len(self.index) + 1), dtype=np.float32)
        np.put_along_axis(out, np.where(ids < 0, len(self.index), ids), 1.0, axis=1)
        return out[:, :-1]


def weight_to_grams(weights: np.ndarray, counts: np.ndarray, table: Table) -> np.ndarray:
    """Estimated q-gram count of each filter from its Hamming weight (quantile mapping, record-weighted)."""
    m = table.names.map(lambda v: len(grams(v))).to_numpy(dtype=float)
    order = np.argsort(m, kind="stable")
    cdf = np.cumsum(table.freq.to_numpy()[order])
    w_order = np.argsort(weights, kind="stable")
    w_cdf = (np.cumsum(counts[w_order]) - counts[w_order] / 2) / counts.sum()
    est = np.empty(len(weights))
    est[w_order] = m[order][np.minimum(np.searchsorted(cdf, w_cdf), len(m) - 1)]
    return est


def seed_by_graph(filters: np.ndarray, est: np.ndarray, cand_ids: np.ndarray, vocab: Vocabulary,
                  width: int = 300, beam: int = 12, rank_weight: float = 0.5) -> np.ndarray:
    """Public-name index for each of ``filters`` (the most frequent, in frequency order).

    Beam search over assignments, each filter in turn, to one of the ``width`` most frequent
    public names of a compatible q-gram count. A hypothesis costs the squared misfit between
    the filters' pairwise overlaps and what the names' shared q-grams predict
    (kappa * shared + chance overlap of the rest: the "graph" of the graph-matching
    attacks), plus a small frequency-rank misfit.
    """
    n, nbits = filters.shape
    pool = cand_ids[:width]
    ind = vocab.indicator(pool)
    shared = ind @ ind.T                                   # (W, W) shared q-grams
    m = ind.sum(axis=1)
    w = filters.sum(axis=1).astype(float)
    kappa = w.sum() / max(est.sum(), 1.0)                  # bits per q-gram, from the weights
    overlap = filters.astype(np.float32) @ filters.T.astype(np.float32)
    log_rank = np.log1p(np.arange(width))
    states: list[tuple[float, list[int]]] = [(0.0, [])]
    for t in range(n):
        compatible = np.abs(m - est[t]) <= 2.0 if est[t] > 0 else np.ones(len(m), dtype=bool)
        nxt: list[tuple[float, list[int]]] = []
        for cost, names in states:
            ok = compatible.copy()
            ok[names] = False
            cands = np.flatnonzero(ok)
            if len(cands) == 0:
                continue
            c = np.full(len(cands), cost) + rank_weight * (log_rank[cands] - np.log1p(t)) ** 2
            if names:
                sh = shared[np.ix_(cands, names)]                           # (C, t)
                rest_t = np.maximum(w[t] - kappa * sh, 0)
                rest_j = np.maximum(w[None, :t] - kappa * sh, 0)
                pred = kappa * sh + rest_t * rest_j / nbits
                c += (((overlap[t, :t][None, :] - pred) / kappa) ** 2).sum(axis=1)
            for i in np.argsort(c)[:beam]:
                nxt.append((float(c[i]), names + [int(cands[i])]))
        if not nxt:
            break
        states = sorted(nxt, key=lambda s: s[0])[:beam]
    return np.array(states[0][1], dtype=np.int64)


def fingerprint_decode(filters: np.ndarray, est: np.ndarray, anchors: np.ndarray, anchor_ind: np.ndarray,
                       cand_ind: np.ndarray, log_prior: np.ndarray, kappa: float,
                       chunk: int = 16, scale_free: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Best public name (index into ``cand_ind``) and its margin over the second best, per filter.

    misfit(f, c) = mean_j ((|f & a_j| - pred(c, name_j)) / kappa)^2, with
    pred = kappa * s + (|f| - kappa * s)(|a_j| - kappa * s) / nbits and s = shared q-grams of c
    and anchor j's name: what a filter of c would share with anchor j. ``scale_free`` compares
    standardised overlaps and shared q-gram counts instead (1 - correlation): for encodings whose
    overlaps are an unknown linear function of the shared q-grams (balanced filters).
    """
    nbits = filters.shape[1]
    m = cand_ind.sum(axis=1)
    shared = cand_ind @ anchor_ind.T                                   # (N, K)
    overlap = filters.astype(np.float32) @ anchors.T.astype(np.float32)  # (T, K)
    w_f = filters.sum(axis=1).astype(np.float32)
    w_a = anchors.sum(axis=1).astype(np.float32)[None, None, :]
    best = np.zeros(len(filters), dtype=np.int64)
    margin = np.zeros(len(filters), dtype=np.float32)
    for e in np.unique(est):
        ok = np.flatnonzero(np.abs(m - e) <= LENGTH_SLACK) if e > 0 else np.arange(len(m))
        if len(ok) == 0:
            ok = np.arange(len(m))
        s = (kappa * shared[ok])[None, :, :]                          # (1, C, K)
        rows = np.flatnonzero(est == e)
        for lo in range(0, len(rows), chunk):
            r = rows[lo: lo + chunk]
            if scale_free:
                zs = s[0] - s[0].mean(axis=1, keepdims=True)
                zs /= np.maximum(zs.std(axis=1, keepdims=True), 1e-6)                   # (C, K)
                zo = overlap[r] - overlap[r].mean(axis=1, keepdims=True)
                zo /= np.maximum(zo.std(axis=1, keepdims=True), 1e-6)                   # (R, K)
                misfit = 1.0 - (zo @ zs.T) / zs.shape[1] - PRIOR * log_prior[ok][None, :]
            else:
                pred = s + np.maximum(w_f[r, None, None] - s, 0) * np.maximum(w_a - s, 0) / nbits
                misfit = (((overlap[r, None, :] - pred) / kappa) ** 2).mean(axis=2) - PRIOR * log_prior[ok][None, :]
            two = np.argsort(misfit, axis=1)[:, :2]
            best[r] = ok[two[:, 0]]
            sc = np.take_along_axis(misfit, two, axis=1)
            margin[r] = sc[:, 1] - sc[:, 0] if sc.shape[1] > 1 else np.inf
    return best, margin


@dataclass
class BloomResult:
    guess: pd.Series          # per record, the decoded value (None for missing filters)
    est_grams: pd.Series      # per record, the q-gram count estimated from the Hamming weight
    weight: pd.Series         # per record, the filter's Hamming weight
    seeds: tuple[str, ...]    # the anchor names the attack started from
    #: the final anchors (filters as bool rows, names): reusable on a column sharing the key
    anchors: tuple[np.ndarray, tuple[str, ...]] = (np.zeros((0, 0), bool), ())


def pattern_attack(column: pd.Series, table: Table, *, known: pd.Series | None = None, seeds: int = 20,
                   dictionary: int = 5000, rounds: tuple[int, ...] = (100, 300),
                   max_anchors: int = 100, borrowed: tuple[np.ndarray, tuple[str, ...]] | None = None) -> BloomResult:
    """Decode a Bloom-filter column against a public name table (see the module docstring).

    ``known``: names the insider knows for a few records (index = record labels of ``column``);
    ``borrowed``: anchors decoded on another column (``BloomResult.anchors``) - they only help
    if both columns were encoded under the same key; without either, the anchors are seeded
    from frequencies (:func:`seed_by_graph`).
    """
    m = bits(column)
    present = m.any(axis=1)
    packed = np.packbits(m, axis=1)
    _, first, inverse, counts = np.unique(packed, axis=0, return_index=True, return_inverse=True,
                                          return_counts=True)
    inverse = inverse.reshape(-1)
    distinct = m[first]
    keep = distinct.any(axis=1)  # the all-zero filter means missing
    order = np.flatnonzero(keep)[np.argsort(-counts[keep], kind="stable")]  # distinct filters, most frequent first
    weights = distinct.sum(axis=1)
    none = pd.Series(None, index=column.index, dtype=object)
    if len(order) == 0:
        return BloomResult(none, pd.Series(np.nan, index=column.index), pd.Series(0, index=column.index), ())
    est = np.zeros(len(distinct))
    est[order] = weight_to_grams(weights[order], counts[order], table)
    # Balanced filters (near-constant weight) carry no length: decode without it, scale-free.
    balanced = weights[order].std() < 0.05 * max(1.0, weights[order].mean())
    if balanced:
        est[order] = 0.0
    kappa = float((weights[order] * counts[order]).sum() / max(1.0, (est[order] * counts[order]).sum()))

    tab = table.top(dictionary)
    names = tab.names.tolist()
    prior = tab.freq.to_numpy(dtype=np.float64)
    outside = borrowed if borrowed is not None and len(borrowed[1]) else None
    if outside is not None:
        extra = sorted(set(outside[1]) - set(names))
        names += extra
        prior = np.concatenate([prior, np.full(len(extra), prior.min())])
    if known is not None:  # names the insider knows are candidates even if the public table lacks them
        extra = sorted(set(known.dropna()) - set(names))
        names += extra
        prior = np.concatenate([prior, np.full(len(extra), prior.min())])
    log_prior = np.log(prior + 1e-12).astype(np.float32)
    vocab = Vocabulary()
    ids = vocab.ids(names)
    cand_ind = vocab.indicator(ids)

    if known is not None:
        pos = {n: i for i, n in enumerate(names)}
        rows = column.index.get_indexer(known.index)
        pairs = {int(inverse[r]): pos[v] for r, v in zip(rows, known.tolist()) if r >= 0 and present[r] and v in pos}
        anchor_f = np.array(list(pairs), dtype=np.int64)
        anchor_n = np.array(list(pairs.values()), dtype=np.int64)
    else:
        anchor_f = order[:seeds]
        anchor_n = seed_by_graph(distinct[anchor_f], est[anchor_f], ids, vocab)
        anchor_f = anchor_f[: len(anchor_n)]
    seed_names = tuple(names[i] for i in anchor_n)
    # anchors as (filter rows, name indices); borrowed ones come with their own filters
    pos = {n: i for i, n in enumerate(names)}
    fixed_bits, fixed_n = distinct[anchor_f], anchor_n
    if outside is not None:
        fixed_bits = np.vstack([fixed_bits, outside[0]]) if len(anchor_f) else outside[0]
        fixed_n = np.concatenate([fixed_n, [pos[v] for v in outside[1]]]).astype(np.int64)
        seed_names += tuple(outside[1][:5])
    anchor_bits = fixed_bits
    anchor_n = fixed_n
    if len(anchor_n) < 2:  # nothing to compare overlaps with: no guess
        return BloomResult(none, pd.Series(np.where(present, est[inverse], np.nan), index=column.index),
                           pd.Series(np.where(present, weights[inverse], 0), index=column.index), seed_names)

    for size in rounds:
        targets = order[:size]
        best, margin = fingerprint_decode(distinct[targets], est[targets], anchor_bits, cand_ind[anchor_n],
                                          cand_ind, log_prior, kappa, scale_free=balanced)
        confident = targets[margin >= np.quantile(margin, 0.5)]
        confident_n = best[margin >= np.quantile(margin, 0.5)]
        anchor_bits = np.vstack([fixed_bits, distinct[confident]])[:max_anchors]
        anchor_n = np.concatenate([fixed_n, confident_n])[:max_anchors]

    best, _ = fingerprint_decode(distinct[order], est[order], anchor_bits, cand_ind[anchor_n],
                                 cand_ind, log_prior, kappa, scale_free=balanced)
    value = np.full(len(distinct), None, dtype=object)
    value[order] = np.array(names, dtype=object)[best]
    return BloomResult(
        guess=pd.Series(value[inverse], index=column.index, dtype=object).where(present, None),
        est_grams=pd.Series(np.where(present, est[inverse], np.nan), index=column.index),
        weight=pd.Series(np.where(present, weights[inverse], 0), index=column.index),
        seeds=seed_names,
        anchors=(anchor_bits, tuple(names[i] for i in anchor_n)),
    )
