"""Nickname folding for the ``forename_canon`` token (BILL -> WILLIAM).

The table comes from the hand-curated ``nicknames`` package (PyPI), not from our own
generator, so the matcher's knowledge is not the test data's. Each name folds to one
canonical form: a name to the longest of the full names it is a nickname of (BILL ->
WILLIAM), or to itself. One step only: the package's graph links many names to each
other (BILL is listed under ROBERT too), and following chains would fold different
names together. ``EXTRA`` adds a few UK and European forms the package
lacks; it is short on purpose and written from general knowledge.
"""

from __future__ import annotations

from functools import lru_cache

#: UK and European short forms missing from the package (nickname -> full name)
EXTRA: dict[str, str] = {
    "DEL": "DEREK", "TEL": "TERENCE", "DES": "DESMOND", "REG": "REGINALD", "VIC": "VICTOR",
    "SASHA": "ALEXANDER", "MISHA": "MIKHAIL", "KASIA": "KATARZYNA", "GOSIA": "MALGORZATA",
    "BASIA": "BARBARA", "TOMEK": "TOMASZ", "KUBA": "JAKUB", "FRANZI": "FRANZISKA", "SEPP": "JOSEF",
    "PACO": "FRANCISCO", "PEPE": "JOSE", "NACHO": "IGNACIO", "SIOBHAN": "SIOBHAN", "SHONA": "SHONA",
}


@lru_cache(maxsize=1)
def nickname_table() -> dict[str, str]:
    """Upper-case name -> canonical full name (names that are not nicknames are absent)."""
    from nicknames import NickNamer

    namer = NickNamer()
    out: dict[str, str] = {}
    for nick, canonicals in namer.canonical_lookup.items():
        # the longest form (then alphabetical) stands for the name: BILL -> WILLIAM
        best = sorted({nick.upper()} | {c.upper() for c in canonicals}, key=lambda c: (-len(c), c))[0]
        if best != nick.upper():
            out[nick.upper()] = best
    for nick, full in EXTRA.items():
        out.setdefault(nick, full)
    return out


def __getattr__(name: str):  # NICKNAMES is built on first use, not at import
    if name == "NICKNAMES":
        return nickname_table()
    raise AttributeError(name)
