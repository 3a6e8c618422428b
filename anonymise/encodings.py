"""Keyed similarity encodings: hardened q-gram Bloom filters and their Dice similarity.

A value's padded bigrams ("_SMITH_" -> _S SM MI IT TH H_) each set ``k`` bits whose
positions come from HMAC-SHA-256 under a purpose subkey ("random hashing"): without
the key nobody can compute the filter of a guessed name, so dictionary attacks fail.
Hardening against the published frequency and pattern-mining attacks (Kroll &
Steinmetzer 2015; Christen et al. 2017-18):

* positions are independent keyed draws per bigram, not double hashing (whose
  arithmetic structure those attacks exploit);
* the filter is built at twice its stored length and XOR-folded in half
  (Schnell, Borgs & Encarnacao 2016), so a bigram's bits no longer appear as a fixed
  co-occurring pattern (they cancel against other bigrams' bits);
* optional BLIP (randomised response, Schnell & Borgs 2016): each bit flipped with
  probability ``blip``, deterministically per value (seeded by a keyed hash of the
  value) so reruns are idempotent;
* separate subkeys per field family (names vs addresses), so filters of different
  fields cannot be correlated.

The work is done on unique values (``pd.factorize``) and bigram positions are
computed once per distinct bigram, then OR-ed per value with numpy in batches.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

PAD = "_"


def hmac64(key: bytes, values: list[str]) -> np.ndarray:
    """First 8 bytes (big-endian signed) of HMAC-SHA-256(key, value) for each value.

    Exactly ``hmac.digest(key, v, "sha256")[:8]``, but the key's inner and outer pad
    states are hashed once and copied per value: about twice as fast for short values.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(64, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded)).copy

    def one(value: str) -> bytes:
        h = inner()
        h.update(value.encode("utf-8"))
        o = outer()
        o.update(h.digest())
        return o.digest()[:8]

    return np.frombuffer(b"".join(map(one, values)), dtype=">i8").astype(np.int64)


@dataclass(frozen=True)
class BloomSettings:
    """How a Bloom filter column is built. ``nbytes`` is the stored length."""

    nbytes: int
    #: bit positions per bigram (in the unfolded filter of 2 * nbytes * 8 bits)
    k: int = 20
    #: XOR-fold a double-length filter in half (hardening)
    fold: bool = True
    #: BLIP bit-flip probability (0 = off)
    blip: float = 0.0
    #: add single letters to the bigrams: lifts Dice of one-typo variants of short names
    unigrams: bool = False


#: Distinct values encoded at a time, and q-gram occurrences scattered at a time:
#: together they bound memory (~100 MB) whatever the extract size.
_CHUNK_VALUES = 100_000
_BATCH_BIGRAMS = 400_000


def _positions(key: bytes, bigrams: list[str], k: int, nbits: int) -> np.ndarray:
    """(n_bigrams, k) keyed bit positions in [0, nbits): 16-bit chunks of HMAC outputs."""
    assert nbits & (nbits - 1) == 0 and nbits <= 65536, "nbits must be a power of two <= 65536"
    rounds = -(-k // 16)
    raw = b"".join(
        hmac.digest(key, bg.encode("utf-8") + bytes([r]), "sha256")
        for bg in bigrams for r in range(rounds)
    )
    pos = np.frombuffer(raw, dtype=">u2").reshape(len(bigrams), rounds * 16)[:, :k]
    return (pos.astype(np.int64) & (nbits - 1))


def _encode_unique(values: np.ndarray, key: bytes, s: BloomSettings) -> np.ndarray:
    """Filters (n, nbytes) uint8 for distinct non-missing strings.

    Each q-gram occurrence scatters its ``k`` keyed positions into a boolean matrix
    (batches of whole strings bound the memory), which is then XOR-folded and packed.
    """
    n = len(values)
    if n == 0:
        return np.zeros((0, s.nbytes), dtype=np.uint8)
    nbits = s.nbytes * 8 * (2 if s.fold else 1)
    padded = [PAD + v + PAD for v in values.tolist()]
    lengths = np.fromiter((len(p) for p in padded), dtype=np.int64, count=n)
    chars = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    # bigram i starts at char i; valid unless i is the last char of its string
    valid = np.ones(len(chars), dtype=bool)
    valid[ends - 1] = False
    idx = np.flatnonzero(valid)
    codes = (chars[idx] << 16) | chars[idx + 1]
    owner = np.repeat(np.arange(n), lengths - 1)
    if s.unigrams:  # each letter too (code: char << 16 | 0), inner chars only (no padding)
        inner = valid.copy()
        inner[starts] = False
        uidx = np.flatnonzero(inner)
        codes = np.concatenate([codes, chars[uidx] << 16])
        owner = np.concatenate([owner, np.repeat(np.arange(n), lengths - 2)])
    gram_ids, ucodes = pd.factorize(codes)  # hash-based: no sort of millions of q-grams
    grams = [chr(c >> 16) + chr(c & 0xFFFF) for c in ucodes.tolist()]  # a unigram is letter + NUL
    positions = _positions(key, grams, s.k, nbits)  # (n_grams, k)

    # batches of whole strings, about _BATCH_BIGRAMS q-gram occurrences each
    order = np.argsort(owner, kind="stable") if s.unigrams else None
    if order is not None:
        owner, gram_ids = owner[order], gram_ids[order]
    bounds = np.searchsorted(owner, np.arange(0, n, max(1, n * _BATCH_BIGRAMS // max(1, len(owner)))))
    bounds = np.unique(np.concatenate([bounds, [len(owner)]]))
    out = np.zeros((n, s.nbytes), dtype=np.uint8)
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo, hi = owner[a], (owner[b] if b < len(owner) else n)
        bits = np.zeros((hi - lo, nbits), dtype=bool)
        flat = ((owner[a:b] - lo) * nbits)[:, None] + positions[gram_ids[a:b]]
        bits.ravel()[flat.ravel()] = True
        if s.fold:
            bits = bits[:, : nbits // 2] ^ bits[:, nbits // 2:]
        out[lo:hi] = np.packbits(bits, axis=1, bitorder="little")
    if s.blip > 0:
        out ^= _blip_mask(values, key, s)
    # A filter must never be all zero (that means "missing"): set bit 0 if it folded away.
    out[~out.any(axis=1), 0] = 1
    return out


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _blip_mask(values: np.ndarray, key: bytes, s: BloomSettings) -> np.ndarray:
    """Deterministic per-value flip mask: bit j flips iff mix(keyed seed, j) < blip * 2^64."""
    seed_key = hmac.digest(key, b"blip", "sha256")
    seeds = np.frombuffer(
        b"".join(hmac.digest(seed_key, v.encode("utf-8"), "sha256")[:8] for v in values.tolist()),
        dtype="<u8",
    )
    nbits = s.nbytes * 8
    threshold = np.uint64(int(s.blip * 2**64) - 1)
    mask = np.zeros((len(values), s.nbytes), dtype=np.uint8)
    step = max(1, 4_000_000 // nbits)
    j = np.arange(nbits, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03)
    with np.errstate(over="ignore"):
        for lo in range(0, len(values), step):
            r = _splitmix64(seeds[lo: lo + step, None] ^ j[None, :])
            mask[lo: lo + step] = np.packbits(r < threshold, axis=1, bitorder="little")
    return mask


def bloom_encode(values: pd.Series, key: bytes, settings: BloomSettings) -> np.ndarray:
    """(len(values), nbytes) uint8 filters; missing (NA or empty) values give all-zero rows."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    keep = np.fromiter((isinstance(u, str) and u != "" for u in uniques), dtype=bool, count=len(uniques))
    filters = np.zeros((len(uniques) + 1, settings.nbytes), dtype=np.uint8)  # last row: missing
    present = np.flatnonzero(keep)
    for lo in range(0, len(present), _CHUNK_VALUES):  # chunks bound the q-gram arrays' memory
        rows = present[lo: lo + _CHUNK_VALUES]
        filters[rows] = _encode_unique(uniques[rows], key, settings)
    codes = np.where(codes < 0, len(uniques), codes)
    return filters[codes]


_SALT_CHUNK = 65_536  # rows permuted at a time (bounds the unpacked bit matrix)


def salt_permute(filters: np.ndarray, salts: np.ndarray, key: bytes) -> np.ndarray:
    """Each row's bits permuted by a keyed permutation of its salt.

    Two filters under the same salt keep their Dice similarity exactly; under different
    salts they look unrelated. Why: an unsalted name filter is the same bit pattern for
    every record of that name, so an insider who knows a few people's names can align
    filters and decode the rest through their overlaps (docs/security.md). Salted, the
    bit positions mean something different in every salt group of a handful of records.
    The permutations come from a keyed hash of the salt: without the key, nobody can
    tell which permutation a group uses.
    """
    n, nbytes = filters.shape
    nbits = nbytes * 8
    codes, uniques = pd.factorize(pd.Series(salts, dtype=object), use_na_sentinel=False)
    seeds = [int.from_bytes(hmac.digest(key, str(u).encode("utf-8"), "sha256")[:16], "little") for u in uniques]
    perms = np.stack([_permutation(s, nbits) for s in seeds]) if seeds else np.zeros((0, nbits), np.int16)
    # rows grouped by salt: each group's bits are gathered by one permutation (no per-row index
    # matrix of nbits intp, which made this eight times slower)
    order = np.argsort(codes, kind="stable")
    out = np.empty_like(filters)
    for lo in range(0, n, _SALT_CHUNK):
        rows = order[lo: lo + _SALT_CHUNK]
        group = codes[rows]
        bits = np.unpackbits(filters[rows], axis=1, bitorder="little")
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        for a, b in zip(starts.tolist(), np.r_[starts[1:], len(rows)].tolist()):
            bits[a:b] = bits[a:b][:, perms[group[a]]]
        out[rows] = np.packbits(bits, axis=1, bitorder="little")
    return out


@functools.lru_cache(maxsize=1 << 14)  # at most 16,384 x 2 KB
def _permutation(seed: int, nbits: int) -> np.ndarray:
    """The bit permutation of a salt's keyed seed (read-only). Kept for the process's next feeds:
    the feeds of a night share most salt groups (a year of birth and an initial), and drawing a
    permutation costs more than the rest of permuting a group; the cache holds keyed seeds only,
    never a salt's value."""
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(nbits).astype(np.int16)
    perm.setflags(write=False)
    return perm


def to_arrow(matrix: np.ndarray) -> pa.FixedSizeBinaryArray:
    """An (n, nbytes) uint8 matrix as an Arrow fixed_size_binary array (zero copy of rows)."""
    m = np.ascontiguousarray(matrix, dtype=np.uint8)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(m.shape[1]), m.shape[0], [None, pa.py_buffer(m.tobytes())]
    )


def to_bytes_column(matrix: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """Rows of a (n, nbytes) uint8 matrix as a Series of fixed-length ``bytes``."""
    return pd.Series(to_arrow(matrix).to_numpy(zero_copy_only=False), index=index, dtype=object)


def bloom_matrix(col: pd.Series) -> np.ndarray:
    """A column of fixed-length ``bytes`` (pseudonymised store) as an (n, nbytes) uint8 matrix."""
    values = col.to_numpy(dtype=object)
    if len(values) == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    width = len(values[0])
    buf = b"".join(values.tolist())
    if len(buf) != width * len(values):
        raise ValueError(f"bloom column {col.name!r} holds values of different lengths")
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(values), width)


def _popcount(m: np.ndarray) -> np.ndarray:
    if m.shape[1] % 8 == 0:
        m = np.ascontiguousarray(m).view(np.uint64)
    return np.bitwise_count(m).sum(axis=1, dtype=np.int64)


def dice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Dice similarity 2|a&b| / (|a|+|b|) of aligned (n, nbytes) uint8 matrices.

    NaN where either filter is all zero (the value was missing), so a comparison can
    give missing values their own level.
    """
    if a.shape != b.shape:
        raise ValueError(f"dice: shapes differ {a.shape} vs {b.shape}")
    na, nb = _popcount(a), _popcount(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 2.0 * _popcount(a & b) / (na + nb)
    out[(na == 0) | (nb == 0)] = np.nan
    return out


def edit_neighbourhoods(values: pd.Series, key: bytes, slots: int) -> np.ndarray:
    """(n, slots * 4) uint8: each value's keyed one-edit neighbourhood.

    The neighbourhood is the value itself and every deletion of one letter ("SMITH" ->
    SMITH, MITH, SITH, SMTH, SMIH, SMIT), each as the first 4 bytes of its HMAC, sorted
    and zero-padded. Two values one keystroke apart (a letter added, dropped or changed,
    two neighbours swapped) share an entry; unrelated values almost never do. Why: a
    salted Bloom filter says nothing when the salts differ (a mistyped surname *and* a
    different year of birth), and this needs no salt. Sorting by keyed hash hides which
    letter each entry dropped; a value longer than ``slots - 1`` letters keeps its
    ``slots`` smallest hashes (a bottom-k sketch), so two long values still share the
    entry with good odds. Missing values are all-zero rows.
    """
    return neighbourhoods(values, key, slots, one_edit_forms)


def one_edit_forms(word: str) -> list[str]:
    """The word and each one-letter deletion of it (SMITH: SMITH, MITH, SITH, SMTH, SMIH, SMIT)."""
    return [word] + [word[:i] + word[i + 1:] for i in range(len(word))]


def neighbourhoods(values: pd.Series, key: bytes, slots: int, around: Callable[[str], list[str]]) -> np.ndarray:
    """(n, slots * 4) uint8: the keyed hashes of ``around(value)`` for each value, sorted and
    zero-padded, the ``slots`` smallest kept (see :func:`edit_neighbourhoods`); two values
    whose neighbourhoods share a string share an entry. Missing values are all-zero rows."""
    n = len(values)
    out = np.zeros((n, slots), dtype=">u4")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    words = [str(u) for u in uniques]
    if not words:
        return out.view(np.uint8).reshape(n, slots * 4)
    variants = [around(w) for w in words]
    sizes = np.fromiter(map(len, variants), np.int64, len(variants))
    # distinct values share most forms (initials, a nickname's full names, MITH of SMITH and SMYTH):
    # each form is hashed once (on a generated 1M night, 2.2M hashes where there were 3.2M forms)
    form_codes, forms = pd.factorize(pd.Series([v for vs in variants for v in vs], dtype=object))
    hashes = (hmac64(key, forms.tolist()).view(np.uint64) >> np.uint64(32)).astype(np.uint64)[form_codes]
    hashes[hashes == 0] = 1  # 0 is padding
    group = np.repeat(np.arange(len(words), dtype=np.uint64), sizes)
    keyed = np.unique((group << np.uint64(32)) | hashes)  # sorted by value, then hash; duplicates gone
    g = (keyed >> np.uint64(32)).astype(np.int64)
    rank = np.arange(len(keyed)) - np.searchsorted(g, g, side="left")
    keep = rank < slots
    per_value = np.zeros((len(words), slots), dtype=">u4")
    per_value[g[keep], rank[keep]] = (keyed[keep] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    present = codes >= 0
    out[present] = per_value[codes[present]]
    return out.view(np.uint8).reshape(n, slots * 4)


def shares_entry(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise: do two (n, slots * 4) neighbourhood matrices share a non-zero entry?"""
    # entries are distinct within a row, so after sorting both rows' entries together an
    # equal neighbour can only be a shared entry (one sort beats slots × slots comparisons)
    both = np.concatenate([np.ascontiguousarray(a).view(">u4"), np.ascontiguousarray(b).view(">u4")],
                          axis=1).astype(np.uint32)
    both.sort(axis=1)
    return ((both[:, 1:] == both[:, :-1]) & (both[:, 1:] != 0)).any(axis=1)
