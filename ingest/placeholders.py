"""Placeholder values: what a council system writes when it does not know the real value.

One detector shared by the data-quality profile (``ingest.quality``: how many placeholders
a feed sends) and by record linkage (which treats a placeholder as missing, so that two
people who both have date of birth 01/01/1900 or NINO 'UNKNOWN' are not "agreeing").

``placeholder_mask(values, kind)`` returns True where a value is a placeholder. The rule:

1. **Tokens** (every kind but 'date'): the value, upper-cased with everything but letters
   and digits removed, is one of ``PLACEHOLDER_TOKENS`` ('UNKNOWN', 'N/A', 'NONE', 'NULL',
   'TBC', 'NOT KNOWN', ...) or is empty (a cell of only punctuation such as '-', '?', '.').
   For names, a role standing where the name should be: ``HOUSEHOLD_ROLES`` in any name
   ('THE OCCUPIER', 'RESIDENTS', 'EXECUTORS' on a council tax account) and, for forenames
   ('forename'), ``FORENAME_ROLES`` ('BABY', 'BABY BOY', 'INFANT', 'WIFE', 'SON', 'MRS': a
   newborn not yet named, a household member entered by relation, a title alone). Not for
   surnames: SON, CHILD and BROTHER are surnames too.
   For 'id': a value whose digits are all one digit (at least 4 of them: '000000', 'AA000000A',
   '07000000000', '99999999') and an email whose local part is a token ('none@none.com').
2. **Sentinel dates** ('date'): 01/01/1900, 31/12/1899, 30/12/1899 (spreadsheet day 0),
   01/01/1800, 01/01/1901, 01/01/1970 (Unix day 0), 31/12/9999, 31/12/2999, 01/01/2100.
3. **1 January over-represented** ('date'): in a year holding at least ``MIN_COUNT`` dates on
   1 January and where 1 January holds more than ``JAN1_FACTOR`` times its fair share
   (1/365) of that year's dates, every 1 January of that year is a placeholder ("year known,
   day not"): its day and month carry no evidence.
4. **A value far more frequent than the rest** (every kind): sort the value counts
   c1 >= c2 >= ...; the top k values (k <= ``MAX_FREQUENT``) are placeholders when
   c_k >= ``MIN_COUNT`` and c_k >= ``FREQUENCY_RATIO`` x c_(k+1) (a gap of ten times),
   i.e. a value used a hundred times where the next most common is used five times.
   Real skews (SMITH 1.3% vs JONES 0.8% of surnames) are nowhere near a ten-fold gap.

Missing values are never placeholders. The rules are vectorised (value counts and Arrow
string kernels, no per-row Python). The mask never says *which* value was the placeholder
to its callers' outputs: profiles count, they do not list values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Normalised (upper case, letters and digits only) spellings of "not known".
PLACEHOLDER_TOKENS: frozenset[str] = frozenset({
    "UNKNOWN", "UNK", "UNKN", "NK", "NOTKNOWN", "NA", "NONE", "NULL", "NIL", "NOTAPPLICABLE", "NOTGIVEN",
    "NOTPROVIDED", "NOTSTATED", "NOTRECORDED", "NOTSUPPLIED", "NOTAVAILABLE", "REFUSED", "DECLINED",
    "TBC", "TBA", "TBD", "XX", "XXX", "XXXX", "ZZZ", "ZZZZ", "DUMMY", "TEST", "NOEMAIL", "NONAME",
    "NOFIXEDABODE", "NFA", "NOTHING", "BLANK", "EMPTY", "MISSING", "ANON", "ANONYMOUS",
})
#: Where a name should be, in any name field (normalised as PLACEHOLDER_TOKENS).
HOUSEHOLD_ROLES: frozenset[str] = frozenset({
    "OCCUPIER", "OCCUPIERS", "THEOCCUPIER", "THEOCCUPIERS", "RESIDENT", "RESIDENTS", "THERESIDENT",
    "THERESIDENTS", "HOUSEHOLDER", "THEHOUSEHOLDER", "THETENANT", "THETENANTS", "EXECUTORS", "THEEXECUTORS",
    "PERSONALREPRESENTATIVE", "PERSONALREPRESENTATIVES",
})
#: Where a forename should be: a newborn not yet named, a relation, a title alone.
FORENAME_ROLES: frozenset[str] = frozenset({
    "BABY", "BABYBOY", "BABYGIRL", "BABYOF", "INFANT", "UNBORN", "NEWBORN", "CHILD", "MALECHILD", "FEMALECHILD",
    "BOY", "GIRL", "SON", "DAUGHTER", "WIFE", "HUSBAND", "PARTNER", "MOTHER", "FATHER", "MUM", "MOM", "DAD",
    "BROTHER", "SISTER", "GRANDSON", "GRANDDAUGHTER", "GRANDCHILD", "GRANDMOTHER", "GRANDFATHER", "STEPSON",
    "STEPDAUGHTER", "NEPHEW", "NIECE", "MR", "MRS", "MISS", "MS", "MX",
})
SENTINEL_DATES: tuple[str, ...] = (
    "1900-01-01", "1899-12-31", "1899-12-30", "1800-01-01", "1901-01-01", "1970-01-01",
    "9999-12-31", "2999-12-31", "2100-01-01",
)
KINDS: tuple[str, ...] = ("date", "name", "forename", "text", "id")
#: Rule 4: a top value this many times more frequent than the next is a placeholder ...
FREQUENCY_RATIO = 10.0
#: ... if it occurs at least this often (also rule 3's minimum).
MIN_COUNT = 10
#: Rule 4 looks at no more than this many top values.
MAX_FREQUENT = 5
#: Rule 3: 1 January holding more than this many times its fair share of a year's dates.
JAN1_FACTOR = 10.0


#: Rule 1 compares a value's letters and digits, upper-cased, with a set of spellings: a token
#: with any separators around or inside ('N/A', 'not-known', ' n.a. ') is the token, a value of
#: nothing but separators ('-', '?', '.') is empty. Once per distinct value, and a set lookup,
#: not one regex of every spelling: Arrow compiles a regex on every call, and that one took
#: 1.5-3 ms, the most of what the rule cost on a re-sent extract's few changed rows.
_TOKENS = pa.array(sorted(PLACEHOLDER_TOKENS | {""}), type=pa.string())
#: An email's local part must be a token, not empty.
_EMAIL_TOKENS = pa.array(sorted(PLACEHOLDER_TOKENS), type=pa.string())
#: Rule 1's roles per name kind: a surname is checked for household roles, a forename for relations too.
_ROLES: dict[str, pa.Array] = {"name": pa.array(sorted(HOUSEHOLD_ROLES), type=pa.string()),
                               "forename": pa.array(sorted(HOUSEHOLD_ROLES | FORENAME_ROLES), type=pa.string())}
#: Letters outside ASCII that Unicode case folding equates with an ASCII letter (KELVIN SIGN with
#: K, LONG S with S): 'UN\u212aNOWN' spells UNKNOWN as a case-insensitive match would read it.
_FOLDS: dict[str, str] = {"\u212a": "K", "\u017f": "S"}


def _letters_digits(arr: pa.Array) -> pa.Array:
    """Each value's ASCII letters and digits, upper case (everything else is a separator)."""
    kept = pc.replace_substring_regex(arr, "[^A-Za-z0-9" + "".join(_FOLDS) + "]+", "")
    for char, letter in _FOLDS.items():
        kept = pc.replace_substring(kept, char, letter)
    return pc.ascii_upper(kept)


_SPELLINGS = PLACEHOLDER_TOKENS | HOUSEHOLD_ROLES | FORENAME_ROLES
if any(c.isdigit() for spelling in _SPELLINGS for c in spelling):
    raise ValueError("a placeholder spelling holds a digit: _SHORT_RE must then let digits through")
#: A value that can be one of the spellings, found by one cheap pass: no digit (no spelling has
#: one: record ids, NINOs and phones all go) and no more letters than the longest spelling
#: (addresses go).
_LETTER, _OTHER = "[A-Za-z" + "".join(_FOLDS) + "]", "[^A-Za-z0-9" + "".join(_FOLDS) + "]"
_SHORT_RE = f"^{_OTHER}*(?:{_LETTER}{_OTHER}*){{0,{max(map(len, _SPELLINGS))}}}$"


class _Spellings:
    """Distinct values, and the letters of those that can be a spelling (``_SHORT_RE``)."""

    def __init__(self, distinct: pa.Array) -> None:
        self.n = len(distinct)
        self.short = pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(distinct, pattern=_SHORT_RE), False))
        self.letters = _letters_digits(distinct.take(self.short))

    def among(self, spellings: pa.Array) -> np.ndarray:
        """Per distinct value: its letters and digits are one of ``spellings``."""
        found = np.zeros(self.n, dtype=bool)
        found[self.short.to_numpy()] = pc.is_in(self.letters, value_set=spellings).to_numpy(zero_copy_only=False)
        return found


_ND = "[^0-9]*"
#: Digits all one digit (at least 4: '000000', 'AA000000A'), or a phone's 0 / 07 then one digit repeated.
_SAME_DIGITS_RE = "|".join(
    [f"^{_ND}(?:{d}{_ND}){{4,}}$" for d in "0123456789"]
    + [f"^{_ND}0{_ND}(?:{d}{_ND}){{8,}}$" for d in "123456789"]
    + [f"^{_ND}0{_ND}7{_ND}(?:{d}{_ND}){{8,}}$" for d in "019"]
)


def _matches(arr: pa.Array, pattern: str, ignore_case: bool = False) -> np.ndarray:
    hit = pc.match_substring_regex(arr, pattern=pattern, ignore_case=ignore_case)
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def _token_mask(values: pd.Series, kind: str) -> np.ndarray:
    """Rule 1 by Arrow kernels, once per distinct value (no per-value Python)."""
    present = values.notna().to_numpy()
    encoded = pc.dictionary_encode(values.astype("string[pyarrow]").array._pa_array.combine_chunks())  # noqa: SLF001
    distinct = encoded.dictionary
    spelled = _Spellings(distinct)
    hit = spelled.among(_TOKENS)
    if kind in _ROLES:  # 'Na' is a real surname; 'N/A' (standardised 'N A') is not
        hit &= ~_matches(distinct, "^\\s*[Nn][Aa]\\s*$")
        hit |= spelled.among(_ROLES[kind])
    if kind == "id":  # and an email whose local part (before the first '@') is a token
        hit |= _matches(distinct, _SAME_DIGITS_RE)
        emails = pc.indices_nonzero(pc.fill_null(pc.match_substring(distinct, "@"), False))
        local = pc.struct_field(pc.extract_regex(distinct.take(emails), pattern="^(?P<local>[^@]*)@"), "local")
        hit[emails.to_numpy()] |= _Spellings(local).among(_EMAIL_TOKENS)
    rows = pc.fill_null(pc.take(pa.array(hit), encoded.indices), False).to_numpy(zero_copy_only=False)
    return rows & present


def _dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return pd.to_datetime(values.astype("string"), errors="coerce", format="ISO8601")


def _date_mask(values: pd.Series, dates: pd.Series) -> np.ndarray:
    """``dates``: ``_dates(values)`` (made once per field: parsing text dates is most of the cost)."""
    present = dates.notna().to_numpy()
    sentinel = dates.isin(pd.to_datetime(list(SENTINEL_DATES[:-3]))).to_numpy()  # in datetime64[ns] range
    # far-future sentinels (9999, 2999) do not fit datetime64[ns]; text input may carry them
    if not pd.api.types.is_datetime64_any_dtype(values):
        text = values.astype("string[pyarrow]").str.strip()
        far = text.str.slice(0, 10).isin(SENTINEL_DATES).fillna(False).to_numpy(dtype=bool)
        sentinel |= far
        present |= far
    sentinel |= (dates == pd.Timestamp("2100-01-01")).fillna(False).to_numpy(dtype=bool)
    jan1 = ((dates.dt.month == 1) & (dates.dt.day == 1)).fillna(False).to_numpy(dtype=bool)
    if jan1.sum() >= MIN_COUNT:
        years = dates.dt.year
        per_year = years.value_counts()
        jan1_per_year = years[jan1].value_counts()
        share = (jan1_per_year / per_year.reindex(jan1_per_year.index)).astype(float)
        bad_years = share.index[(jan1_per_year >= MIN_COUNT) & (share > JAN1_FACTOR / 365.25)]
        sentinel |= jan1 & years.isin(bad_years).to_numpy()
    return sentinel & present


def _top_counts(values: pd.Series) -> tuple[np.ndarray, object]:
    """The highest value counts (descending, at most MAX_FREQUENT + 1) and a function giving the
    mask of rows holding the top k values. Text is counted by Arrow (hashing without Python objects)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        counts = values.value_counts(sort=True)
        top = counts.to_numpy()[: MAX_FREQUENT + 1]
        return top, lambda k: values.isin(counts.index[:k]).to_numpy(dtype=bool)
    arr = pa.chunked_array([values.astype("string[pyarrow]").array._pa_array.combine_chunks()])  # noqa: SLF001
    vc = pc.value_counts(arr.combine_chunks())
    keep = pc.is_valid(vc.field("values")).to_numpy(zero_copy_only=False)
    counts = vc.field("counts").to_numpy(zero_copy_only=False)[keep]
    distinct = vc.field("values").filter(pa.array(keep))
    order = np.argsort(-counts, kind="stable")[: MAX_FREQUENT + 1]
    top = counts[order]
    return top, lambda k: pc.fill_null(pc.is_in(arr, value_set=distinct.take(pa.array(order[:k]))), False).to_numpy()


def _frequent_mask(values: pd.Series) -> np.ndarray:
    present = values.notna().to_numpy()
    if present.sum() < MIN_COUNT:
        return np.zeros(len(values), dtype=bool)
    top, holding = _top_counts(values)
    if len(top) == 0 or top[0] < MIN_COUNT:
        return np.zeros(len(values), dtype=bool)
    nxt = np.append(top[1:], 0)
    gaps = np.flatnonzero((top >= MIN_COUNT) & (top >= FREQUENCY_RATIO * nxt))
    gaps = gaps[gaps < MAX_FREQUENT]
    if not len(gaps):
        return np.zeros(len(values), dtype=bool)
    return np.asarray(holding(int(gaps[0]) + 1), dtype=bool) & present


def placeholder_mask(values: pd.Series, kind: str) -> pd.Series:
    """True where a value of a standardised field is a placeholder (see the module docstring).

    ``kind``: 'date' (datetime64, or ISO text), 'name' (surnames), 'forename', 'text'
    (addresses, postcodes, free text) or 'id' (NINO, UPRN, phone, email, bank details, record
    ids). Missing is never a placeholder. The result is a bool Series on ``values.index``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown placeholder kind {kind!r}; one of {', '.join(KINDS)}")
    if len(values) == 0:
        return pd.Series(np.zeros(0, dtype=bool), index=values.index)
    if kind == "date":
        dates = _dates(values)
        mask = _date_mask(values, dates)
        mask |= _frequent_mask(dates)
    else:
        mask = _token_mask(values, kind)
        mask |= _frequent_mask(values.astype("string[pyarrow]"))
    return pd.Series(mask, index=values.index, dtype=bool)


#: The kind of each canonical field, for callers that profile or match canonical frames.
FIELD_KINDS: dict[str, str] = {
    "record_id": "id", "forenames": "forename", "first_name": "forename", "middle_names": "forename", "surname": "name",
    "previous_surname": "name", "dob": "date", "nino": "id", "address_lines": "text", "postcode": "text",
    "uprn": "id", "email": "id", "phone": "id", "bank_sort_code": "id", "bank_account": "id",
    "period_start": "date", "period_end": "date", "date_of_death": "date", "last_used": "date",
}

#: identifying fields whose placeholders are treated as missing before pseudonymising. Not
#: addresses and postcodes: many real records share one (a care home, a hostel), and the
#: frequency rule would take them for a dummy.
FOR_MATCHING: tuple[str, ...] = ("forenames", "first_name", "middle_names", "surname", "previous_surname", "dob",
                                 "nino", "uprn", "email", "phone", "bank_sort_code", "bank_account")


def without_placeholders(canonical: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The canonical frame with placeholder values set to missing, and how many per field.

    Linkage must not take a dummy for evidence: 47 records with date of birth 01/01/1900
    "agree exactly" with each other, and 'UNKNOWN' forenames all match. The vault keeps the
    values as sent; this copy only feeds pseudonymisation.
    """
    out = canonical.copy()
    counts: dict[str, int] = {}
    for field in FOR_MATCHING:
        if field not in out.columns or out[field].isna().all():
            continue
        mask = placeholder_mask(out[field], FIELD_KINDS[field]).to_numpy(dtype=bool)
        if mask.any():
            out[field] = out[field].mask(mask)
            counts[field] = int(mask.sum())
    return out, counts


def placeholder_bits(canonical: pd.DataFrame, known: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """uint16 per row: bit i set where ``FOR_MATCHING[i]`` holds a placeholder (what
    ``without_placeholders`` sets to missing). Rules 3 and 4 depend on the whole column, so a
    re-sent extract computes the bits on all its rows and clears only its fresh ones with them.
    ``known``: masks already made of the very same values (the data-quality profile's)."""
    bits = np.zeros(len(canonical), dtype=np.uint16)
    for i, field in enumerate(FOR_MATCHING):
        if field not in canonical.columns or canonical[field].isna().all():
            continue
        mask = known[field] if known and field in known else placeholder_mask(canonical[field], FIELD_KINDS[field])
        bits |= np.asarray(mask, dtype=bool).astype(np.uint16) << i
    return bits


def clear_placeholders(canonical: pd.DataFrame, bits: np.ndarray) -> pd.DataFrame:
    """``canonical`` with the values ``bits`` (``placeholder_bits``, one per row) name set to missing."""
    out = canonical.copy()
    for i, field in enumerate(FOR_MATCHING):
        mask = (bits >> i) & 1 == 1
        if field in out.columns and mask.any():
            out[field] = out[field].mask(mask)
    return out


__all__ = ["FIELD_KINDS", "FORENAME_ROLES", "FOR_MATCHING", "HOUSEHOLD_ROLES", "PLACEHOLDER_TOKENS", "SENTINEL_DATES",
           "clear_placeholders", "placeholder_bits", "placeholder_mask", "without_placeholders"]
