"""An independent noise model for labelled person-linkage test sets.

Why: figures measured on data made by the matcher's own generator are closed-world: the
generator's typos, nicknames and date errors are exactly the ones the matcher was built
to forgive. This module was written from general knowledge of how administrative person
records go wrong, without reference to ``synthetic/`` or ``matching/``, so a matcher
scored on it meets errors it was not designed around:

* typos at any position, first letter included (insert, delete, substitute, transpose);
* OCR confusions (0/O, 1/I/L, 5/S, 8/B, rn/m, cl/d, vv/w);
* phonetic respellings (PH/F, CK/K, EI/IE, Y/I, C/K, SZ/SH, doubled or single letters);
* transliteration of diacritics (MÜLLER -> MUELLER or MULLER, ŁUCZAK -> LUCZAK);
* nicknames (the ``nicknames`` package plus a small table of UK and non-English forms),
  initial-only forenames, dropped middle names, forename/surname swaps;
* double-barrelled surnames partly dropped, married-name changes with no previous surname;
* date-of-birth errors (day/month transposed, one digit wrong, year off by one,
  01/01 of the year, missing);
* postcode typos, address abbreviations, and moves (new address and postcode);
* hard negatives: twins (same surname, dob and address, different forename), namesakes
  (same name, different dob and address), family members at one address;
* placeholder values (dob 1900-01-01, forename 'UNKNOWN') on a few records.

Everything is driven by one ``numpy.random.Generator``: the same seed gives the same sets.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass, fields as dc_fields, replace
from functools import lru_cache
from typing import Sequence

import nicknames
import numpy as np
import pandas as pd

PLACEHOLDER_DOB = pd.Timestamp("1900-01-01")
PLACEHOLDER_FORENAME = "UNKNOWN"

#: Faker's hi_IN names are in Devanagari; UK council extracts carry Latin transliterations,
#: which Faker provides as en_IN.
_FAKER_LOCALE = {"hi_IN": "en_IN"}

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# QWERTY neighbours: most keyed typos hit an adjacent key.
_QWERTY_ROWS = ("QWERTYUIOP", "ASDFGHJKL", "ZXCVBNM")


def _keyboard_neighbours() -> dict[str, str]:
    pos = {c: (r, i) for r, row in enumerate(_QWERTY_ROWS) for i, c in enumerate(row)}
    out: dict[str, str] = {}
    for c, (r, i) in pos.items():
        near = [d for d, (r2, i2) in pos.items() if d != c and abs(r2 - r) <= 1 and abs(i2 - i) <= 1]
        out[c] = "".join(near)
    return out


_NEIGHBOURS = _keyboard_neighbours()

#: Character confusions made by OCR and by keying from poor scans.
OCR_CONFUSIONS: tuple[tuple[str, str], ...] = (
    ("O", "0"), ("0", "O"), ("I", "1"), ("1", "I"), ("L", "1"), ("1", "L"), ("I", "L"),
    ("L", "I"), ("S", "5"), ("5", "S"), ("B", "8"), ("8", "B"), ("RN", "M"), ("M", "RN"),
    ("CL", "D"), ("D", "CL"), ("VV", "W"), ("W", "VV"), ("G", "6"), ("Z", "2"),
)

#: Spellings that sound alike; each (a, b) rewrites one occurrence of a as b.
RESPELLINGS: tuple[tuple[str, str], ...] = (
    ("PH", "F"), ("F", "PH"), ("CK", "K"), ("CK", "C"), ("K", "CK"), ("EI", "IE"), ("IE", "EI"),
    ("Y", "I"), ("I", "Y"), ("C", "K"), ("K", "C"), ("TH", "T"), ("SZ", "SH"), ("CZ", "CH"),
    ("SCH", "SH"), ("W", "V"), ("V", "W"), ("OU", "U"), ("EE", "EA"), ("EA", "EE"),
    ("AI", "AY"), ("AY", "AI"), ("J", "Y"), ("KS", "X"), ("X", "KS"), ("Z", "S"), ("S", "Z"),
    ("EY", "Y"), ("IE", "Y"),
)

_TRANSLIT_GERMAN = {"Ä": "AE", "Ö": "OE", "Ü": "UE", "ß": "SS"}
_TRANSLIT_PLAIN = {"Ł": "L", "ß": "SS", "Ø": "O", "Đ": "D", "Æ": "AE", "Œ": "OE"}

#: Short forms the ``nicknames`` package (English, US-centred) lacks: UK usage and
#: common German, Polish, French and Indian forms, from general knowledge.
EXTRA_NICKNAMES: dict[str, tuple[str, ...]] = {
    # UK
    "ALEXANDER": ("SANDY", "ALEC", "XANDER"), "ALISTAIR": ("ALI",), "ANGUS": ("GUS",),
    "CHARLOTTE": ("LOTTIE", "CHARLIE"), "ELEANOR": ("NELL", "ELLIE"), "ELIZABETH": ("LIBBY", "BETH", "LIZZIE"),
    "HAMISH": ("HAM",), "MARGARET": ("MAGGIE", "MEG", "PEGGY"), "SARAH": ("SAL",), "GARETH": ("GAZ",),
    "GARY": ("GAZ",), "SHARON": ("SHAZ",), "DEREK": ("DEL",), "TERENCE": ("TEL",), "JONATHAN": ("JON", "JONNY"),
    "CHRISTOPHER": ("KIT", "CHRIS"), "KATHERINE": ("KATE", "KAT", "KATIE"), "REBECCA": ("BECKY", "BEX"),
    "WILLIAM": ("WILL", "BILL", "WILF"), "HENRY": ("HARRY", "HAL"), "DAVID": ("DAI", "DAVE"),
    # German
    "JOHANNES": ("HANS", "JOHANN"), "JOHANN": ("HANS",), "WOLFGANG": ("WOLF",), "FRIEDRICH": ("FRITZ",),
    "KATHARINA": ("KATJA", "KATHI"), "MARGARETE": ("GRETE", "GRETA"), "FRANZISKA": ("FRANZI",),
    "MATTHIAS": ("MATZE",), "ANDREAS": ("ANDI",), "STEFANIE": ("STEFFI",), "ALEXANDRA": ("ALEX", "SANDRA"),
    "GOTTFRIED": ("FRIED",), "HEINRICH": ("HEINZ", "HEINI"), "JOSEF": ("SEPP",), "ELISABETH": ("LIESL", "ELLI", "ELSE"),
    "BARBARA": ("BABSI",), "CHRISTINE": ("TINA",), "KONSTANTIN": ("KONNI",), "SEBASTIAN": ("BASTI",),
    "GABRIELE": ("GABI",), "ULRICH": ("ULI",), "ULRIKE": ("ULI",), "WALTRAUD": ("TRAUDL",),
    # Polish
    "ALEKSANDER": ("OLEK",), "ALEKSANDRA": ("OLA",), "KRZYSZTOF": ("KRZYSIEK",), "MAŁGORZATA": ("GOSIA",),
    "KATARZYNA": ("KASIA",), "MAGDALENA": ("MAGDA",), "JOANNA": ("ASIA",), "WOJCIECH": ("WOJTEK",),
    "TOMASZ": ("TOMEK",), "JAKUB": ("KUBA",), "STANISŁAW": ("STASZEK", "STAŚ"), "ELŻBIETA": ("ELA",),
    "AGNIESZKA": ("AGA",), "BARTŁOMIEJ": ("BARTEK",), "MACIEJ": ("MACIEK",), "ZBIGNIEW": ("ZBYSZEK",),
    # French
    "DOMINIQUE": ("DOM",), "FRÉDÉRIC": ("FRED",), "CATHERINE": ("CATHY",), "NATHALIE": ("NATH",),
    "GUILLAUME": ("GUI",), "ALEXANDRE": ("ALEX",), "CHRISTOPHE": ("CHRIS",), "JEAN-BAPTISTE": ("JB",),
    "ÉLISABETH": ("ÉLISE", "BABETH"), "STÉPHANIE": ("STEPH",), "VALENTIN": ("VAL",),
    # Indian
    "MOHAMMED": ("MO",), "MUHAMMAD": ("MO",), "RAJENDRA": ("RAJ",), "RAJESH": ("RAJ",), "VENKATESH": ("VENKAT",),
    "SURESH": ("SURI",), "PRIYANKA": ("PRIYA",), "LAKSHMI": ("LAKSHU",), "ABHISHEK": ("ABHI",),
    "SUBRAMANIAN": ("SUBBU", "MANI"), "KRISHNA": ("KRISH",), "ANANYA": ("ANU",),
}

_ADDRESS_ABBREVIATIONS = (
    ("ROAD", "RD"), ("STREET", "ST"), ("AVENUE", "AVE"), ("LANE", "LN"), ("DRIVE", "DR"),
    ("COURT", "CT"), ("PLACE", "PL"), ("CRESCENT", "CRES"), ("GARDENS", "GDNS"), ("FLAT ", "APARTMENT "),
)


@dataclass(frozen=True)
class NoiseRates:
    """How often each error strikes one duplicate record (each independently).

    Defaults are judgement values for keyed administrative data (benefit claims,
    council tax, electoral registers): most duplicates carry at least one error, a few
    carry several, and about one in five has moved. They were not tuned on any matcher.
    The hard-negative and placeholder rates are fractions of all people or records.
    """

    forename_typo: float = 0.15  #: one keyed edit anywhere in the forename
    surname_typo: float = 0.12  #: one keyed edit anywhere in the surname
    second_typo: float = 0.03  #: a second edit in a name that already has one
    ocr: float = 0.03  #: an OCR confusion in a name
    respelling: float = 0.06  #: a phonetic respelling of a name
    transliteration: float = 0.5  #: diacritics written out, for names that have them
    nickname: float = 0.08  #: forename given as a nickname (or a nickname expanded)
    initial_only: float = 0.03  #: forename reduced to its initial
    middle_name_dropped: float = 0.5  #: second forename omitted, for people who have one
    name_swap: float = 0.02  #: forename and surname swapped
    double_barrel_partial: float = 0.4  #: one part of a double-barrelled surname dropped
    married_name: float = 0.05  #: women: surname replaced, no previous surname recorded
    dob_day_month_swap: float = 0.02  #: day and month transposed (when both <= 12)
    dob_digit: float = 0.03  #: one digit of YYYYMMDD mistyped (result still a date)
    dob_year_off: float = 0.02  #: birth year off by one
    dob_jan_first: float = 0.01  #: only the year known, recorded as 01/01
    dob_missing: float = 0.02  #: no date of birth
    moved: float = 0.18  #: a different address and postcode
    postcode_typo: float = 0.04  #: one character of the postcode mistyped or space lost
    address_variant: float = 0.2  #: street-type abbreviation or flat wording changed
    address_typo: float = 0.05  #: one keyed edit in the address
    nino_typo: float = 0.01  #: one digit of the NINO mistyped
    twins: float = 0.01  #: people who get a twin (hard negative)
    namesakes: float = 0.015  #: people who get a namesake (hard negative)
    family: float = 0.03  #: people who get a relative at their address (hard negative)
    placeholder_dob: float = 0.005  #: records whose dob is the placeholder 1900-01-01
    placeholder_forename: float = 0.003  #: records whose forename is 'UNKNOWN'

    def scaled(self, factor: float) -> "NoiseRates":
        """The same profile with every per-duplicate error rate times ``factor``."""
        keep = {"twins", "namesakes", "family", "placeholder_dob", "placeholder_forename",
                "transliteration", "middle_name_dropped", "double_barrel_partial"}
        return NoiseRates(**{f.name: getattr(self, f.name) * (1 if f.name in keep else factor)
                             for f in dc_fields(self)})

    def with_hard_negatives(self, factor: float) -> "NoiseRates":
        """The same profile with the twins, namesakes and relatives rates times ``factor`` (0: none)."""
        return replace(self, twins=self.twins * factor, namesakes=self.namesakes * factor,
                       family=self.family * factor)


@dataclass
class LabelledSet:
    """A labelled linkage task: ``right is None`` means deduplicate ``left``.

    ``truth`` holds (left_id, right_id) for a link, sorted (id_a, id_b) for a dedupe;
    ``fields`` maps each canonical column to the comparison kind a matcher should use
    (see ``evaluation.splink_baseline``).
    """

    left: pd.DataFrame
    right: pd.DataFrame | None
    truth: set[tuple[str, str]]
    fields: dict[str, str]


# ---------------------------------------------------------------------------------------
# single-string perturbations (each returns the string unchanged when it cannot apply)
# ---------------------------------------------------------------------------------------

def typo(s: str, rng: np.random.Generator, kind: str | None = None) -> str:
    """One keyed edit (insert, delete, substitute or transpose) at a uniformly chosen
    position, the first letter included; the result is at Damerau-Levenshtein distance 1."""
    if not s:
        return s
    kinds = ["insert", "substitute"]
    if len(s) >= 2:
        kinds.append("delete")
        if any(a != b for a, b in zip(s, s[1:])):
            kinds.append("transpose")
    k = kind if kind in kinds else str(rng.choice(kinds))
    if k == "insert":
        pos = int(rng.integers(0, len(s) + 1))
        anchor = s[pos - 1] if pos > 0 else s[0]
        return s[:pos] + _typed_char(anchor, rng) + s[pos:]
    if k == "delete":
        pos = int(rng.integers(0, len(s)))
        return s[:pos] + s[pos + 1:]
    if k == "transpose":
        spots = [i for i in range(len(s) - 1) if s[i] != s[i + 1]]
        i = spots[int(rng.integers(0, len(spots)))]
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    pos = int(rng.integers(0, len(s)))
    return s[:pos] + _typed_char(s[pos], rng, avoid=s[pos]) + s[pos + 1:]


def _typed_char(anchor: str, rng: np.random.Generator, avoid: str | None = None) -> str:
    """A key near ``anchor`` (70%) or any letter, never ``avoid``."""
    near = _NEIGHBOURS.get(anchor.upper(), "")
    pool = near if near and rng.random() < 0.7 else _LETTERS
    pool = "".join(c for c in pool if c != avoid) or "".join(c for c in _LETTERS if c != avoid)
    return pool[int(rng.integers(0, len(pool)))]


def _rewrite_one(s: str, rules: Sequence[tuple[str, str]], rng: np.random.Generator) -> str:
    """Rewrite one occurrence, chosen uniformly among all matches of all rules."""
    spots = [(i, a, b) for a, b in rules for i in _find_all(s, a)]
    if not spots:
        return s
    i, a, b = spots[int(rng.integers(0, len(spots)))]
    return s[:i] + b + s[i + len(a):]


def _find_all(s: str, sub: str) -> list[int]:
    out, i = [], s.find(sub)
    while i >= 0:
        out.append(i)
        i = s.find(sub, i + 1)
    return out


def ocr_error(s: str, rng: np.random.Generator) -> str:
    """One OCR confusion (e.g. O->0, RN->M, CL->D); unchanged if none applies."""
    return _rewrite_one(s, OCR_CONFUSIONS, rng)


def respell(s: str, rng: np.random.Generator) -> str:
    """One phonetic respelling (PH/F, CK/K, EI/IE, Y/I, ...) or a letter doubled or
    undoubled; unchanged if none applies."""
    rules = list(RESPELLINGS)
    doubles = [(c + c, c) for c in set(s) if c.isalpha() and c + c in s]
    singles = [(c, c + c) for c in "LNMRSTPF" if c in s and c + c not in s]
    return _rewrite_one(s, rules + doubles + singles, rng)


def transliterate(s: str, rng: np.random.Generator) -> str:
    """Write out diacritics as a keyboard without them would: German umlauts as AE/OE/UE
    or the bare vowel, other marks dropped (Ł -> L)."""
    if s.isascii():
        return s
    if rng.random() < 0.5:
        for k, v in _TRANSLIT_GERMAN.items():
            s = s.replace(k, v)
    for k, v in _TRANSLIT_PLAIN.items():
        s = s.replace(k, v)
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def _nickname_table() -> dict[str, tuple[str, ...]]:
    """Every name -> its nicknames and (for nicknames) the full names, both directions."""
    pairs: set[tuple[str, str]] = set()
    for t in nicknames.name_triplets():
        if t.relationship == "has_nickname":
            pairs.add((t.name1.upper(), t.name2.upper()))
    for full, shorts in EXTRA_NICKNAMES.items():
        pairs.update((full, n) for n in shorts)
    table: dict[str, set[str]] = {}
    for full, short in pairs:
        table.setdefault(full, set()).add(short)
        table.setdefault(short, set()).add(full)
    return {k: tuple(sorted(v)) for k, v in table.items()}


def nickname(forename: str, rng: np.random.Generator) -> str:
    """The first forename replaced by a nickname or full form; unchanged if none known."""
    parts = forename.split(" ")
    options = _nickname_table().get(parts[0], ())
    if not options:
        return forename
    parts[0] = options[int(rng.integers(0, len(options)))]
    return " ".join(parts)


def initial_only(forename: str) -> str:
    """Only the initial of the first forename, as on many forms."""
    return forename[:1]


def drop_middle_name(forename: str) -> str:
    return forename.split(" ")[0]


def partial_double_barrel(surname: str, rng: np.random.Generator) -> str:
    """SMITH-JONES -> SMITH or JONES (or 'SMITH JONES'); unchanged if single."""
    parts = [p for p in surname.replace("-", " ").split(" ") if p]
    if len(parts) < 2:
        return surname
    r = rng.random()
    if r < 0.15:
        return " ".join(parts)
    return parts[0] if r < 0.6 else parts[-1]


def dob_day_month_swap(dob: pd.Timestamp) -> pd.Timestamp:
    """Day and month transposed (US-style entry); unchanged unless both are <= 12 and differ."""
    if pd.isna(dob) or dob.day > 12 or dob.day == dob.month:
        return dob
    return pd.Timestamp(year=dob.year, month=dob.day, day=dob.month)


def dob_digit_error(dob: pd.Timestamp, rng: np.random.Generator) -> pd.Timestamp:
    """One digit of YYYYMMDD mistyped, keeping a valid, different date."""
    if pd.isna(dob):
        return dob
    s = dob.strftime("%Y%m%d")
    for _ in range(40):
        pos = int(rng.integers(2, 8))  # a wrong century is a different error
        d = str(int(rng.integers(0, 10)))
        if d == s[pos]:
            continue
        t = s[:pos] + d + s[pos + 1:]
        try:
            out = pd.Timestamp(f"{t[:4]}-{t[4:6]}-{t[6:]}")
        except ValueError:
            continue
        if out.year <= 2025:
            return out
    return dob


def dob_year_off(dob: pd.Timestamp, rng: np.random.Generator) -> pd.Timestamp:
    if pd.isna(dob):
        return dob
    year = dob.year + (1 if rng.random() < 0.5 else -1)
    day = min(dob.day, 28) if (dob.month, dob.day) == (2, 29) else dob.day
    return pd.Timestamp(year=year, month=dob.month, day=day)


def dob_jan_first(dob: pd.Timestamp) -> pd.Timestamp:
    return dob if pd.isna(dob) else pd.Timestamp(year=dob.year, month=1, day=1)


def postcode_typo(postcode: str, rng: np.random.Generator) -> str:
    """A character replaced by one of the same class (letter or digit), or the space lost."""
    if not postcode:
        return postcode
    if " " in postcode and rng.random() < 0.25:
        return postcode.replace(" ", "")
    spots = [i for i, c in enumerate(postcode) if c.isalnum()]
    i = spots[int(rng.integers(0, len(spots)))]
    c = postcode[i]
    pool = "0123456789" if c.isdigit() else _LETTERS
    pool = pool.replace(c, "")
    return postcode[:i] + pool[int(rng.integers(0, len(pool)))] + postcode[i + 1:]


def address_variant(address: str, rng: np.random.Generator) -> str:
    """A street type abbreviated or expanded, or a flat written differently."""
    rules = list(_ADDRESS_ABBREVIATIONS) + [(b, a) for a, b in _ADDRESS_ABBREVIATIONS]
    out = _rewrite_one(address, rules, rng)
    return out if out != address else address.replace(",", "")


def nino_typo(nino: str, rng: np.random.Generator) -> str:
    spots = [i for i, c in enumerate(nino) if c.isdigit()]
    if not spots:
        return nino
    i = spots[int(rng.integers(0, len(spots)))]
    pool = "0123456789".replace(nino[i], "")
    return nino[:i] + pool[int(rng.integers(0, len(pool)))] + nino[i + 1:]


# ---------------------------------------------------------------------------------------
# clean people
# ---------------------------------------------------------------------------------------

_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_BAD_PREFIX = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}


def random_ninos(n: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct National Insurance numbers of valid format (two prefix letters without
    D, F, I, Q, U, V, second not O, not BG/GB/NK/KN/TN/NT/ZZ; six digits; suffix A-D)."""
    prefixes = np.array([a + b for a in _NINO_FIRST for b in _NINO_SECOND if a + b not in _NINO_BAD_PREFIX])
    out: dict[str, None] = {}
    while len(out) < n:
        m = (n - len(out)) * 2
        p = rng.choice(prefixes, m)
        digits = rng.integers(0, 1_000_000, m)
        suffix = rng.choice(np.array(list("ABCD")), m)
        out.update(dict.fromkeys(f"{a}{d:06d}{s}" for a, d, s in zip(p, digits, suffix)))
    return np.array(list(out)[:n], dtype=object)


def _zipf_weights(k: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** s
    return w / w.sum()


def _faker(locale: str, seed: int):
    from faker import Faker

    fake = Faker(_FAKER_LOCALE.get(locale, locale))
    fake.seed_instance(seed)
    return fake


def _pool(draw, k: int) -> list[str]:
    seen: dict[str, None] = {}
    for _ in range(k):
        seen[draw().upper()] = None
    return list(seen)


@dataclass
class NamePools:
    """Forename and surname pools per locale, with skewed (Zipf) frequencies."""

    male: list[str]
    female: list[str]
    surnames: list[str]


def _name_pools(locale: str, n: int, seed: int) -> NamePools:
    fake = _faker(locale, seed)
    k_fore = max(60, n // 15)
    k_sur = max(80, n // 4)
    return NamePools(male=_pool(fake.first_name_male, k_fore),
                     female=_pool(fake.first_name_female, k_fore),
                     surnames=_pool(fake.last_name, k_sur))


def _uk_addresses(n: int, seed: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    fake = _faker("en_GB", seed)
    addr = np.empty(n, dtype=object)
    pc = np.empty(n, dtype=object)
    flats = rng.random(n) < 0.2
    flat_no = rng.integers(1, 40, n)
    for i in range(n):
        street = f"{fake.building_number()} {fake.street_name()}".upper()
        town = fake.city().upper()
        addr[i] = (f"FLAT {flat_no[i]}, " if flats[i] else "") + f"{street}, {town}"
        pc[i] = fake.postcode().upper()
    return addr, pc


def _skewed_dobs(n: int, rng: np.random.Generator) -> np.ndarray:
    """Dates of birth drawn from a pool of n/3 dates with Zipf weights, so many people
    share a birth date (as in a cohort-heavy caseload), ages 18 to 100."""
    k = max(30, n // 3)
    years = np.clip(rng.normal(1965, 18, k).round(), 1925, 2006).astype(int)
    start = pd.to_datetime(pd.Series(years.astype(str)) + "-01-01")
    days = rng.integers(0, 365, k)
    pool = (start + pd.to_timedelta(days, unit="D")).to_numpy()
    return pool[rng.choice(k, n, p=_zipf_weights(k, 0.4))]


def make_clean_people(n: int, seed: int, locale: str | Sequence[str] = "en_GB") -> pd.DataFrame:
    """``n`` distinct people with skewed forename, surname and birth-date frequencies.

    Columns: person_id, forenames (20% with a middle name), surname (3% double-barrelled),
    sex, dob (datetime64), address and postcode (UK style whatever the name locale).
    A list of locales splits the people evenly between them.
    """
    rng = np.random.default_rng(seed)
    locales = [locale] if isinstance(locale, str) else list(locale)
    counts = np.full(len(locales), n // len(locales))
    counts[: n - counts.sum()] += 1
    parts = []
    for j, (loc, m) in enumerate(zip(locales, counts)):
        if m == 0:
            continue
        pools = _name_pools(loc, int(m), seed * 7919 + j)
        sex = np.where(rng.random(m) < 0.5, "F", "M")
        fm = np.array(pools.female, dtype=object)[rng.choice(len(pools.female), m, p=_zipf_weights(len(pools.female), 0.7))]
        mm = np.array(pools.male, dtype=object)[rng.choice(len(pools.male), m, p=_zipf_weights(len(pools.male), 0.7))]
        fore = np.where(sex == "F", fm, mm)
        middle_f = np.array(pools.female, dtype=object)[rng.integers(0, len(pools.female), m)]
        middle_m = np.array(pools.male, dtype=object)[rng.integers(0, len(pools.male), m)]
        has_mid = rng.random(m) < 0.2
        middle = np.where(sex == "F", middle_f, middle_m)
        fore = np.where(has_mid & (middle != fore), fore + " " + middle, fore)
        sur_pool = np.array(pools.surnames, dtype=object)
        w = _zipf_weights(len(sur_pool), 0.6)
        sur = sur_pool[rng.choice(len(sur_pool), m, p=w)]
        second = sur_pool[rng.choice(len(sur_pool), m, p=w)]
        barrel = (rng.random(m) < 0.03) & (second != sur)
        sur = np.where(barrel, sur + "-" + second, sur)
        parts.append(pd.DataFrame({"forenames": fore, "surname": sur, "sex": sex, "locale": loc}))
    people = pd.concat(parts, ignore_index=True)
    people["dob"] = _skewed_dobs(n, rng)
    people["address"], people["postcode"] = _uk_addresses(n, seed, rng)
    people.insert(0, "person_id", np.arange(n))
    return people


def _pools_from(people: pd.DataFrame) -> NamePools:
    males = people.loc[people["sex"] == "M", "forenames"].str.split(" ").str[0].unique().tolist()
    females = people.loc[people["sex"] == "F", "forenames"].str.split(" ").str[0].unique().tolist()
    return NamePools(male=males, female=females, surnames=people["surname"].unique().tolist())


def add_hard_negatives(people: pd.DataFrame, rng: np.random.Generator, rates: NoiseRates = NoiseRates()) -> pd.DataFrame:
    """Append distinct people who look like existing ones: twins (same surname, dob and
    address, different forename), namesakes (same forenames and surname, different dob
    and address) and relatives at the same address (same surname, another generation).
    ``kind`` says which ('person' for the originals); ``like_person`` names the original."""
    pools = _pools_from(people)
    n = len(people)
    next_id = int(people["person_id"].max()) + 1
    new: list[pd.DataFrame] = []

    def pick(rate: float) -> pd.DataFrame:
        idx = rng.choice(n, int(round(n * rate)), replace=False)
        picked = people.iloc[idx].copy()
        picked["like_person"] = picked["person_id"].to_numpy()
        return picked

    def other_forename(row_sex: np.ndarray, avoid: pd.Series) -> np.ndarray:
        out = []
        for sex, old in zip(row_sex, avoid):
            pool = pools.female if sex == "F" else pools.male
            for _ in range(20):
                cand = pool[int(rng.integers(0, len(pool)))]
                if cand != old.split(" ")[0]:
                    break
            out.append(cand)
        return np.array(out, dtype=object)

    twins = pick(rates.twins)
    twins["sex"] = np.where(rng.random(len(twins)) < 0.5, twins["sex"], np.where(twins["sex"] == "F", "M", "F"))
    twins["forenames"] = other_forename(twins["sex"].to_numpy(), twins["forenames"])
    twins["kind"] = "twin"
    new.append(twins)

    names = pick(rates.namesakes)
    donors = people.iloc[rng.choice(n, len(names))]
    names["dob"] = donors["dob"].to_numpy()
    names["address"] = donors["address"].to_numpy()
    names["postcode"] = donors["postcode"].to_numpy()
    names = names[names["dob"].to_numpy() != people.loc[names.index, "dob"].to_numpy()]
    names["kind"] = "namesake"
    new.append(names)

    fam = pick(rates.family)
    fam["sex"] = np.where(rng.random(len(fam)) < 0.5, "F", "M")
    fam["forenames"] = other_forename(fam["sex"].to_numpy(), fam["forenames"])
    gap = rng.choice([-30, -27, -25, 25, 28, 31, -2, 3], len(fam)) * 365 + rng.integers(-200, 200, len(fam))
    fam["dob"] = fam["dob"] + pd.to_timedelta(gap, unit="D")
    fam = fam[(fam["dob"] > pd.Timestamp("1920-01-01")) & (fam["dob"] < pd.Timestamp("2008-01-01"))]
    fam["kind"] = "family"
    new.append(fam)

    extra = pd.concat(new, ignore_index=True)
    extra["person_id"] = np.arange(next_id, next_id + len(extra))
    base = people.copy()
    base["kind"] = base.get("kind", pd.Series("person", index=base.index)).fillna("person")
    return pd.concat([base, extra], ignore_index=True)


# ---------------------------------------------------------------------------------------
# noisy copies
# ---------------------------------------------------------------------------------------

def _perturb_name(name: str, rng: np.random.Generator, rates: NoiseRates) -> str:
    if rng.random() < rates.respelling:
        name = respell(name, rng)
    if rng.random() < rates.ocr:
        name = ocr_error(name, rng)
    if not name.isascii() and rng.random() < rates.transliteration:
        name = transliterate(name, rng)
    return name


def perturb_record(rec: dict, rng: np.random.Generator, rates: NoiseRates, pools: NamePools,
                   movers: pd.DataFrame | None = None) -> dict:
    """A noisy copy of one clean record (keys as in ``make_clean_people``, optional nino)."""
    r = dict(rec)
    fore, sur = str(r["forenames"]), str(r["surname"])
    if " " in fore and rng.random() < rates.middle_name_dropped:
        fore = drop_middle_name(fore)
    if rng.random() < rates.nickname:
        fore = nickname(fore, rng)
    if ("-" in sur or " " in sur) and rng.random() < rates.double_barrel_partial:
        sur = partial_double_barrel(sur, rng)
    if r.get("sex") == "F" and rng.random() < rates.married_name:
        new = pools.surnames[int(rng.integers(0, len(pools.surnames)))]
        sur = new if new != sur else sur
    fore = _perturb_name(fore, rng, rates)
    sur = _perturb_name(sur, rng, rates)
    for attr, p in (("fore", rates.forename_typo), ("sur", rates.surname_typo)):
        if rng.random() < p:
            val = typo(fore if attr == "fore" else sur, rng)
            if rng.random() < rates.second_typo:
                val = typo(val, rng)
            if attr == "fore":
                fore = val
            else:
                sur = val
    if rng.random() < rates.initial_only:
        fore = initial_only(fore)
    if rng.random() < rates.name_swap:
        fore, sur = sur, fore
    r["forenames"], r["surname"] = fore, sur

    dob = r.get("dob")
    if dob is not None and not pd.isna(dob):
        if rng.random() < rates.dob_day_month_swap:
            dob = dob_day_month_swap(dob)
        if rng.random() < rates.dob_digit:
            dob = dob_digit_error(dob, rng)
        if rng.random() < rates.dob_year_off:
            dob = dob_year_off(dob, rng)
        if rng.random() < rates.dob_jan_first:
            dob = dob_jan_first(dob)
        if rng.random() < rates.dob_missing:
            dob = pd.NaT
        r["dob"] = dob

    if "address" in r:
        if movers is not None and len(movers) and rng.random() < rates.moved:
            j = int(rng.integers(0, len(movers)))
            r["address"], r["postcode"] = movers.iloc[j]["address"], movers.iloc[j]["postcode"]
        if rng.random() < rates.address_variant:
            r["address"] = address_variant(str(r["address"]), rng)
        if rng.random() < rates.address_typo:
            r["address"] = typo(str(r["address"]), rng)
        if r.get("postcode") and rng.random() < rates.postcode_typo:
            r["postcode"] = postcode_typo(str(r["postcode"]), rng)
    if r.get("nino") and rng.random() < rates.nino_typo:
        r["nino"] = nino_typo(str(r["nino"]), rng)
    return r


def noisy_copies(people: pd.DataFrame, rng: np.random.Generator, rates: NoiseRates = NoiseRates(),
                 pools: NamePools | None = None, movers: pd.DataFrame | None = None) -> pd.DataFrame:
    """One noisy copy of each row of ``people`` (person_id kept, so truth follows)."""
    pools = pools or _pools_from(people)
    recs = [perturb_record(rec, rng, rates, pools, movers) for rec in people.to_dict("records")]
    out = pd.DataFrame.from_records(recs, columns=people.columns)
    out["dob"] = pd.to_datetime(out["dob"])
    return out


def add_placeholders(records: pd.DataFrame, rng: np.random.Generator, rates: NoiseRates) -> pd.DataFrame:
    """Placeholder values on a few records, as data-entry systems write for 'not known'."""
    out = records.copy()
    n = len(out)
    if "dob" in out:
        hit = rng.random(n) < rates.placeholder_dob
        out.loc[hit, "dob"] = PLACEHOLDER_DOB
    hit = rng.random(n) < rates.placeholder_forename
    out.loc[hit, "forenames"] = PLACEHOLDER_FORENAME
    return out


def truth_pairs(left: pd.DataFrame, right: pd.DataFrame | None = None) -> set[tuple[str, str]]:
    """True pairs from the hidden ``person_id``: (left_id, right_id) for a link, sorted
    (id_a, id_b) within each person for a dedupe."""
    if right is not None:
        m = left[["record_id", "person_id"]].merge(right[["record_id", "person_id"]], on="person_id")
        return set(zip(m["record_id_x"].astype(str), m["record_id_y"].astype(str)))
    pairs: set[tuple[str, str]] = set()
    for ids in left.groupby("person_id")["record_id"].agg(list):
        if len(ids) > 1:
            pairs.update(tuple(sorted(map(str, p))) for p in itertools.combinations(ids, 2))
    return pairs


def _finish(df: pd.DataFrame, prefix: str, columns: list[str], rng: np.random.Generator) -> pd.DataFrame:
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df.insert(0, "record_id", [f"{prefix}{i:06d}" for i in range(len(df))])
    return df[["record_id", "person_id", *columns]]


def build_sets(seed: int, rates: NoiseRates = NoiseRates(), scale: float = 1.0) -> dict[str, LabelledSet]:
    """The standard labelled sets (``person_id`` kept in the frames for analysis only):

    * ``dedupe_de``: ~10k records, forenames + surname + dob only, de_DE names, 10%
      duplicates, skewed surnames and birth dates, twins/namesakes/family, placeholders;
    * ``link_uk``: two council files of ~5k records each (3k people in both), names from
      en_GB/de_DE/fr_FR/pl_PL/hi_IN, addresses and postcodes with moves, NINO on ~40% of
      records, every record lightly noisy and the second file's copies fully noisy;
    * ``dedupe_uk``: the two files of ``link_uk`` stacked and deduplicated.

    ``scale`` shrinks every count (for tests).
    """

    def k(count: int) -> int:
        return max(10, int(round(count * scale)))

    rng = np.random.default_rng(seed)
    sets: dict[str, LabelledSet] = {}

    # --- dedupe_de -----------------------------------------------------------------
    people = add_hard_negatives(make_clean_people(k(8600), seed, "de_DE"), rng, rates)
    pools = _pools_from(people)
    dup_src = people.iloc[rng.choice(len(people), k(1000), replace=False)]
    dups = noisy_copies(dup_src, rng, rates, pools)
    recs = add_placeholders(pd.concat([people, dups], ignore_index=True), rng, rates)
    cols = ["forenames", "surname", "dob"]
    left = _finish(recs, "D", cols, rng)
    sets["dedupe_de"] = LabelledSet(left, None, truth_pairs(left),
                                    {"forenames": "name", "surname": "name", "dob": "dob"})

    # --- link_uk / dedupe_uk ---------------------------------------------------------
    locales = ["en_GB", "en_GB", "en_GB", "en_GB", "de_DE", "fr_FR", "pl_PL", "hi_IN"]
    people = add_hard_negatives(make_clean_people(k(6700), seed + 1, locales), rng, rates)
    people["nino"] = random_ninos(len(people), rng)
    pools = _pools_from(people)
    movers = make_clean_people(k(3000), seed + 2, "en_GB")[["address", "postcode"]]
    order = rng.permutation(len(people))
    both, left_only, right_only = order[:k(3000)], order[k(3000):k(5000)], order[k(5000):k(7000)]
    light = rates.scaled(0.3)
    a = noisy_copies(people.iloc[np.concatenate([both, left_only])], rng, light, pools, movers)
    b_both = noisy_copies(people.iloc[both], rng, rates, pools, movers)
    b_only = noisy_copies(people.iloc[right_only], rng, light, pools, movers)
    b = pd.concat([b_both, b_only], ignore_index=True)
    for df in (a, b):
        df.loc[rng.random(len(df)) >= 0.4, "nino"] = None
    a, b = add_placeholders(a, rng, rates), add_placeholders(b, rng, rates)
    cols = ["forenames", "surname", "dob", "postcode", "address", "nino"]
    left, right = _finish(a, "A", cols, rng), _finish(b, "B", cols, rng)
    uk_fields = {"forenames": "name", "surname": "name", "dob": "dob", "postcode": "postcode_uk",
                 "address": "address", "nino": "id"}
    sets["link_uk"] = LabelledSet(left, right, truth_pairs(left, right), uk_fields)
    stacked = pd.concat([left, right], ignore_index=True)
    sets["dedupe_uk"] = LabelledSet(stacked, None, truth_pairs(stacked), dict(uk_fields))
    return sets
