"""Public knowledge the attacker brings: name frequency tables that are not the generator's.

``names`` (0.3.0) ships the US census 1990 frequency files (``dist.all.last``: 88,799
surnames; ``dist.male.first`` / ``dist.female.first``: 5,494 forenames), each line
``NAME  percent  cumulative  rank``. ``nicknames`` ships hand-curated English nickname
relations, used to fold the public forename table the way ``t_forename_canon`` folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import jellyfish
import pandas as pd


@dataclass(frozen=True)
class Table:
    """Public names, most frequent first: ``freq`` sums to 1 over the table."""

    names: pd.Series  # upper-case names, index 0..n-1 in frequency order
    freq: pd.Series   # same index

    def top(self, n: int) -> "Table":
        return Table(self.names.iloc[:n].reset_index(drop=True), self.freq.iloc[:n].reset_index(drop=True))

    def grouped(self, key) -> pd.Series:
        """Frequency of each value of ``key(name)``, most frequent first (e.g. initials, Soundex codes)."""
        return self.freq.groupby(self.names.map(key)).sum().sort_values(ascending=False, kind="stable")


def _read(filename: str) -> pd.DataFrame:
    text = resources.files("names").joinpath(filename).read_text()
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return pd.DataFrame({"name": [r[0] for r in rows], "pct": [float(r[1]) for r in rows]})


def _table(frame: pd.DataFrame) -> Table:
    frame = frame[frame["name"].str.fullmatch(r"[A-Z]+")]
    frame = frame.groupby("name", as_index=False)["pct"].sum()
    frame = frame.sort_values(["pct", "name"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return Table(frame["name"], frame["pct"] / frame["pct"].sum())


@lru_cache(maxsize=None)
def surnames() -> Table:
    return _table(_read("dist.all.last"))


@lru_cache(maxsize=None)
def forenames() -> Table:
    """Male and female forenames together (the census percentages are per sex: halved)."""
    return _table(pd.concat([_read("dist.male.first"), _read("dist.female.first")], ignore_index=True))


@lru_cache(maxsize=None)
def canonical_forenames() -> Table:
    """Forenames folded to a canonical name by the ``nicknames`` data (BILL -> WILLIAM), frequencies summed."""
    from nicknames import NickNamer

    namer = NickNamer()
    table = forenames()

    def fold(name: str) -> str:
        canon = sorted(c.upper() for c in namer.canonicals_of(name.lower()) if c.upper() in _known())
        return canon[0] if canon else name

    return _table(pd.DataFrame({"name": table.names.map(fold), "pct": table.freq}))


@lru_cache(maxsize=None)
def _known() -> frozenset[str]:
    return frozenset(forenames().names)


def soundex(name: str) -> str:
    return jellyfish.soundex(name)


def initial(name: str) -> str:
    return name[:1]
