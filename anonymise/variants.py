"""Derived values that tokens are made of: one normalised string per token column.

Input is the standardised canonical frame (forms in ``councilmatch.contracts``).
Every derivation runs on the *unique combinations* of its source columns, so a
million records with ten thousand distinct surnames cost ten thousand string ops.
A derivation returns an Arrow-backed string Series, NA where the value is missing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable

from metaphone import doublemetaphone
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from anonymise.encodings import one_edit_forms
from anonymise.nicknames import NICKNAMES, nickname_neighbourhood

Derive = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Variant:
    sources: tuple[str, ...]
    derive: Derive


#: Arrow-backed strings: str.* methods run as Arrow compute kernels, not Python loops.
STRING = "string[pyarrow]"

_SHARED: ContextVar[dict | None] = ContextVar("shared_derivations", default=None)


@contextmanager
def shared_derivations() -> Iterator[None]:
    """While one frame is pseudonymised, the steps many variants start from (a field stripped, the
    first name, the postcode's halves) are made once per input, not once per variant: on a
    re-sent extract's few changed rows each step is all fixed cost, and they were a quarter of it."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(fn: Callable) -> Callable:
    """``fn(x)`` computed once per ``x`` (the very object) inside :func:`shared_derivations`."""
    @functools.wraps(fn)
    def once(x):  # noqa: ANN001, ANN202
        memo = _SHARED.get()
        if memo is None:
            return fn(x)
        kept = memo.get((fn, id(x)))
        if kept is None or kept[0] is not x:  # the memo holds x, so its id is not reused meanwhile
            kept = memo[(fn, id(x))] = (x, fn(x))
        return kept[1]
    return once


@_shared
def _str(s: pd.Series) -> pd.Series:
    """Stripped strings, empty -> NA."""
    out = s.astype(STRING).str.strip()
    return out.mask(out == "")


@_shared
def _first_name(u: pd.DataFrame) -> pd.Series:
    first = _str(u["first_name"])
    from_forenames = _str(u["forenames"]).str.replace(r" .*$", "", regex=True)
    return first.fillna(from_forenames)


def _strftime(dates: pd.Series, fmt: str) -> pd.Series:
    """Dates formatted by Arrow's kernel (NaT -> NA): pandas formats any pattern but ISO's one
    date at a time in Python, eight times slower; the strings are the same."""
    arr = pa.array(dates.to_numpy(dtype="datetime64[s]"), from_pandas=True)
    return pd.Series(pd.array(pc.strftime(arr, format=fmt), dtype=STRING), index=dates.index)


def _dates(values: pd.Series) -> pd.Series:
    """Dates (unparseable -> NaT); a date column as it is: ``pd.to_datetime`` would first make a
    Timestamp of each value to see whether caching repeats pays (50 times the cost here)."""
    return values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values, errors="coerce")


def _dob(u: pd.DataFrame) -> pd.Series:
    return _strftime(_dates(u["dob"]), "%Y-%m-%d")


def _dob_unordered(u: pd.DataFrame) -> pd.Series:
    d = _dates(u["dob"])
    day, month = d.dt.day, d.dt.month
    lo, hi = np.minimum(day, month), np.maximum(day, month)
    return (d.dt.year.astype("Int64").astype(STRING) + "-" + lo.astype("Int64").astype(STRING).str.zfill(2)
            + "-" + hi.astype("Int64").astype(STRING).str.zfill(2))


def _dob_parts(*parts: str) -> Derive:
    """Two of the date's three parts (e.g. year and month): agreeing on exactly two of the
    three pairs means one part was mistyped (a year off by one, a wrong month or day)."""
    fmt = {"y": "%Y", "m": "%m", "d": "%d"}

    def derive(u: pd.DataFrame) -> pd.Series:
        return _strftime(_dates(u["dob"]), "-".join(f"{p}{fmt[p]}" for p in parts))
    return derive


def _yob(u: pd.DataFrame) -> pd.Series:
    return _dates(u["dob"]).dt.year.astype("Int64").astype(STRING)


def _yob_if_first_of_year(u: pd.DataFrame) -> pd.Series:
    """The year of a date that is 1 January, else missing: many systems record a birthday they do
    not know as 1 January of the year (the year is evidence, the day and month are not)."""
    d = _dates(u["dob"])
    return _yob(u).where(((d.dt.month == 1) & (d.dt.day == 1)).to_numpy(dtype=bool))  # NaT: False


def _phonetic(s: pd.Series) -> pd.Series:
    """Double Metaphone primary code of the letters (spaces dropped).

    Unlike Soundex it does not keep the first letter (a typo there, or CATHERINE /
    KATHRYN, PHILLIPS / FILIPS, still agree) and it knows German, Slavic, Romance and
    other spellings (MUELLER / MULLER, SZCZEPANSKI / SHCHEPANSKI), which suits the names
    councils hold. Computed once per distinct value.
    """
    letters = _str(s).str.replace(r"[^A-Z]", "", regex=True)
    return _per_distinct(letters.mask(letters == ""), _primary_code)


@functools.lru_cache(maxsize=1 << 17)
def _primary_code(letters: str) -> str | None:
    """Double Metaphone's primary code, kept for the process's next extracts: the same names
    come in every feed (193,434 codes made in a 1M-record night's ingest, ~20 us each)."""
    return doublemetaphone(letters)[0] or None


def _per_distinct(values: pd.Series, fn: Callable[[str], str | None]) -> pd.Series:
    """``fn`` (Python, per value) applied once per distinct present value; NA stays NA.

    A variant's input holds one row per distinct source combination, which repeats values
    (11,297 first-name and forenames combinations, 1,160 first names)."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    mapped = pd.array([fn(v) for v in distinct.tolist()] + [None], dtype=STRING)
    return pd.Series(mapped.take(codes), index=values.index)


def _canon(u: pd.DataFrame) -> pd.Series:
    return _per_distinct(_first_name(u), lambda v: NICKNAMES.get(v, v))


def _name_sorted(u: pd.DataFrame) -> pd.Series:
    a, b = _first_name(u), _str(u["surname"])
    swap = (a > b).fillna(False)
    lo, hi = a.where(~swap, b), b.where(~swap, a)
    return lo + " " + hi  # NA if either is missing


#: Words that join a surname rather than tell it apart (VAN DER BERG, DE LA CRUZ, BIN LADEN).
SURNAME_PARTICLES: tuple[str, ...] = ("VAN", "VON", "DER", "DEN", "DE", "DA", "DI", "DU", "LA", "LE", "DEL",
                                      "DELLA", "DOS", "DAS", "ST", "AL", "EL", "BIN", "BEN", "BINTI")


def _surname_part(which: int) -> Derive:
    """The first (0) or last (-1) distinguishing word of a multi-word surname ("SMITH JONES",
    standardised from SMITH-JONES); missing for a one-word surname."""
    particles = "|".join(SURNAME_PARTICLES)

    def derive(u: pd.DataFrame) -> pd.Series:
        surname = _str(u["surname"])
        core = surname.str.replace(rf"\b(?:{particles}) ", "", regex=True).str.strip()
        parts = core.str.split(" ")
        part = parts.str[0] if which == 0 else parts.str[-1]
        return part.where(surname.str.contains(" ", regex=False).fillna(False) & (part.str.len() > 1))
    return derive


@_shared
def _postcode_parts(u: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    compact = _str(u["postcode"]).str.replace(" ", "", regex=False).str.upper()
    compact = compact.mask(compact.str.len() < 5)
    return compact.str[:-3], compact.str[-3:]


def _postcode(u: pd.DataFrame) -> pd.Series:
    outward, inward = _postcode_parts(u)
    return outward + " " + inward


def _pc_sector(u: pd.DataFrame) -> pd.Series:
    outward, inward = _postcode_parts(u)
    return outward + " " + inward.str[0]


def _pc_district(u: pd.DataFrame) -> pd.Series:
    return _postcode_parts(u)[0]


#: Characters that scanning (and keying from a poor scan) confuses, upper case as standardised. In a
#: word read as a number, the letters are read as the digits they resemble ...
_READ_AS_DIGITS: tuple[tuple[str, str], ...] = (("O", "0"), ("I", "1"), ("L", "1"), ("S", "5"), ("B", "8"),
                                              ("Z", "2"), ("G", "6"))
#: ... and in a word of letters the digits as letters, L as I and RN, VV as M, W (two letters that
#: print as one). Order matters: digits first, so B1RD and BLRD both become BIRD.
_READ_AS_LETTERS: tuple[tuple[str, str], ...] = (("0", "O"), ("1", "I"), ("5", "S"), ("8", "B"), ("2", "Z"),
                                               ("6", "G"), ("L", "I"), ("RN", "M"), ("VV", "W"))


def _chain(arr: pa.Array, replacements: tuple[tuple[str, str], ...]) -> pa.Array:
    for old, new in replacements:
        arr = pc.replace_substring(arr, old, new)
    return arr


@_shared
def _scanned_alike(s: pd.Series) -> pd.Series:
    """An address line with the characters scanning confuses read alike, word by word: a word of
    digits and look-alike letters, at least half of it digits, is a number (I1 -> 11, 3O -> 30), any
    other word with a letter reads its digits as letters (B1RD, BLRD -> BIRD; G1LL, GILL -> GIII;
    5TANLEY -> STANIEY; F1AT, FLAT -> FIAT). A house number as written (12, 12A) and a word of one
    character (FLAT B, FLAT 8) stay as they are: there the two readings are both real. Both records
    are read the same way, so two real addresses meet only if they differ by nothing but look-alike
    characters, in one postcode."""
    text = _str(s)
    words = pc.split_pattern(text.array._pa_array.combine_chunks(), " ")  # noqa: SLF001
    flat = words.values
    as_written = pc.or_(pc.match_substring_regex(flat, r"^[0-9]+[A-Z]?$"), pc.less_equal(pc.utf8_length(flat), 1))
    digits = pc.utf8_length(pc.replace_substring_regex(flat, "[^0-9]", ""))
    numeric = pc.and_(pc.and_(pc.match_substring_regex(flat, r"^[0-9OILSBZG]+$"),
                              pc.greater_equal(pc.multiply(digits, 2), pc.utf8_length(flat))), pc.invert(as_written))
    lettered = pc.and_(pc.match_substring_regex(flat, "[A-Z]"), pc.invert(pc.or_(as_written, numeric)))
    read = pc.if_else(numeric, _chain(flat, _READ_AS_DIGITS), pc.if_else(lettered, _chain(flat, _READ_AS_LETTERS), flat))
    joined = pc.binary_join(pa.ListArray.from_arrays(words.offsets, read, mask=pc.is_null(words)),
                            pa.scalar(" ", flat.type))
    return pd.Series(pd.array(joined, dtype=STRING), index=s.index)


def _premise(u: pd.DataFrame) -> pd.Series:
    """House/flat numbers ("FLAT 3 12 HIGH ROAD" -> "3 12") + postcode; a named house
    without numbers keeps its whole address line. Read as :func:`_scanned_alike` reads it, so a
    scanned 5TANLEY is no number and I1 is 11."""
    address = _scanned_alike(u["address_lines"])
    numbers = (address.str.replace(r"\b[^0-9 ]\S*", "", regex=True)   # drop words not starting with a digit
               .str.replace(r"\s+", " ", regex=True).str.strip())
    numbers = numbers.mask(numbers == "").fillna(address)
    return numbers + "|" + _postcode(u)


def _address(u: pd.DataFrame) -> pd.Series:
    return _scanned_alike(u["address_lines"]) + "|" + _postcode(u).fillna("")


def _bank(u: pd.DataFrame) -> pd.Series:
    return _str(u["bank_sort_code"]) + "-" + _str(u["bank_account"])


def _column(name: str) -> Derive:
    return lambda u: _str(u[name])


#: token column -> how its value is derived (purposes are in contracts.TOKEN_COLUMNS)
VARIANTS: dict[str, Variant] = {
    "t_nino": Variant(("nino",), lambda u: _str(u["nino"]).str.replace(" ", "", regex=False).str.upper()),
    "t_dob": Variant(("dob",), _dob),
    "t_dob_unordered": Variant(("dob",), _dob_unordered),
    "t_yob": Variant(("dob",), _yob),
    "t_yob_jan1": Variant(("dob",), _yob_if_first_of_year),
    "t_dob_ym": Variant(("dob",), _dob_parts("y", "m")),
    "t_dob_md": Variant(("dob",), _dob_parts("m", "d")),
    "t_dob_yd": Variant(("dob",), _dob_parts("y", "d")),
    "t_forename": Variant(("first_name", "forenames"), _first_name),
    "t_surname": Variant(("surname",), _column("surname")),
    "t_prev_surname": Variant(("previous_surname",), _column("previous_surname")),
    "t_surname_first": Variant(("surname",), _surname_part(0)),
    "t_surname_last": Variant(("surname",), _surname_part(-1)),
    "t_forename_canon": Variant(("first_name", "forenames"), _canon),
    "t_forename_phon": Variant(("first_name", "forenames"), lambda u: _phonetic(_first_name(u))),
    "t_surname_phon": Variant(("surname",), lambda u: _phonetic(u["surname"])),
    "t_initial": Variant(("first_name", "forenames"), lambda u: _first_name(u).str[0]),
    "t_name_sorted": Variant(("first_name", "forenames", "surname"), _name_sorted),
    "t_postcode": Variant(("postcode",), _postcode),
    "t_pc_sector": Variant(("postcode",), _pc_sector),
    "t_pc_district": Variant(("postcode",), _pc_district),
    "t_premise": Variant(("address_lines", "postcode"), _premise),
    "t_address": Variant(("address_lines", "postcode"), _address),
    "t_uprn": Variant(("uprn",), lambda u: _str(u["uprn"]).str.lstrip("0").replace("", pd.NA)),
    "t_email": Variant(("email",), lambda u: _str(u["email"]).str.lower()),
    "t_phone": Variant(("phone",), lambda u: _str(u["phone"]).str.replace(r"\D", "", regex=True)),
    "t_bank": Variant(("bank_sort_code", "bank_account"), _bank),
}

#: Every forename of the record (the forenames field, else the first name).
_ALL_FORENAMES = Variant(("first_name", "forenames"), lambda u: _str(u["forenames"]).fillna(_str(u["first_name"])))

#: Bloom column -> (subkey purpose, derivation). One subkey per field: learning which bits
#: stand for which bigrams in one field's filters teaches nothing about another's.
#: (Swapped names are caught by the tokens, which need no shared filter key.)
BLOOM_VARIANTS: dict[str, tuple[str, Variant]] = {
    "bf_forenames": ("bloom_forename", _ALL_FORENAMES),
    "bf_surname": ("bloom_surname", Variant(("surname",), _column("surname"))),
    "bf_address": ("bloom_address", Variant(("address_lines", "postcode"),
                                            lambda u: _str(u["address_lines"]) + " " + _postcode(u).fillna(""))),
}


#: Neighbourhood column -> (subkey purpose, derivation, what a value's neighbourhood holds), one
#: subkey per field as for the Bloom filters: an edit neighbourhood (``ed_*``) holds the value
#: and each one-letter deletion, a nickname neighbourhood (``nk_*``) the forename and the full
#: names it is listed under.
NEIGHBOURHOOD_VARIANTS: dict[str, tuple[str, Variant, Callable[[str], list[str]]]] = {
    "ed_forename": ("edits_forename", VARIANTS["t_forename"], one_edit_forms),
    "ed_surname": ("edits_surname", VARIANTS["t_surname"], one_edit_forms),
    "ed_nino": ("edits_nino", VARIANTS["t_nino"], one_edit_forms),
    "nk_forename": ("nicknames_forename", VARIANTS["t_forename"], nickname_neighbourhood),
    "nf_words": ("forename_words", _ALL_FORENAMES, lambda v: [w for w in v.split() if len(w) > 1]),
    # only where no forename is spelled out (E, M J): beside a spelled-out name a middle initial
    # meets the other's first initial by chance about one time in ten
    "nf_bare": ("forename_initials", _ALL_FORENAMES,
                lambda v: sorted(set(v.split())) if all(len(w) == 1 for w in v.split()) else []),
    "nf_initials": ("forename_initials", _ALL_FORENAMES, lambda v: sorted({w[0] for w in v.split()})),
}


def _salt(*parts: Derive) -> Derive:
    """A salt made of other attributes of the record (missing parts stay empty)."""
    def derive(u: pd.DataFrame) -> pd.Series:
        out = pd.Series("", index=u.index, dtype=STRING)
        for part in parts:
            out = out + "|" + part(u).fillna("")
        return out
    return derive


#: Bloom column -> the salt its bit positions are permuted by (encodings.salt_permute), made of
#: attributes a record nearly always has: the surname filter by year of birth and the
#: forename's initial, the forenames filter by the first letter of the surname's phonetic code
#: (not the year of birth: council tax and register records often lack it, and a missing part
#: would keep the holder's own entry with a typo'd forename from ever looking alike).
#: contracts.BLOOM_SALT_TOKENS names the tokens that agree when the salts do. A name's filter
#: then differs between salt groups, so filters can only be aligned, and their bits decoded,
#: inside a group; two records of one person share the salt unless those parts differ too,
#: and then the name's fuzzy levels fall back to the phonetic and nickname tokens.
BLOOM_SALTS: dict[str, Variant] = {
    "bf_forenames": Variant(("surname",), _salt(lambda u: _phonetic(u["surname"]).str[0])),
    "bf_surname": Variant(("dob", "first_name", "forenames"), _salt(_yob, lambda u: _first_name(u).str[0])),
}


def unique_combinations(frame: pd.DataFrame, sources: tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    """Codes (one per row) into a frame of the distinct combinations of ``sources``.

    A column the frame lacks is all-missing. Uses ``pd.factorize`` per column and on
    the combined integer codes (re-factorised after each column, so it never
    overflows): no per-row Python.
    """
    n = len(frame)
    key = np.zeros(n, dtype=np.int64)
    ncombo = 1
    for name in sources:
        if name not in frame.columns:
            continue
        codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
        key, combos = pd.factorize(key * (len(uniques) + 1) + (codes + 1))
        ncombo = len(combos)
    _, first = np.unique(key, return_index=True)
    uniq = pd.DataFrame(index=pd.RangeIndex(len(first)))
    for name in sources:
        uniq[name] = frame[name].to_numpy()[first] if name in frame.columns else pd.NA
    assert len(first) == ncombo or n == 0
    return key, uniq


Combinations = dict[tuple[str, ...], tuple[np.ndarray, pd.DataFrame]]

#: Up to this many rows, variants are derived on the frame's rows themselves, not on the distinct
#: combinations of their sources: on a re-sent extract's few changed rows, finding combinations
#: (one per variant) costs more than it saves, and every variant then reads the very same columns,
#: so the steps they share (``shared_derivations``) are made once for the frame.
ROWS_DERIVED_AS_THEY_ARE = 5_000
_ROWS: tuple[str, ...] = ("(rows)",)


def _rows(frame: pd.DataFrame, sources: tuple[str, ...], cache: Combinations) -> tuple[np.ndarray, pd.DataFrame]:
    """The frame's rows with each of ``sources`` as :func:`unique_combinations` gives it (a column
    the frame lacks all-missing), one frame for all variants (columns added as variants need them)."""
    if _ROWS not in cache:
        cache[_ROWS] = (np.arange(len(frame)), pd.DataFrame(index=pd.RangeIndex(len(frame))))
    codes, rows = cache[_ROWS]
    for name in sources:
        if name not in rows.columns:
            rows[name] = frame[name].to_numpy() if name in frame.columns else pd.NA
    return codes, rows


def derive(frame: pd.DataFrame, variant: Variant, cache: Combinations | None = None) -> tuple[np.ndarray, pd.Series]:
    """Row codes and the derived value for each distinct source combination (or, in a frame of
    at most ``ROWS_DERIVED_AS_THEY_ARE`` rows, for each row).

    ``cache`` (one dict per frame) shares the factorisation between variants with the
    same sources (dob -> t_dob, t_dob_unordered, t_yob).
    """
    if cache is None:
        cache = {}
    if len(frame) <= ROWS_DERIVED_AS_THEY_ARE:
        codes, rows = _rows(frame, variant.sources, cache)
        return codes, variant.derive(rows)
    if variant.sources not in cache:
        cache[variant.sources] = unique_combinations(frame, variant.sources)
    codes, uniq = cache[variant.sources]
    return codes, variant.derive(uniq)
