"""The synthetic population: addresses, households and people (clear ground truth).

Everything is drawn with numpy from seed-independent pools, one vectorised step per
attribute; no per-person Python. Dates are ``datetime64[D]``; ``E`` is the extract date.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd
from faker.providers.person.en_GB import Provider as _FakerPerson

from synthetic.dates import NAT, days, uniform_days, years
from synthetic.names import DOUBLE_BARRELLED, pools
from synthetic.places import BOROUGH_ORDER, INWARD_LETTERS, POSTCODE_DISTRICTS, STREET_SUFFIXES

HOUSEHOLD_SIZES = np.array([1, 2, 3, 4, 5])
HOUSEHOLD_SIZE_P = np.array([0.36, 0.34, 0.15, 0.10, 0.05])
EMAIL_DOMAINS = np.array(["gmail.com", "hotmail.co.uk", "yahoo.co.uk", "outlook.com", "btinternet.com", "icloud.com"], dtype=object)
#: NINO prefixes: first letter not D F I Q U V, second not D F I O Q U V, and not BG GB KN NK NT TN ZZ.
NINO_PREFIXES = np.array(sorted(
    a + b for a in "ABCEGHJKLMNOPRSTWXYZ" for b in "ABCEGHJKLMNPRSTWXYZ"
    if a + b not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
), dtype=object)


@dataclass
class Population:
    addresses: pd.DataFrame   # address_id, council_idx, address_line_1, locality, town, postcode, uprn
    households: pd.DataFrame  # household_id, council_idx, address_id, move_in, n_adults, family, council_tenant
    people: pd.DataFrame      # person_id, household_id, member, sex, first_name, middle_names, forenames, surname, ...
    spare: dict[int, list[int]]  # council_idx -> unused address ids (former homes, second addresses)

    def take_spare(self, council_idx: np.ndarray) -> np.ndarray:
        """Unused addresses in the given councils (each handed out once)."""
        out = np.empty(len(council_idx), dtype=np.int64)
        for c in np.unique(council_idx):
            where = np.flatnonzero(council_idx == c)
            pool = self.spare[int(c)]
            if len(pool) < len(where):
                raise RuntimeError(f"ran out of spare addresses in council #{c}")
            out[where] = pool[: len(where)]
            del pool[: len(where)]
        return out


def digits_text(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal text of non-negative integers, built as bytes (no per-value Python)."""
    values = np.asarray(values, np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    codes = ((values[:, None] // powers) % 10 + 48).astype(np.uint8)
    return np.ascontiguousarray(codes).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def map_unique(values: np.ndarray, func) -> np.ndarray:
    """Apply a per-string function once per distinct value (names and addresses repeat a lot); None stays None."""
    codes, uniq = pd.factorize(np.asarray(values, dtype=object))
    mapped = np.array([func(u) for u in uniq] + [None], dtype=object)
    return mapped[codes]      # code -1 (missing) picks the trailing None


def _email_part(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "".join(ch for ch in folded if "a" <= ch <= "z")


def ascii_fold(values: np.ndarray) -> np.ndarray:
    """Strip diacritics."""
    return map_unique(values, lambda u: unicodedata.normalize("NFKD", u).encode("ascii", "ignore").decode())


def _addresses(rng: np.random.Generator, per_council: np.ndarray) -> pd.DataFrame:
    frames = []
    street_bases = np.array(list(_FakerPerson.last_names), dtype=object)
    suffixes = np.array(STREET_SUFFIXES, dtype=object)
    next_id = 0
    for c, n in enumerate(per_council):
        borough = BOROUGH_ORDER[c]
        districts = np.array(POSTCODE_DISTRICTS[borough], dtype=object)
        n_streets = max(6, int(np.ceil(n / 45)))
        combos = rng.choice(len(street_bases) * len(suffixes), size=n_streets, replace=False)
        streets = street_bases[combos // len(suffixes)] + " " + suffixes[combos % len(suffixes)]
        k = rng.permutation(n)
        street = k % n_streets
        number = k // n_streets + 1
        flat = np.where(rng.random(n) < 0.35, rng.integers(1, 13, n), 0)
        line1 = pd.Series(number.astype(str), dtype=object) + " " + streets[street]
        line1 = np.where(flat > 0, "Flat " + pd.Series(flat.astype(str), dtype=object) + ", " + line1, line1)
        letters = np.array(list(INWARD_LETTERS), dtype=object)
        bucket = number // 12
        postcode = (districts[street % len(districts)] + " " + pd.Series((1 + (street * 7 + c) % 9).astype(str), dtype=object)
                    + letters[(street * 13 + bucket) % 20] + letters[(street * 7 + bucket * 3 + c) % 20])
        ids = np.arange(next_id, next_id + n)
        next_id += n
        frames.append(pd.DataFrame({
            "address_id": ids, "council_idx": c, "address_line_1": line1,
            "locality": "City of London" if borough == "City of London" else borough,
            "town": "London", "postcode": postcode.to_numpy(),
            "uprn": (100_023_000_000 + ids * 7).astype(str),
        }))
    return pd.concat(frames, ignore_index=True)


def _ninos(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique valid National Insurance numbers."""
    space = len(NINO_PREFIXES) * 1_000_000 * 4
    codes = rng.integers(0, space, n)
    while True:
        _, first = np.unique(codes, return_index=True)
        dup = np.ones(n, bool)
        dup[first] = False
        if not dup.any():
            break
        codes[dup] = rng.integers(0, space, dup.sum())
    prefix = NINO_PREFIXES[codes // 4_000_000]
    digits = digits_text((codes // 4) % 1_000_000, 6)
    suffix = np.array(list("ABCD"), dtype=object)[codes % 4]
    return prefix + digits + suffix


def _surnames(rng: np.random.Generator, n: int) -> np.ndarray:
    pool = pools()["surname"]
    s = pool.names[pool.sample(rng, n)]
    r = rng.random(n)
    hyphen = r < 0.03
    s = np.where(hyphen, s + "-" + pool.names[pool.sample(rng, n)], s)
    double = (r >= 0.03) & (r < 0.036)
    s[double] = np.array(DOUBLE_BARRELLED, dtype=object)[rng.integers(0, len(DOUBLE_BARRELLED), double.sum())]
    return s


def _forenames(rng: np.random.Generator, sex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First name and middle names (None for about 60%)."""
    n = len(sex)
    male, female = pools()["male"], pools()["female"]
    first = np.where(sex == "M", male.names[male.sample(rng, n)], female.names[female.sample(rng, n)])
    middle = np.where(sex == "M", male.names[male.sample(rng, n)], female.names[female.sample(rng, n)])
    middle = np.where((rng.random(n) < 0.4) & (middle != first), middle, None)
    return first, middle


def build_population(rng: np.random.Generator, n_councils: int, n_people: int, extract_date: np.datetime64) -> Population:
    E = extract_date
    # -- households and their sizes
    n_hh_guess = int(n_people / 2.1) + 10
    sizes = rng.choice(HOUSEHOLD_SIZES, size=n_hh_guess, p=HOUSEHOLD_SIZE_P)
    while sizes.sum() < n_people:
        sizes = np.concatenate([sizes, rng.choice(HOUSEHOLD_SIZES, size=n_hh_guess // 4 + 10, p=HOUSEHOLD_SIZE_P)])
    cut = int(np.searchsorted(np.cumsum(sizes), n_people))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= sizes.sum() - n_people
    sizes = sizes[sizes > 0]
    n_hh = len(sizes)
    weight = 0.8 + 0.4 * rng.random(n_councils)
    hh_council = rng.choice(n_councils, size=n_hh, p=weight / weight.sum())
    hh_family = (sizes > 1) & (rng.random(n_hh) < 0.7)

    # -- addresses: one per household plus spares per council
    per_council = np.bincount(hh_council, minlength=n_councils)
    n_addr = per_council + (per_council // 6) + 40
    addresses = _addresses(rng, n_addr)
    starts = np.concatenate([[0], np.cumsum(n_addr)[:-1]])
    order = np.argsort(hh_council, kind="stable")
    position = np.empty(n_hh, np.int64)
    position[order] = np.arange(n_hh)
    rank = position - (np.cumsum(per_council) - per_council)[hh_council]   # rank within its council
    hh_address = starts[hh_council] + rank
    spare = {c: list(range(int(starts[c] + per_council[c]), int(starts[c] + n_addr[c]))) for c in range(n_councils)}

    # -- people
    hh_id = np.repeat(np.arange(n_hh), sizes)
    member = np.arange(n_people) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    size_of = sizes[hh_id]
    family = hh_family[hh_id]
    sex = np.where(rng.random(n_people) < 0.5, "M", "F").astype(object)
    # couples in families: lead and spouse of opposite sex
    spouse = family & (member == 1)
    sex[spouse] = np.where(sex[np.flatnonzero(spouse) - 1] == "M", "F", "M")

    band = rng.choice(4, size=n_hh, p=[0.30, 0.38, 0.22, 0.10])
    lead_age = np.select([band == 0, band == 1, band == 2], [rng.uniform(19, 35, n_hh), rng.uniform(35, 60, n_hh), rng.uniform(60, 80, n_hh)], rng.uniform(80, 98, n_hh))
    lead_age_p = lead_age[hh_id]
    age = np.where(member == 0, lead_age_p, 0.0)
    age = np.where(spouse, lead_age_p + rng.normal(0, 4, n_people), age)
    child = family & (member >= 2)
    age = np.where(child, lead_age_p - rng.uniform(22, 34, n_people), age)
    sharer = ~family & (member >= 1)
    age = np.where(sharer, rng.uniform(19, 70, n_people), age)
    age = np.maximum(age, 18.3 + rng.uniform(0, 3, n_people))
    dob = E - years(age)

    # twins: last two adult children of some bigger families
    twin_hh = hh_family & (sizes >= 4) & (rng.random(n_hh) < 0.15)
    last = np.cumsum(sizes) - 1
    twin_b = last[twin_hh]
    twin_a = twin_b - 1
    dob[twin_b] = dob[twin_a]
    twin_of = np.full(n_people, -1, np.int64)
    twin_of[twin_a], twin_of[twin_b] = twin_b, twin_a

    first, middle = _forenames(rng, sex)
    # twins get different first names
    same = first[twin_b] == first[twin_a]
    if same.any():
        alt, _ = _forenames(rng, sex[twin_b])
        first[twin_b[same]] = np.where(alt[same] == first[twin_a[same]], first[twin_b[same]] + "ie", alt[same])

    hh_surname = _surnames(rng, n_hh)
    surname = np.where(family, hh_surname[hh_id], _surnames(rng, n_people))
    surname = np.where(member == 0, hh_surname[hh_id], surname)
    previous = np.full(n_people, None, dtype=object)
    married = spouse & (rng.random(n_people) < 0.6)
    previous[married] = _surnames(rng, married.sum())
    divorced = (member == 0) & (size_of == 1) & (rng.random(n_people) < 0.03)
    previous[divorced] = _surnames(rng, divorced.sum())
    previous = np.where(previous == surname, None, previous)

    forenames = np.where(pd.isna(middle), first, first + " " + middle.astype(str))

    has_email = rng.random(n_people) < 0.55
    num = np.where(rng.random(n_people) < 0.5, digits_text(rng.integers(1, 99, n_people), 2), "")
    # e-mail local part: folded, lower-case letters only (per distinct name)
    local = (map_unique(first, lambda u: _email_part(u)) + "." + map_unique(surname, lambda u: _email_part(u))) + num
    email = np.where(has_email, local + "@" + EMAIL_DOMAINS[rng.integers(0, len(EMAIL_DOMAINS), n_people)], None)
    phone = np.where(rng.random(n_people) < 0.8, "07" + digits_text(rng.integers(100_000_000, 999_999_999, n_people), 9), None)

    # -- move-in: every member an adult by then
    adult_from = dob + years(18)
    latest_adult = np.maximum.reduceat(adult_from, np.cumsum(sizes) - sizes)
    move_in = uniform_days(rng, np.maximum(E - years(25), latest_adult), np.full(n_hh, E - days(30)))
    hh_tenant = rng.random(n_hh) < np.where(band[:] >= 2, 0.32, 0.22)

    # -- deaths in the last three years
    p_death = np.select([age < 50, age < 70, age < 85], [0.002, 0.01, 0.04], 0.10)
    died = rng.random(n_people) < p_death
    lo = np.maximum(move_in[hh_id] + days(60), E - years(3))
    dod = uniform_days(rng, lo, np.full(n_people, E - days(7)))
    dod = np.where(died & (lo <= E - days(7)), dod, NAT)

    households = pd.DataFrame({
        "household_id": np.arange(n_hh), "council_idx": hh_council, "address_id": hh_address,
        "move_in": move_in, "n_adults": sizes, "family": hh_family, "council_tenant": hh_tenant,
    })
    people = pd.DataFrame({
        "person_id": np.arange(n_people), "household_id": hh_id, "member": member, "sex": sex,
        "first_name": first, "middle_names": middle, "forenames": forenames, "surname": surname,
        "previous_surname": previous, "dob": dob, "nino": _ninos(rng, n_people),
        "email": email, "phone": phone,
        "bank_sort_code": digits_text(rng.integers(0, 1_000_000, n_people), 6),
        "bank_account": digits_text(rng.integers(0, 100_000_000, n_people), 8),
        "council_idx": hh_council[hh_id], "address_id": hh_address[hh_id], "move_in": move_in[hh_id],
        "twin_of": twin_of, "date_of_death": dod, "doppelganger_of": -1,
    })
    return Population(addresses, households, people, spare)
