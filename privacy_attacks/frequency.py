"""Frequency attacks on token columns: rank-align token counts with a public frequency table.

A deterministic keyed token keeps its value's frequency: the most frequent ``t_surname`` is
very likely the most frequent public surname. The grouped variant narrows the alignment
level by level (e.g. ``t_initial`` -> ``t_forename_phon`` -> ``t_forename``): within each
group already assigned a value, tokens are aligned only with the public names that share it.
The salted variant does the same for a Bloom filter salted by stored attributes: inside one
salt group a name's filter is deterministic again, so its frequency can be ranked there. The
entry variant ranks the entries of a neighbourhood holding several names (every forename).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from privacy_attacks.knowledge import Table

Key = Callable[[str], str]


def rank_align(tokens: pd.Series, public: pd.Series) -> pd.Series:
    """token -> public value: i-th most frequent token gets the i-th most frequent value.

    ``public`` is a frequency Series indexed by value, most frequent first. Token 0 (missing)
    is never assigned. Ties in count are broken by token value (arbitrary but reproducible).
    """
    counts = tokens[tokens != 0].value_counts()
    counts = counts.rename_axis("token").reset_index(name="n").sort_values(
        ["n", "token"], ascending=[False, True], kind="stable")
    m = min(len(counts), len(public))
    return pd.Series(public.index[:m].to_numpy(), index=counts["token"].to_numpy()[:m])


def frequency_attack(frame: pd.DataFrame, column: str, table: Table, key: Key | None = None) -> pd.Series:
    """Per-record guess of the value behind ``column`` (None where no guess)."""
    public = table.grouped(key) if key else table.freq.set_axis(table.names)
    mapping = rank_align(frame[column], public)
    return frame[column].map(mapping).astype(object).where(frame[column] != 0, None)


def grouped_attack(frame: pd.DataFrame, chain: Sequence[tuple[str, Key]], table: Table) -> pd.Series:
    """Per-record guess of the last column's value, aligning within groups level by level.

    ``chain`` = [(token column, key of a public name at that level), ...]; the last key is
    usually the identity. Level i aligns, within each group of records whose previous levels
    were assigned the values ``v_1..v_{i-1}``, the column's tokens with the public names
    whose keys are ``v_1..v_{i-1}``, grouped by key i.
    """
    names = table.names
    keys = pd.DataFrame({f"k{i}": names.map(k) for i, (_, k) in enumerate(chain)})
    keys["freq"] = table.freq
    assigned = pd.DataFrame(index=frame.index)
    valid = np.ones(len(frame), dtype=bool)
    for col, _ in chain:
        valid &= frame[col].to_numpy() != 0
    for i, (col, _) in enumerate(chain):
        parents = [f"k{j}" for j in range(i)]
        guess = pd.Series(None, index=frame.index, dtype=object)
        if parents:
            groups = assigned[valid].groupby(parents, sort=False).groups
            public_groups = keys.groupby(parents, sort=False)
        else:
            groups = {(): frame.index[valid]}
            public_groups = None
        for value, idx in groups.items():
            value = value if isinstance(value, tuple) else (value,)
            if public_groups is None:
                pub = keys
            else:
                try:
                    pub = public_groups.get_group(value)
                except KeyError:
                    continue
            public = pub.groupby(f"k{i}")["freq"].sum().sort_values(ascending=False, kind="stable")
            mapping = rank_align(frame.loc[idx, col], public)
            guess.loc[idx] = frame.loc[idx, col].map(mapping).to_numpy()
        assigned[f"k{i}"] = guess
        valid &= guess.notna().to_numpy()
    return assigned[f"k{len(chain) - 1}"].where(valid, None)


def salted_frequency_attack(frame: pd.DataFrame, column: str, salt_tokens: Sequence[str], table: Table) -> pd.Series:
    """Per-record guess of the value behind a salted encoding: inside each group of records
    sharing the salt tokens (stored beside it, so visible), the i-th most frequent encoding
    gets the i-th most frequent public value (names taken as independent of the salt)."""
    values = frame[column].map(lambda v: v if isinstance(v, (bytes, bytearray)) and any(v) else None)
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    encoded = pd.Series(codes.astype(np.int64) + 1, index=frame.index)  # 0: missing
    public = table.freq.set_axis(table.names)
    guess = pd.Series(None, index=frame.index, dtype=object)
    for _, idx in frame.groupby(list(salt_tokens), sort=False).groups.items():
        group = encoded.loc[idx]
        guess.loc[idx] = group.map(rank_align(group, public)).to_numpy()
    return guess.where(encoded != 0, None)


def entry_frequency_attack(entries: np.ndarray, table: Table) -> pd.Series:
    """Per-record guess of the names behind a neighbourhood of several names (``nf_words``: every
    forename), as their sorted, space-joined guesses (None where the row is empty).

    Each entry is one name's keyed hash, the same in every record holding that name, so entries
    are counted over records and rank-aligned with the public table like a token; a record is
    named when every one of its entries is (its order is not known, so the guess is sorted).
    """
    n, slots = entries.shape
    flat = pd.Series(entries.reshape(-1).astype(np.int64))
    mapping = rank_align(flat, table.freq.set_axis(table.names))
    guessed = flat.map(mapping).to_numpy(dtype=object).reshape(n, slots)
    present = entries != 0
    out = []
    for row, has in zip(guessed, present):
        names = row[has]
        out.append(None if not has.any() or any(v is None or v != v for v in names) else " ".join(sorted(names)))
    return pd.Series(out, dtype=object)
