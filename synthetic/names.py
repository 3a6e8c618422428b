"""Name pools: Faker en_GB lists plus the awkward cases real registers hold.

Pools are built once (no per-row Faker calls) and sampled with numpy. Weights are
Zipf-like so that a few names (Smith, Mohammed, ...) are very common, which is
what makes false matches likely in real data. Every name is cp1252-encodable
so that any feed encoding can carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from faker.providers.person.en_GB import Provider as _FakerPerson

from synthetic.nicknames import NICKNAMES

#: Very common surnames in London, most common first (they get the highest weights).
COMMON_SURNAMES: tuple[str, ...] = (
    "Smith", "Jones", "Williams", "Brown", "Taylor", "Patel", "Khan", "Ahmed", "Begum",
    "Davies", "Wilson", "Evans", "Thomas", "Johnson", "Ali", "Roberts", "Mohammed",
    "Singh", "Hussain", "Walker", "Wright", "Robinson", "Thompson", "White", "Hughes",
)
#: Surnames with apostrophes, prefixes or diacritics.
AWKWARD_SURNAMES: tuple[str, ...] = (
    "O'Brien", "O'Connor", "O'Neill", "O'Sullivan", "D'Souza", "McDonald", "MacLeod",
    "Müller", "Núñez", "Gonçalves", "Öztürk", "Çelik", "Lefèvre", "Peña", "Ó Briain",
    "van der Berg", "De Souza", "St John", "Fitzgerald", "Nwosu", "Okafor", "Adeyemi",
    "Nguyen", "Kowalski", "Nowak", "Rodríguez", "García",
)
#: Double-barrelled surnames written with a space (the rest get a hyphen).
DOUBLE_BARRELLED: tuple[str, ...] = (
    "Lloyd Webber", "Bonham Carter", "Vaughan Williams", "Heath Stubbs", "Spencer Churchill",
)
COMMON_MALE: tuple[str, ...] = ("Mohammed", "Muhammad", "Oliver", "James", "David", "John", "Daniel")
COMMON_FEMALE: tuple[str, ...] = ("Olivia", "Amelia", "Sarah", "Margaret", "Fatima", "Elizabeth", "Mary")
DIACRITIC_MALE: tuple[str, ...] = ("José", "Seán", "Zoltán", "Jérôme", "Eóin", "André", "René", "Björn")
DIACRITIC_FEMALE: tuple[str, ...] = ("Zoë", "Siobhán", "Chloë", "Renée", "Noémie", "Inès", "Mária", "Sinéad")
OTHER_MALE: tuple[str, ...] = ("Ahmed", "Ali", "Abdul", "Kwame", "Chidi", "Arjun", "Rajesh", "Tomasz", "Piotr", "Albert", "Geoffrey", "Leonard", "Frederick", "Henry", "Lawrence")
OTHER_FEMALE: tuple[str, ...] = ("Aisha", "Amina", "Priya", "Nkechi", "Agnieszka", "Dorothy", "Patricia", "Deborah", "Kimberley", "Abigail", "Eleanor", "Anne", "Katherine")


@dataclass(frozen=True)
class NamePool:
    names: np.ndarray   # object array of str
    p: np.ndarray       # sampling probabilities

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Indices into ``names``."""
        return rng.choice(len(self.names), size=n, p=self.p)


def _pool(common: tuple[str, ...], rest: list[str], common_weight: float) -> NamePool:
    names: list[str] = []
    for n in list(common) + rest:
        if n not in names:
            names.append(n)
    k = np.arange(len(names), dtype=float)
    w = 1.0 / (k + 8.0) ** 0.8        # Zipf-like: earlier names are more common
    w[: len(common)] *= common_weight
    return NamePool(np.array(names, dtype=object), w / w.sum())


@lru_cache(maxsize=1)
def pools() -> dict[str, NamePool]:
    """Pools ``male``, ``female``, ``surname`` (seed-independent, built once)."""
    male = list(_FakerPerson.first_names_male) + list(OTHER_MALE) + list(DIACRITIC_MALE)
    female = list(_FakerPerson.first_names_female) + list(OTHER_FEMALE) + list(DIACRITIC_FEMALE)
    surnames = list(AWKWARD_SURNAMES) + list(_FakerPerson.last_names)
    # awkward surnames come straight after the common ones, so they get fairly high weights
    return {
        "male": _pool(COMMON_MALE, male, 3.0),
        "female": _pool(COMMON_FEMALE, female, 3.0),
        "surname": _pool(COMMON_SURNAMES, surnames, 4.0),
    }


def nicknames_for() -> dict[str, list[str]]:
    """Canonical forename (upper) -> its nicknames (upper), for writing nicknames into records."""
    out: dict[str, list[str]] = {}
    for nick, canon in sorted(NICKNAMES.items()):
        out.setdefault(canon, []).append(nick)
    return out
