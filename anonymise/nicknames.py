"""Nickname folding for the ``forename_canon`` token (BILL -> WILLIAM).

The table comes from the hand-curated ``nicknames`` package (PyPI), not from our own
generator, so the matcher's knowledge is not the test data's. Each name folds to one
canonical form: among itself and the full names it is listed under, the one most names
are listed under (PEGGY, MEG -> MARGARET; DICK -> RICHARD), or itself. One step only: the
package's graph links many names to each other, and following chains would fold different
names together. ``EXTRA`` adds a few UK and European forms the package lacks and
``PREFERRED`` corrects a few it misleads; both are short on purpose and written from
general knowledge. One token cannot hold a form of several names (TONY: ANTHONY or
ANTONIA; SAM: SAMUEL or SAMANTHA): such a form meets only the full name it folds to.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

#: UK and European short forms missing from the package (nickname -> full name)
EXTRA: dict[str, str] = {
    "DEL": "DEREK", "TEL": "TERENCE", "DES": "DESMOND", "REG": "REGINALD", "VIC": "VICTOR",
    "SASHA": "ALEXANDER", "MISHA": "MIKHAIL", "KASIA": "KATARZYNA", "GOSIA": "MALGORZATA",
    "BASIA": "BARBARA", "TOMEK": "TOMASZ", "KUBA": "JAKUB", "FRANZI": "FRANZISKA", "SEPP": "JOSEF",
    "PACO": "FRANCISCO", "PEPE": "JOSE", "NACHO": "IGNACIO", "SIOBHAN": "SIOBHAN", "SHONA": "SHONA",
}


#: Where the package's graph leads the fold astray for a common English form (it lists BILL and
#: BILLY under ROBERT, which has more forms than WILLIAM): these win over the package.
PREFERRED: dict[str, str] = {"BILL": "WILLIAM", "BILLY": "WILLIAM"}


@lru_cache(maxsize=1)
def nickname_table() -> dict[str, str]:
    """Upper-case name -> canonical full name (names that are not nicknames are absent)."""
    from nicknames import NickNamer

    lookup = {nick.upper(): {c.upper() for c in canonicals}
              for nick, canonicals in NickNamer().canonical_lookup.items()}
    # how many names fold to each name in the package: the full name a nickname stands for is
    # the hub among its candidates. The package links names both ways and to rare long forms
    # (MARGARET is listed under GRETCHEN, PEGGY under MARGUERITE): picking the longest form
    # folded PEGGY to MARGUERITE and MARGARET to GRETCHEN, so the pair never met.
    hub = Counter(c for canonicals in lookup.values() for c in canonicals)
    out: dict[str, str] = {}
    for nick, canonicals in lookup.items():
        # most nicknames first; a tie keeps the name itself, then the longer, then alphabetical
        best = min({nick} | canonicals, key=lambda c: (-hub[c], c != nick, -len(c), c))
        if best != nick:
            out[nick] = best
    for nick, full in EXTRA.items():
        out.setdefault(nick, full)
    out.update(PREFERRED)
    return out


@lru_cache(maxsize=1)
def related_table() -> dict[str, tuple[str, ...]]:
    """Upper-case name -> the full names it is a nickname of (the package's list, ``EXTRA`` and
    ``PREFERRED``), most-listed first; names that are nobody's nickname are absent."""
    from nicknames import NickNamer

    related: dict[str, set[str]] = {nick.upper(): {c.upper() for c in canonicals}
                                    for nick, canonicals in NickNamer().canonical_lookup.items()}
    for nick, full in {**EXTRA, **PREFERRED}.items():
        related.setdefault(nick, set()).add(full)
    hub = Counter(c for names in related.values() for c in names)
    return {nick: tuple(sorted(names - {nick}, key=lambda c: (-hub[c], c))) for nick, names in related.items()
            if names - {nick}}


def nickname_neighbourhood(name: str) -> list[str]:
    """The name and every full name it is a nickname of: two forms of one name share one."""
    return [name, *related_table().get(name, ())]


def __getattr__(name: str):  # NICKNAMES is built on first use, not at import
    if name == "NICKNAMES":
        return nickname_table()
    raise AttributeError(name)
