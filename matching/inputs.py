"""The inputs of one match type: its two sides, the scope of its pairs, and the pool.

A :class:`LinkInputs` is made once per match type and run; training, scoring and the
household model all read the same converted :class:`~matching.comparisons.Side` s.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from councilmatch.contracts import ENCODED_BYTES
from matching.blocking import Candidates, candidate_pairs, expected_pairs
from matching.comparisons import RELEASED, Side
from matching.matchtype import MatchType


class LinkInputs:
    """The two sides of a match type, as :class:`Side` s (one shared Side when deduplicating)."""

    def __init__(self, mt: MatchType, data: dict[str, pd.DataFrame], pool: "LinkInputs | None" = None):
        """``pool``: the :func:`pool_inputs` of these same ``data``; the sides' arrays are then
        views of the pool's (training holds each record's arrays once, not once per match type)."""
        for ds in (mt.left, mt.right):
            if ds not in data or data[ds].empty:
                raise LookupError(f"match type {mt.id}: no pseudonymised records for data set {ds!r}")
        self.left_frame = _zero_based(data[mt.left])
        self.right_frame = self.left_frame if mt.dedupe else _zero_based(data[mt.right])
        self.left = Side(self.left_frame, _within(pool, data, mt.left))
        self.right = self.left if mt.dedupe else Side(self.right_frame, _within(pool, data, mt.right))
        #: where each data set's records start in this (pool) side's rows (set by pool_inputs)
        self.starts: dict[str, tuple[pd.DataFrame, int]] = {}
        self.dedupe = mt.dedupe
        councils = pd.concat([self.left_frame["council"], self.right_frame["council"]]).astype(str)
        cats = pd.CategoricalDtype(sorted(councils.unique()))
        self.left_council = self.left_frame["council"].astype(str).astype(cats).cat.codes.to_numpy()
        self.right_council = self.right_frame["council"].astype(str).astype(cats).cat.codes.to_numpy()
        if mt.dedupe:
            # rank by (council, record_id): the left of a pair is the smaller reference (Arrow's
            # stable sort on the two columns: 0.5 s for a million records against 0.9 s for numpy
            # sorting one joined fixed-width string per row)
            keys = pa.table({c: pa.array(self.left_frame[c].astype(str), pa.string()) for c in ("council", "record_id")})
            order = pc.sort_indices(keys, [("council", "ascending"), ("record_id", "ascending")]).to_numpy()
            self.rank = np.empty(len(order), dtype=np.int64)
            self.rank[order] = np.arange(len(order))

    def frames(self) -> list[pd.DataFrame]:
        return [self.left_frame] if self.dedupe else [self.left_frame, self.right_frame]

    @property
    def records(self) -> int:
        return self.left.n if self.dedupe else max(self.left.n, self.right.n)

    @property
    def all_pairs(self) -> int:
        return self.left.n * (self.left.n - 1) // 2 if self.dedupe else self.left.n * self.right.n


def in_scope(mt: MatchType, inp: LinkInputs, cands: Candidates) -> Candidates:
    li, ri, rule = cands.li, cands.ri, cands.rule
    if inp.dedupe:
        swap = inp.rank[li] > inp.rank[ri]
        li, ri = np.where(swap, ri, li), np.where(swap, li, ri)
    keep = scope_mask(mt, inp, li, ri)
    return Candidates(li[keep], ri[keep], rule[keep])


def scope_mask(mt: MatchType, inp: LinkInputs, li: np.ndarray, ri: np.ndarray) -> np.ndarray:
    """Which pairs (left index, right index) lie in the match type's scope (same council or not)."""
    same = inp.left_council[li] == inp.right_council[ri]
    return {"different_councils": ~same, "same_council": same, "any": np.ones(len(li), bool)}[mt.scope]


def training_candidates(mt: MatchType, inp: LinkInputs, rules: list[list[str]], cap: int
                         ) -> tuple[Candidates, float]:
    """All candidate pairs of ``rules``, or a deterministic sample of whole blocks when there
    are more than ``cap`` (then also the share of blocks sampled)."""
    total = expected_pairs(inp.left, inp.right, rules, inp.dedupe)
    parts = max(1, math.ceil(total / cap))
    return in_scope(mt, inp, candidate_pairs(inp.left, inp.right, rules, inp.dedupe, 0, parts)), 1.0 / parts


POOL = "pool"


def pool_inputs(data: dict[str, pd.DataFrame], whole: pd.DataFrame | None = None) -> LinkInputs:
    """Every data set's records together, deduplicated against each other: the pool m learns from.

    ``whole``: those records already in one frame, in ``data``'s order (a scanned sample,
    ``matching.run._scan_pool``): used as it is, not concatenated again."""
    frames = [f for f in data.values() if len(f)]
    mt = MatchType.model_construct(id=POOL, left=POOL, right=POOL, scope="any")
    if whole is not None and len(whole) != sum(len(f) for f in frames):
        raise ValueError(f"the pool frame holds {len(whole)} records, its data sets {sum(len(f) for f in frames)}")
    inp = LinkInputs(mt, {POOL: whole if whole is not None else pd.concat(frames, ignore_index=True)})
    start = 0
    for ds, frame in data.items():
        if len(frame):
            inp.starts[ds] = (frame, start)
            start += len(frame)
    return inp


def share_with_pool(pool: LinkInputs, data: dict[str, pd.DataFrame],
                    matrices: dict[str, dict[str, list[np.ndarray]]] | None = None) -> None:
    """Hold a training sample once: each data set's frame becomes a view of the pool's rows, and
    every encoding column is converted to the pool's matrix once and dropped from the frames (a
    million records' encodings take 0.7 GB more as Python bytes than as matrices). The sample's
    match types then see everything through the pool (``LinkInputs(mt, data, pool)``).

    ``matrices``: column -> data set -> that data set's rows as matrices in parts (a scan that
    converted them batch by batch, see ``matching.run._scan_pool``); consumed column by column."""
    for column in ENCODED_BYTES:  # one at a time, so that only one column is ever held twice
        parts = (matrices or {}).pop(column, None)
        if parts is not None:
            pool.left.hold(column, np.concatenate([m for ds in pool.starts for m in parts.get(ds, [])]
                                                  or [np.zeros((0, ENCODED_BYTES[column]), np.uint8)]))
            del parts
        else:
            pool.left.bloom(column)
        for frame in (pool.left_frame, *data.values()):
            if column in frame.columns:
                frame.drop(columns=[column], inplace=True)
    pool.left_frame.attrs[RELEASED] = True
    for ds, (_, start) in list(pool.starts.items()):
        n = len(data[ds])
        view = pool.left_frame.iloc[start:start + n].set_axis(pd.RangeIndex(n), axis=0, copy=False)
        view.attrs[RELEASED] = True
        data[ds] = view
        pool.starts[ds] = (view, start)


def _zero_based(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with row labels 0..n-1 (itself, not a copy, when it has them already)."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame
    return frame.reset_index(drop=True)


def _within(pool: LinkInputs | None, data: dict[str, pd.DataFrame], ds: str) -> tuple[Side, int] | None:
    """(pool side, first row) of data set ``ds`` inside ``pool``, if the pool holds this very frame."""
    if pool is None or ds not in pool.starts or pool.starts[ds][0] is not data[ds]:
        return None
    return pool.left, pool.starts[ds][1]
