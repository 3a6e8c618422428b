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
def _package() -> dict[str, frozenset[str]]:
    """Upper-case name -> the full names the package lists it under (itself left out)."""
    from nicknames import NickNamer

    listed = {nick.upper(): {c.upper() for c in canonicals} for nick, canonicals in NickNamer().canonical_lookup.items()}
    return {nick: frozenset(names - {nick}) for nick, names in listed.items() if names - {nick}}


@lru_cache(maxsize=1)
def _listed_under() -> dict[str, frozenset[str]]:
    """The package's listing with ``EXTRA`` and ``PREFERRED`` added."""
    listed = dict(_package())
    for nick, full in {**EXTRA, **PREFERRED}.items():
        listed[nick] = listed.get(nick, frozenset()) | ({full} - {nick})
    return listed


@lru_cache(maxsize=1)
def nickname_table() -> dict[str, str]:
    """Upper-case name -> canonical full name (names that are not nicknames are absent)."""
    listed = _package()
    # how many names are listed under each name: the full name a nickname stands for is the hub
    # among its candidates. The package links names both ways and to rare long forms (MARGARET
    # under GRETCHEN, PEGGY under MARGUERITE): picking the longest form folded PEGGY to
    # MARGUERITE and MARGARET to GRETCHEN, so the pair never met.
    hub = Counter(c for names in listed.values() for c in names)
    out: dict[str, str] = {}
    for nick, names in listed.items():
        # most nicknames first; a tie keeps the name itself, then the longer, then alphabetical
        best = min(names | {nick}, key=lambda c: (-hub[c], c != nick, -len(c), c))
        if best != nick:
            out[nick] = best
    for nick, full in EXTRA.items():
        out.setdefault(nick, full)
    out.update(PREFERRED)
    return out


def nickname_neighbourhood(name: str) -> list[str]:
    """The name and every full name it is listed under: two forms of one name share one."""
    return [name, *sorted(_listed_under().get(name, ()))]


def __getattr__(name: str):  # NICKNAMES is built on first use, not at import
    if name == "NICKNAMES":
        return nickname_table()
    raise AttributeError(name)
