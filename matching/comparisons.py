"""The comparison library: how two pseudonymised records are compared, field by field.

Modelled on Splink's comparison library. A :class:`Comparison` is an ordered
list of :class:`Level` s; a pair takes the first level whose test holds, or the
*null* level (weight 0) when the field is missing on either side. Every level
carries a sentence, because investigators read it next to each flag.

Tests only ever look at tokens (int64 keyed hashes, 0 = missing) and keyed
Bloom filters (bytes, all-zero = missing): never at a clear value.

Match types name comparisons from :data:`LIBRARY` in YAML, e.g.
``{use: name, field: surname}`` or ``{use: exact, column: t_nino, name: nino}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import numpy as np
import pandas as pd
import pyarrow as pa

from anonymise.encodings import shares_entry
from councilmatch.contracts import ENCODED_BYTES
from matching.kept import Kept

NULL = -1  # level index of "missing on either side"
#: a comparison's later levels are tested on the pairs still undecided, taken apart from the rest
#: once they are fewer than this share of those tested so far (see :meth:`Comparison.levels_of`)
NARROW_BELOW = 0.75
#: ``frame.attrs`` flag: the frame's encoding columns were dropped, their matrices live in the
#: training pool's side (``matching.inputs.share_with_pool``)
RELEASED = "councilmatch_encodings_released"


# ---------------------------------------------------------------------------
# The two sides of a batch of pairs
# ---------------------------------------------------------------------------


class Side:
    """One data set's columns as numpy arrays, converted once and reused for every pair batch.

    ``within=(side, start)``: this frame is rows ``start:start + n`` of that side's frame (a data
    set inside the training pool), so its arrays are views of that side's, not copies."""

    def __init__(self, frame: pd.DataFrame | None, within: tuple["Side", int] | None = None, n: int | None = None):
        self._frame = frame  # None: a subset's, taken from its parent's when first needed
        self.n = len(frame) if frame is not None else int(n or 0)
        self._tokens: dict[str, np.ndarray] = {}
        self._blooms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._codes: dict[str, np.ndarray] = {}
        self._within = within
        self._of: tuple[Side, np.ndarray] | None = None  # (side, rows): see subset()
        self._memo = Kept()

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per key for this side (read-only after): what several models draw
        from the same records alike, e.g. the training pool's pairs of housemates, which every
        linkage estimated on the pool draws with the same seed. Keep arrays here, never what
        holds the side (a cycle would keep the records after their last use)."""
        return self._memo.get(key, compute)

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:  # a subset's rows of every column: only if some caller asks for them
            parent, rows = self._of
            self._frame = parent.frame.iloc[rows].reset_index(drop=True)
        return self._frame

    def subset(self, rows: np.ndarray) -> "Side":
        """Rows ``rows`` of this side as a side of their own. Arrays this side has made already
        are sliced; the others are made for these rows alone, so a few thousand records of a
        million cost a few thousand rows' work (an encoding this side's frame no longer holds
        still comes through this side). No frame is copied: a column is taken when needed (a
        household shard's scoring took a quarter of its time copying frames it never read)."""
        sub = Side(None, n=len(rows))
        sub._of = (self, rows)
        return sub

    def _through_parent(self, cache: str, column: str) -> bool:
        """Whether a subset takes ``column`` from its parent side (see :meth:`subset`)."""
        if self._of is None:
            return False
        parent = self._of[0]
        return (column in getattr(parent, cache) or parent._within is not None or parent._of is not None
                or bool(parent.frame.attrs.get(RELEASED)))

    def token(self, column: str) -> np.ndarray:
        if column not in self._tokens and self._of is not None:
            parent, rows = self._of
            self._tokens[column] = parent.token(column)[rows]
        if column not in self._tokens:
            if self._within is not None:
                side, start = self._within
                values = side.token(column)[start:start + self.n]
            elif column in self.frame.columns and self.frame[column].dtype == np.int64:
                # nothing missing to fill: the frame's own array (read-only), not a copy of it,
                # so a million records' tokens are held once (20-odd columns, 8 MB each)
                values = self.frame[column].to_numpy(copy=False).view()
                values.flags.writeable = False
            elif column in self.frame.columns:
                values = self.frame[column].fillna(0).to_numpy(dtype=np.int64)
            else:
                values = np.zeros(self.n, dtype=np.int64)
            self._tokens[column] = values
        return self._tokens[column]

    def bloom(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(n × nbytes uint8 matrix, popcount per row) of a bytes column (Bloom filter or
        edit neighbourhood)."""
        if column not in self._blooms and self._within is not None:
            side, start = self._within
            matrix, popcount = side.bloom(column)
            self._blooms[column] = (matrix[start:start + self.n], popcount[start:start + self.n])
        if column not in self._blooms and self._through_parent("_blooms", column):
            parent, rows = self._of
            matrix, popcount = parent.bloom(column)
            self._blooms[column] = (matrix[rows], popcount[rows])
        if column not in self._blooms:
            frame = self._of[0].frame if self._of is not None else self.frame  # a subset: its parent's rows
            if frame.attrs.get(RELEASED):
                raise RuntimeError(f"{column}: this frame's encodings were released to the training pool's matrices")
            values = None
            if column in frame.columns:
                values = frame[column] if self._of is None else frame[column].iloc[self._of[1]]
            matrix = bloom_matrix(values, self.n, ENCODED_BYTES.get(column, 64))
            self._blooms[column] = (matrix, _row_popcount(matrix))
        return self._blooms[column]

    def value_codes(self, column: str) -> np.ndarray:
        """A code per row of an encoding column: rows with equal codes hold equal bytes.

        A pair test on encodings depends on the two values only, and training pairs repeat
        values (of 11.7 million blocked and random pairs at a million records, 2.0 million are
        distinct pairs of forename neighbourhoods), so :meth:`Pairs.per_distinct` tests each
        distinct pair of codes once."""
        if column not in self._codes:
            if self._within is not None:
                side, start = self._within
                self._codes[column] = side.value_codes(column)[start:start + self.n]
            elif self._of is not None and column in self._of[0]._codes:
                self._codes[column] = self._of[0]._codes[column][self._of[1]]
            else:
                self._codes[column] = _row_codes(self.bloom(column)[0])
        return self._codes[column]

    def hold(self, column: str, matrix: np.ndarray) -> None:
        """Take ``column``'s matrix as already converted (e.g. batch by batch from Arrow)."""
        if matrix.shape != (self.n, ENCODED_BYTES.get(column, 64)):
            raise ValueError(f"{column}: a {matrix.shape} matrix for {self.n} records")
        self._blooms[column] = (matrix, _row_popcount(matrix))


def _row_popcount(matrix: np.ndarray) -> np.ndarray:
    """Set bits per row (int32), eight bytes at a time where the rows allow (a third faster)."""
    if matrix.shape[1] % 8 == 0 and matrix.flags.c_contiguous:
        matrix = matrix.view(np.uint64)
    return np.bitwise_count(matrix).sum(axis=1, dtype=np.int32)


def _cut(side: "Side", share: float, *positions: np.ndarray) -> tuple["Side", tuple[np.ndarray, ...]]:
    """``side`` cut down to the rows ``positions`` touch, with the positions renumbered into
    it, where those rows are at most ``share`` of it; else both as they are."""
    seen = np.zeros(side.n, dtype=bool)
    for p in positions:
        seen[p] = True
    rows = np.flatnonzero(seen)
    if len(rows) > share * side.n:
        return side, positions
    return side.subset(rows), tuple(np.searchsorted(rows, p) for p in positions)


def _first_of_each(codes: np.ndarray) -> np.ndarray:
    """Position of each code's first row, for codes numbered in order of first appearance (as
    ``pd.factorize`` numbers them): a row starts a new code where it passes every code before it."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, codes[1:] > np.maximum.accumulate(codes)[:-1]])


def _row_digest(words: np.ndarray) -> np.ndarray:
    digest = np.zeros(len(words), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            digest = (digest ^ words[:, j]) * np.uint64(0x9E3779B97F4A7C15)
            digest ^= digest >> np.uint64(29)
    return digest


def _row_codes(matrix: np.ndarray) -> np.ndarray:
    """Equal rows -> equal int64 codes, by a 64-bit hash of each row, checked: rows whose hash
    collides with a different row's (never seen; about one in 10^7 at a million distinct rows)
    each keep a code of their own."""
    n, width = matrix.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if width % 8:
        matrix = np.pad(matrix, ((0, 0), (0, 8 - width % 8)))
    words = np.ascontiguousarray(matrix).view(np.uint64)
    codes, _ = pd.factorize(_row_digest(words))
    codes = codes.astype(np.int64)
    first = _first_of_each(codes)
    clash = (words != words[first[codes]]).any(axis=1)
    if clash.any():
        codes[clash] = len(first) + np.arange(int(clash.sum()))
    return codes


def bloom_matrix_from_arrow(values: pa.Array | pa.ChunkedArray, nbytes: int) -> np.ndarray:
    """:func:`bloom_matrix` of an Arrow ``fixed_size_binary`` column, straight from its buffer:
    no Python bytes object per row (a million records' six encodings are 0.7 GB more as those)."""
    n = len(values)
    if not (pa.types.is_fixed_size_binary(values.type) and values.type.byte_width == nbytes) or n == 0:
        return bloom_matrix(values.to_pandas(), n, nbytes)  # not the stored type: the checked path
    # each chunk's buffer viewed as rows, copied once into the matrix (a pool read from many
    # extracts is many chunks: combining them first would copy the column twice)
    chunks = [c for c in (values.chunks if isinstance(values, pa.ChunkedArray) else [values]) if len(c)]
    out = np.concatenate([np.frombuffer(c.buffers()[1], np.uint8, count=len(c) * nbytes, offset=c.offset * nbytes)
                          .reshape(len(c), nbytes) for c in chunks])
    if values.null_count:
        out[values.is_null().to_numpy(zero_copy_only=False)] = 0
    return out


def bloom_matrix(values: pd.Series | None, n: int, nbytes: int) -> np.ndarray:
    """Bytes column -> uint8 matrix; missing or malformed values become all-zero rows (= missing)."""
    out = np.zeros((n, nbytes), dtype=np.uint8)
    if values is None or n == 0:
        return out
    if isinstance(values.dtype, pd.ArrowDtype):  # the pool as linking reads it (from_table)
        return bloom_matrix_from_arrow(values.array._pa_array, nbytes)  # noqa: SLF001
    raw = values.to_numpy(dtype=object)
    present = values.notna().to_numpy()
    if present.all():  # the usual case: one join, no per-row work
        buf = b"".join(raw.tolist())
        if len(buf) == n * nbytes:
            return np.frombuffer(buf, dtype=np.uint8).reshape(n, nbytes).copy()
    ok = np.fromiter((isinstance(v, (bytes, bytearray)) and len(v) == nbytes for v in raw), bool, n)
    if ok.any():
        out[ok] = np.frombuffer(b"".join(raw[ok]), dtype=np.uint8).reshape(-1, nbytes)
    return out


@dataclass
class Pairs:
    """A batch of candidate pairs: row positions into the left and right :class:`Side`."""

    left: Side
    right: Side
    li: np.ndarray
    ri: np.ndarray
    _cache: Kept = field(default_factory=Kept)

    def __len__(self) -> int:
        return len(self.li)

    def compact(self, share: float = 0.25) -> "Pairs":
        """The same pairs in the same order, over sides cut down to the rows they touch where
        those are under ``share`` of a side (:meth:`Side.subset`). An incremental night's pairs
        touch a few thousand records of a million: scoring them this way makes the Bloom
        matrices and value codes of those rows, not of the pool. Every test looks only at the
        two records of a pair, so levels and scores are the same either way."""
        if self.left is self.right:
            side, (li, ri) = _cut(self.left, share, self.li, self.ri)
            return self if side is self.left else Pairs(side, side, li, ri)
        left, (li,) = _cut(self.left, share, self.li)
        right, (ri,) = _cut(self.right, share, self.ri)
        return self if left is self.left and right is self.right else Pairs(left, right, li, ri)

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per key for these pairs (treat the result as read-only; pairs
        shared by match types training on several threads are evaluated once too)."""
        return self._cache.get(key, compute)

    def tokens(self, left_col: str, right_col: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        right_col = right_col or left_col
        return self.left.token(left_col)[self.li], self.right.token(right_col)[self.ri]

    def dice(self, column: str) -> np.ndarray:
        """Dice coefficient of the two Bloom filters (NaN where either is empty)."""
        return self.memo(("dice", column), lambda: self._dice(column))

    def share_entry(self, column: str) -> np.ndarray:
        """Do the two keyed neighbourhoods (edit or nickname) share an entry (False where either
        is empty)?"""
        return self.memo(("share", column), lambda: self._share_entry(column))

    def share_across(self, a: str, b: str) -> np.ndarray:
        """Does one record's ``a`` neighbourhood share an entry with the other's ``b``, either way
        round (False where either is empty)?"""
        return self.memo(("across", a, b), lambda: self._share_across(a, b))

    def per_distinct(self, column: str, test: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """``test(left rows, right rows)`` on one pair of each distinct pair of ``column``'s
        values, spread back to every pair: the same answer, once per distinct pair."""
        lc = self.left.value_codes(column)[self.li]
        rc = self.right.value_codes(column)[self.ri]
        key = lc * np.int64(self.right.value_codes(column).max(initial=0) + 1) + rc
        codes, _ = pd.factorize(key)
        first = _first_of_each(codes)
        return test(self.li[first], self.ri[first])[codes]

    def _dice(self, column: str) -> np.ndarray:
        # (not per distinct pair of values: about half the pairs of a training set are distinct
        # filters, where finding them costs more than the popcounts they save)
        lm, lp = self.left.bloom(column)
        rm, rp = self.right.bloom(column)
        out = np.empty(len(self), dtype=np.float32)
        step = 200_000  # bounds the temporary (step × nbytes) matrices
        for s in range(0, len(self), step):
            li, ri = self.li[s:s + step], self.ri[s:s + step]
            common = np.bitwise_count(lm[li] & rm[ri]).sum(axis=1, dtype=np.int32)
            total = lp[li] + rp[ri]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s:s + step] = np.where(total > 0, 2.0 * common / total, np.nan)
            out[s:s + step][(lp[li] == 0) | (rp[ri] == 0)] = np.nan
        return out

    def _share_entry(self, column: str) -> np.ndarray:
        lm, rm = self.left.bloom(column)[0], self.right.bloom(column)[0]
        return self.per_distinct(column, lambda li, ri: _rows_share(lm, rm, li, ri))

    def _share_across(self, a: str, b: str) -> np.ndarray:
        la, lb = self.left.bloom(a)[0], self.left.bloom(b)[0]
        ra, rb = self.right.bloom(a)[0], self.right.bloom(b)[0]
        return _rows_share(la, rb, self.li, self.ri) | _rows_share(lb, ra, self.li, self.ri)


def _rows_share(left: np.ndarray, right: np.ndarray, li: np.ndarray, ri: np.ndarray) -> np.ndarray:
    """Does neighbourhood row ``left[li]`` share an entry with ``right[ri]``, pair by pair?"""
    out = np.zeros(len(li), dtype=bool)
    step = 100_000  # bounds the (step × slots × slots) comparison
    for s in range(0, len(li), step):
        out[s:s + step] = shares_entry(left[li[s:s + step]], right[ri[s:s + step]])
    return out


# ---------------------------------------------------------------------------
# Level tests: small declarative objects, each with its own words
# ---------------------------------------------------------------------------

Test = Callable[[Pairs], np.ndarray]


@dataclass(frozen=True)
class Same:
    """Both records carry the same token in ``column`` (or ``column`` vs ``other`` column)."""

    column: str
    other: str | None = None

    def __call__(self, pairs: Pairs) -> np.ndarray:
        a, b = pairs.tokens(self.column, self.other)
        return (a == b) & (a != 0)


@dataclass(frozen=True)
class NotSame:
    """The records do not share the token in ``other`` (it differs, or one lacks it). Named
    ``other``: the field a "swapped" level glances at is not the comparison's own (see
    :meth:`Comparison.columns`)."""

    other: str

    def __call__(self, pairs: Pairs) -> np.ndarray:
        return ~Same(self.other)(pairs)


@dataclass(frozen=True)
class SpelledOut:
    """Neither record gives its ``column`` as a bare initial (a one-letter name's token equals
    its ``initial`` token): every letter is one keystroke from every other, so two initials
    that differ are not a typo of one name."""

    column: str
    initial: str

    def __call__(self, pairs: Pairs) -> np.ndarray:
        a, b = pairs.tokens(self.column, None)
        ia, ib = pairs.tokens(self.initial, None)
        return (a != ia) & (b != ib)


@dataclass(frozen=True)
class Crossed:
    """Left ``a`` equals right ``b`` or left ``b`` equals right ``a`` (swaps, previous surnames)."""

    a: str
    b: str

    def __call__(self, pairs: Pairs) -> np.ndarray:
        return Same(self.a, self.b)(pairs) | Same(self.b, self.a)(pairs)


@dataclass(frozen=True)
class DiceAtLeast:
    """Keyed Bloom filters of the two values share at least ``threshold`` of their bits (Dice)."""

    column: str
    threshold: float

    def __call__(self, pairs: Pairs) -> np.ndarray:
        d = pairs.dice(self.column)
        return np.nan_to_num(d, nan=-1.0) >= self.threshold


@dataclass(frozen=True)
class SharesEntry:
    """The two records' keyed neighbourhoods (``anonymise.variants.NEIGHBOURHOOD_VARIANTS``) share
    an entry: one keystroke apart (``ed_*``), or a name and its nickname, or two forms of one
    name (``nk_*``)."""

    column: str

    def __call__(self, pairs: Pairs) -> np.ndarray:
        return pairs.share_entry(self.column)


@dataclass(frozen=True)
class SharesAcross:
    """One record's neighbourhood ``a`` shares an entry with the other's ``b``, either way round: the
    initials of a record that spells out no forename (``nf_bare``) against the initials of the
    other's forenames (``nf_initials``)."""

    a: str
    b: str

    def __call__(self, pairs: Pairs) -> np.ndarray:
        return pairs.share_across(self.a, self.b)


@dataclass(frozen=True)
class AnyOf:
    tests: tuple

    def __call__(self, pairs: Pairs) -> np.ndarray:
        out = np.zeros(len(pairs), dtype=bool)
        for t in self.tests:
            out |= t(pairs)
        return out


@dataclass(frozen=True)
class AllOf:
    tests: tuple

    def __call__(self, pairs: Pairs) -> np.ndarray:
        out = np.ones(len(pairs), dtype=bool)
        for t in self.tests:
            out &= t(pairs)
        return out


@dataclass(frozen=True)
class Level:
    label: str
    description: str
    test: Test | None  # None = "anything else" (the disagreement level)
    m_start: float  # starting m for EM; u starts from random pairs
    tf_column: str | None = None  # term-frequency adjust this level on that token column
    #: False for a near miss ("different, but the same initial"): the levels before the first
    #: such level are agreement; a comparison that has one gets its "different" level's m
    #: bounded by anchor pairs in training (``matching.training.anchored_m``)
    agrees: bool = True


@dataclass(frozen=True)
class Comparison:
    name: str
    description: str
    levels: tuple[Level, ...]
    #: the field counts as missing for a record when all these columns are missing
    present: tuple[str, ...]
    #: token columns this field depends on, in groups: where a pair agrees on every column of a
    #: group (the same address; the same surname), the comparison's evidence is measured among
    #: different people who also agree on them (household members share a surname, twins a
    #: surname and a birthday), not among random pairs. Where several groups hold, the one that
    #: counts the pair's level least decides.
    given: tuple[tuple[str, ...], ...] = ()

    def given_holds(self, pairs: "Pairs", group: tuple[str, ...],
                    alike: "dict[str, tuple[Comparison, tuple[int, ...]]] | None" = None) -> np.ndarray:
        """Pairs that agree (both present) on every column of one ``given`` group. ``alike``: per
        column, the comparison that measures it and its levels that count as agreeing too (an
        address one typo apart, where the model weighs that as much as the same address: see
        ``matching.training.alike_levels``)."""
        out = np.ones(len(pairs), dtype=bool)
        for column in group:
            same = Same(column)(pairs)
            if alike and column in alike:
                measuring, levels = alike[column]
                same |= np.isin(pairs.memo(("levels", measuring), lambda m=measuring: m.levels_of(pairs)), levels)
            out &= same
        return out

    def columns(self) -> set[str]:
        """The columns of the comparison's own field: a blocking rule on one of them makes every
        training pair agree on it, so that rule cannot teach this comparison's m. (The other
        field a "swapped" level glances at is not the comparison's own.)"""
        found = set(self.present)

        def walk(test) -> None:
            if isinstance(test, (AllOf, AnyOf)):
                for t in test.tests:
                    walk(t)
            elif test is not None:
                found.update(v for k, v in vars(test).items() if k in ("column", "a") and v)

        for level in self.levels:
            walk(level.test)
        if found & {"t_forename", "t_surname"}:
            found.add("t_name_sorted")  # sorted(forename, surname) agrees only if the names do
        if "t_dob" in found:
            found.update({"t_dob_unordered", "t_yob", "t_dob_ym", "t_dob_md", "t_dob_yd"})
        return found

    @property
    def agreeing(self) -> int:
        """How many leading levels are agreement (before the first near miss)."""
        n = 0
        for level in self.levels[:-1]:
            if not level.agrees:
                break
            n += 1
        return n

    @property
    def near_miss(self) -> bool:
        """Whether the comparison has a near-miss level (see ``Level.agrees``)."""
        return self.agreeing < len(self.levels) - 1

    def levels_of(self, pairs: Pairs) -> np.ndarray:
        """Level index per pair (int8), :data:`NULL` where either side lacks the field.

        Each level is tested on the pairs no earlier level took, narrowed to them once they are
        fewer than :data:`NARROW_BELOW` of the batch: among a blocking rule's pairs most agree
        exactly, and the dearer tests of the later levels (neighbourhoods, Bloom similarity)
        then see only the rest. A test looks only at the two records of a pair, so the levels
        are the same either way."""
        out = np.full(len(pairs), len(self.levels) - 1, dtype=np.int8)
        part, where = pairs, None  # the pairs tested; their positions in ``pairs`` (None: all)
        undecided = np.ones(len(pairs), dtype=bool)  # over ``part``
        for i, level in enumerate(self.levels):
            if level.test is None:
                break
            left = int(np.count_nonzero(undecided))
            if left == 0:
                break
            if left < NARROW_BELOW * len(part):
                keep = np.flatnonzero(undecided)
                part = Pairs(part.left, part.right, part.li[keep], part.ri[keep])
                where = keep if where is None else where[keep]
                undecided = np.ones(left, dtype=bool)
            hit = level.test(part) & undecided
            out[np.flatnonzero(hit) if where is None else where[hit]] = i
            undecided &= ~hit
        out[~(_present(pairs.left, self.present)[pairs.li] & _present(pairs.right, self.present)[pairs.ri])] = NULL
        return out

    def describe(self) -> list[dict[str, str]]:
        return [{"label": lv.label, "description": lv.description} for lv in self.levels]


def _present(side: Side, columns: tuple[str, ...]) -> np.ndarray:
    out = np.zeros(side.n, dtype=bool)
    for col in columns:
        if col in ENCODED_BYTES:
            out |= side.bloom(col)[1] > 0
        else:
            out |= side.token(col) != 0
    return out


# ---------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------

_NAME_FIELDS = {
    # field: (token, Bloom filter, phonetic token, other name column for swaps)
    "forename": ("t_forename", "bf_forenames", "t_forename_phon", "t_surname", "ed_forename"),
    "surname": ("t_surname", "bf_surname", "t_surname_phon", "t_forename", "ed_surname"),
}


def name(field: str = "surname", initial: bool = False, near: float = 0.85, similar: float = 0.6) -> Comparison:
    """A person's forename or surname: exact, near spelling, nickname/phonetic, swapped, (for the
    forename) another of the forenames, different.

    ``initial: true`` (forename only) splits "different" by the first initial. Where a
    typo'd or nicknamed forename must be told from a different person's (a household
    member's), "Kaz" vs "Karen" keeps its initial far more often than two people's
    forenames share one.
    """
    if field not in _NAME_FIELDS:
        raise ValueError(f"name comparison: field must be one of {sorted(_NAME_FIELDS)}, not {field!r}")
    token, bloom, phon, other, edits = _NAME_FIELDS[field]
    what = "first forename" if field == "forename" else "surname"
    levels: list[Level] = [
        Level("exact", f"the {what} is identical", Same(token), 0.85, tf_column=token),
        Level("near spelling", f"the {what}s differ by a typo or two (keyed bigram similarity ≥ {near:g})",
              DiceAtLeast(bloom, near), 0.06),
        Level("one edit", f"the {what}s are one keystroke apart (a letter added, dropped or changed, "
              "or two swapped)", AllOf((SharesEntry(edits), SpelledOut(token, "t_initial")))
              if field == "forename" else SharesEntry(edits), 0.04),
    ]
    if field == "forename":
        levels.append(Level("nickname", "the forenames are a name and its nickname, or two forms of one name "
                            "(e.g. Bill / William, Peggy / Meg)",
                            SharesEntry("nk_forename"), 0.02))
    else:
        levels.append(Level("previous surname", "one record's surname is the other's previous surname",
                            Crossed("t_surname", "t_prev_surname"), 0.02))
        levels.append(Level("part of the surname", "one surname is part of the other's multi-part surname "
                            "(SMITH-JONES / JONES, VAN DER BERG / BERG)", AnyOf((
                                Crossed("t_surname", "t_surname_first"), Crossed("t_surname", "t_surname_last"),
                                Same("t_surname_first"), Same("t_surname_last"),
                                Crossed("t_surname_first", "t_surname_last"))), 0.01))
    levels += [
        Level("sounds alike", f"the {what}s sound alike (same phonetic code)", Same(phon), 0.02),
        Level("similar", f"the {what}s are similar (keyed bigram similarity ≥ {similar:g})",
              DiceAtLeast(bloom, similar), 0.02),
        # one record's forename is the other's surname while their surnames (forenames) differ:
        # a swap. Where they agree, the crossing is a forename that equals the surname (AHMED
        # AHMED and GEORGE AHMED), not a swap
        Level("swapped", "forename and surname are swapped between the records",
              AllOf((Same(token, other), NotSame(other))), 0.01),
    ]
    if initial:
        if field != "forename":
            raise ValueError("name comparison: initial applies to the forename only")
        levels.append(Level("initial only", "one record gives only the initial of the other's forename",
                            Crossed("t_forename", "t_initial"), 0.02))
    if field == "forename":
        # people go by a middle name, or give only its initial: the first forenames differ, but one
        # record's forename (or initial) is another of the other's
        levels.append(Level("another forename", "one record's forename is another of the other's forenames, "
                            "or its initial (ROBERT DALE / DALE, E / BRYANNA EMMA)",
                            AnyOf((SharesEntry("nf_words"), SharesAcross("nf_bare", "nf_initials"))), 0.01))
    if initial:
        levels.append(Level("same initial", "the forenames differ but start with the same letter",
                            Same("t_initial"), 0.01, agrees=False))
    levels += [
        Level("different", f"the {what}s are different", None, 0.02),
    ]
    return Comparison(field, f"Compares the {what}.", tuple(levels), present=(token, bloom))


def date_of_birth(same_year: bool = True) -> Comparison:
    """Date of birth: exact, day/month transposed, one part differs, 1 January of the same year,
    same year, different.

    ``same_year: false`` drops the year level: where typed dates of birth are reliable
    (checked against ID), "same name, same year, different date" is a different person
    and should count against a match, not for it.
    """
    levels = [
        Level("exact", "the dates of birth are identical", Same("t_dob"), 0.9, tf_column="t_dob"),
        Level("transposed", "same date with day and month swapped", Same("t_dob_unordered"), 0.02),
        Level("one part differs", "two of day, month and year agree (one part mistyped)",
              AnyOf((Same("t_dob_ym"), Same("t_dob_md"), Same("t_dob_yd"))), 0.04),
        # a system that knows only the year writes 1 January: not a different birthday
        Level("1 January, same year", "one date is 1 January of the other's year of birth (the year "
              "known, the day not)", Crossed("t_yob_jan1", "t_yob"), 0.01),
    ]
    if same_year:
        levels.append(Level("same year", "born in the same year, different date", Same("t_yob"), 0.04))
    levels.append(Level("different", "the dates of birth are different", None, 0.04))
    return Comparison("dob", "Compares the date of birth.", tuple(levels), present=("t_dob",))


def address(near: float = 0.85, similar: float = 0.6, premise: float = 0.45) -> Comparison:
    """Full address with its postcode, falling back to postcode agreement when the street differs.

    One comparison rather than address + postcode: both see the postcode, and counting
    it twice would overstate two different homes in one postcode.
    """
    return Comparison("address", "Compares the address and its postcode.", (
        Level("exact", "the addresses are identical, read alike where a scanner confuses characters "
              "(B1RD / BIRD, I1 / 11)", Same("t_address"), 0.7, tf_column="t_address"),
        Level("near", f"the addresses differ by a typo or two (keyed similarity ≥ {near:g})",
              DiceAtLeast("bf_address", near), 0.12),
        Level("similar", f"the addresses are similar (keyed similarity ≥ {similar:g})",
              DiceAtLeast("bf_address", similar), 0.05),
        Level("same premise", "same house/flat number and postcode, and the rest of the address is "
              f"not dissimilar (keyed similarity ≥ {premise:g})",
              AllOf((Same("t_premise"), DiceAtLeast("bf_address", premise))), 0.03),
        Level("same postcode", "a different address in the same postcode", Same("t_postcode"), 0.03),
        Level("same sector", "a different address in the same postcode sector (e.g. SW1A 1)",
              Same("t_pc_sector"), 0.02),
        Level("same district", "a different address in the same postcode district (e.g. SW1A)",
              Same("t_pc_district"), 0.02),
        Level("different", "the addresses are different", None, 0.03),
    ), present=("t_address", "bf_address", "t_postcode"))


def postcode() -> Comparison:
    """Postcode: exact, same sector, same district, different."""
    return Comparison("postcode", "Compares the postcode.", (
        Level("exact", "the postcodes are identical", Same("t_postcode"), 0.85, tf_column="t_postcode"),
        Level("same sector", "same postcode sector (e.g. SW1A 1)", Same("t_pc_sector"), 0.05),
        Level("same district", "same postcode district (e.g. SW1A)", Same("t_pc_district"), 0.04),
        Level("different", "the postcodes are different", None, 0.06),
    ), present=("t_postcode",))


_EXACT_WORDS = {
    "t_nino": "National Insurance number", "t_uprn": "property reference (UPRN)",
    "t_email": "email address", "t_phone": "phone number", "t_bank": "bank account",
}


def exact(column: str, name: str | None = None, tf: bool = False, edits: str | None = None) -> Comparison:
    """Any single token column: identical, [one keystroke apart], different.

    ``edits`` names the column's keyed edit neighbourhood (e.g. ``ed_nino``): a reference
    number keyed with one digit wrong or two swapped is then a near miss of its own, not
    the strong evidence against a match that a wholly different one is.
    """
    what = _EXACT_WORDS.get(column, column)
    label = name or column.removeprefix("t_")
    levels = [Level("exact", f"the {what} is identical", Same(column), 0.9, tf_column=column if tf else None)]
    if edits:
        levels.append(Level("one edit", f"the {what}s are one keystroke apart (a character added, dropped or "
                            "changed, or two swapped)", SharesEntry(edits), 0.03))
    levels.append(Level("different", f"the {what} is different", None, 0.07 if edits else 0.1))
    return Comparison(label, f"Compares the {what}.", tuple(levels), present=(column,))


#: name used in YAML -> factory (keyword arguments come from the YAML entry)
LIBRARY: dict[str, Callable[..., Comparison]] = {
    "name": name,
    "date_of_birth": date_of_birth,
    "address": address,
    "postcode": postcode,
    "exact": exact,
}
