"""Pure standardisers: each takes a pandas Series of text and returns the standardised Series.

These produce the forms documented in ``councilmatch.contracts`` and are reused
outside ingest (e.g. to standardise FEBRL data for evaluation), so they know
nothing about feeds. Missing or blank input becomes ``pd.NA``; the result has
dtype ``string[pyarrow]``. Every function is idempotent: standardising a
standardised value changes nothing. They never reject a value;
``ingest.validate`` decides what is invalid.

The work is done by Arrow compute kernels (RE2 regular expressions), so there
is no per-row Python: RE2 has no look-around, hence the plain patterns.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Letters NFKD does not decompose into ASCII.
FOLD: dict[str, str] = {
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i",
}
_APOSTROPHES = "['’‘`´ʼ]"
TITLES: tuple[str, ...] = (
    "MR", "MRS", "MS", "MISS", "MX", "MASTER", "DR", "PROF", "PROFESSOR", "SIR", "DAME",
    "LORD", "LADY", "REV", "REVD", "REVEREND", "FR", "CAPT", "CPT", "COL", "MAJ", "CLLR", "HON",
)
#: Leading titles; the value is trimmed, so the last word is never taken ("MR" alone stays).
_TITLE_PREFIX = "^(?:(?:" + "|".join(TITLES) + ") )+"

#: Address abbreviations expanded word by word (ST is handled separately: SAINT or STREET).
ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "RD": "ROAD", "AVE": "AVENUE", "AV": "AVENUE", "LN": "LANE", "DR": "DRIVE", "CT": "COURT",
    "CRT": "COURT", "CL": "CLOSE", "CRES": "CRESCENT", "CRESC": "CRESCENT", "GDNS": "GARDENS",
    "GRN": "GREEN", "GR": "GROVE", "GRV": "GROVE", "PL": "PLACE", "SQ": "SQUARE", "TER": "TERRACE",
    "TERR": "TERRACE", "PK": "PARK", "PDE": "PARADE", "HSE": "HOUSE", "HO": "HOUSE", "BLDGS": "BUILDINGS",
    "APT": "APARTMENT", "FLT": "FLAT", "MT": "MOUNT", "UPR": "UPPER", "LWR": "LOWER", "GT": "GREAT",
    "CTR": "CENTRE", "EST": "ESTATE", "WY": "WAY", "HWY": "HIGHWAY", "BVD": "BOULEVARD",
    "BLVD": "BOULEVARD", "MWS": "MEWS", "WLK": "WALK", "EMB": "EMBANKMENT", "ST": "STREET",
}
_ABBREV_KEYS = pa.array(list(ADDRESS_ABBREVIATIONS))
_ABBREV_VALUES = pa.array(list(ADDRESS_ABBREVIATIONS.values()))
_POSTCODE_TAIL = r"(?: ?\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})+$"


# --- Arrow plumbing -------------------------------------------------------


def _arrow(s: pd.Series) -> pa.Array:
    s = s if isinstance(s, pd.Series) else pd.Series(s)
    if not (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        s = s.astype("string[pyarrow]")
    return s.array._pa_array.combine_chunks().cast(pa.string())  # noqa: SLF001 (Arrow view of the column)


def _series(arr: pa.ChunkedArray | pa.Array, index: pd.Index) -> pd.Series:
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    return pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.string())), index=index)


def _sub(arr, pattern: str, replacement: str):
    return pc.replace_substring_regex(arr, pattern=pattern, replacement=replacement)


def _null_if_empty(arr):
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


#: What ``utf8_trim_whitespace`` trims, as an RE2 class: ``\s``, vertical tab, the information
#: separators U+001C-U+001F, NEL and every Unicode space separator.
_WHITE_SPACE = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}]"


def _trim(arr):
    return _null_if_empty(pc.utf8_trim_whitespace(arr))


def _squeeze(arr):
    """Single spaces, trimmed, empty -> null."""
    return _trim(_sub(arr, r"\s+", " "))


def _drop_apostrophes(arr):
    return pc.replace_substring(pc.replace_substring(arr, pattern="'", replacement=""), pattern="`", replacement="")


def _fold(arr):
    """'Zoë Ångström' -> 'Zoe Angstrom': special letters, NFKD, then drop what is not ASCII.

    Only non-ASCII values are touched, so mostly-ASCII data costs one scan.
    """
    non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(arr), True))
    if not pc.any(non_ascii).as_py():
        return arr
    sub = pc.filter(arr, non_ascii)
    for ch, rep in FOLD.items():
        sub = pc.replace_substring(sub, pattern=ch, replacement=rep)
    sub = _sub(pc.utf8_normalize(sub, form="NFKD"), r"[^\x00-\x7F]", "")
    return pc.replace_with_mask(arr, non_ascii, sub)


def fold_diacritics(s: pd.Series) -> pd.Series:
    """'Zoë Ångström' -> 'Zoe Angstrom'."""
    return _series(_fold(_arrow(s)), s.index)


# --- Standardisers ---------------------------------------------------------


def standardise_name(s: pd.Series) -> pd.Series:
    """Upper-case ASCII letters and single spaces; titles, apostrophes and punctuation gone.

    "Mrs. Zoë O'Brien-Smith" -> "ZOE OBRIEN SMITH".
    """
    arr = pc.utf8_upper(_fold(_trim(_arrow(s))))  # folding drops the non-ASCII apostrophes
    arr = _trim(_sub(_drop_apostrophes(arr), "[^A-Z]+", " "))
    return _series(_sub(arr, _TITLE_PREFIX, ""), s.index)


def split_forenames(forenames: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Standardised forenames -> (first_name, middle_names); middle_names NA when there are none."""
    arr = _arrow(forenames)
    first = _sub(arr, " .*$", "")
    middle = _null_if_empty(_sub(arr, "^[^ ]*(?: |$)", ""))
    return _series(first, forenames.index), _series(middle, forenames.index)


def standardise_postcode(s: pd.Series) -> pd.Series:
    """'sw1a1aa' -> 'SW1A 1AA': upper, no punctuation, one space before the inward code.

    Values too short to have an inward code (e.g. Australian '2000') stay compact.
    """
    arr = _sub(pc.utf8_upper(_fold(_arrow(s))), "[^A-Z0-9]", "")
    long_enough = pc.fill_null(pc.greater_equal(pc.utf8_length(arr), 5), False)
    arr = pc.if_else(long_enough, pc.utf8_replace_slice(arr, start=-3, stop=-3, replacement=" "), arr)
    return _series(_null_if_empty(arr), s.index)


def standardise_nino(s: pd.Series) -> pd.Series:
    """'ab 12 34 56 c' -> 'AB123456C': upper, letters and digits only."""
    arr = _sub(pc.utf8_upper(_fold(_arrow(s))), "[^A-Z0-9]", "")
    return _series(_null_if_empty(arr), s.index)


def _expand_words(arr, mapping_keys: pa.Array, mapping_values: pa.Array):
    """Replace whole words found in a mapping (vectorised: split, look up, re-join)."""
    words = pc.split_pattern(arr, pattern=" ")
    flat = pc.list_flatten(words)
    idx = pc.index_in(flat, value_set=mapping_keys)
    replaced = pc.if_else(pc.is_valid(idx), pc.take(mapping_values, pc.fill_null(idx, 0)), flat)
    offsets = words.offsets
    rebuilt = pa.ListArray.from_arrays(offsets, replaced, mask=pc.is_null(words))
    return pc.binary_join(rebuilt, " ")


def standardise_address(s: pd.Series) -> pd.Series:
    """Upper, punctuation removed, abbreviations expanded, trailing postcode dropped.

    "12, St. John's Rd., London SW1A 1AA" -> "12 SAINT JOHNS ROAD LONDON".
    """
    arr = pc.utf8_upper(_fold(_trim(_arrow(s))))  # folding drops the non-ASCII apostrophes
    arr = _trim(_sub(_drop_apostrophes(arr), "[^A-Z0-9]+", " "))
    arr = _trim(_sub(arr, _POSTCODE_TAIL, ""))
    # ST before a name at the start of the street (first word, or after a house number) is SAINT
    has_st = pc.fill_null(pc.match_substring(arr, "ST "), False)
    if pc.any(has_st).as_py():
        arr = pc.if_else(has_st, _sub(arr, r"(^|[0-9][A-Z]? )ST ([A-Z])", r"\1SAINT \2"), arr)
    arr = _expand_words(arr, _ABBREV_KEYS, _ABBREV_VALUES)
    return _series(_null_if_empty(arr), s.index)


def standardise_phone(s: pd.Series) -> pd.Series:
    """Digits in national form: '+44 (0)7700 900123' -> '07700900123'.

    A leading 44/0044 becomes 0; ten digits without the 0 (lost by a spreadsheet) get it back.
    """
    arr = _sub(pc.replace_substring(_arrow(s), pattern="(0)", replacement=""), "[^0-9]", "")
    arr = _sub(arr, "^(?:00)?44([0-9]{9,10})$", r"0\1")
    arr = _sub(arr, "^([1-9][0-9]{9})$", r"0\1")
    return _series(_null_if_empty(arr), s.index)


def standardise_email(s: pd.Series) -> pd.Series:
    """Trimmed, lower-case."""
    return _series(_trim(pc.utf8_lower(_arrow(s))), s.index)


def standardise_uprn(s: pd.Series) -> pd.Series:
    """Digits without leading zeros ('000100023336956' -> '100023336956'); a float's '.0' is dropped.

    Every character that trimming counts as white space goes first, inner ones too (RE2's
    white-space class alone misses the separators U+001C-U+001F, which then reappeared at the
    edge once the zeros before them were trimmed: '0<US>0' -> '<US>0' -> missing, not idempotent)."""
    arr = _sub(_sub(_arrow(s), _WHITE_SPACE, ""), r"^([0-9]+)\.0+$", r"\1")
    arr = pc.utf8_ltrim(arr, characters="0")
    return _series(_null_if_empty(arr), s.index)


def standardise_digits(s: pd.Series) -> pd.Series:
    """Digits only (sort codes '12-34-56' -> '123456', account numbers)."""
    arr = _sub(_sub(pc.utf8_trim_whitespace(_arrow(s)), r"^([0-9]+)\.0+$", r"\1"), "[^0-9]", "")
    return _series(_null_if_empty(arr), s.index)


def standardise_record_id(s: pd.Series) -> pd.Series:
    """Trimmed text; a spreadsheet float's '.0' is dropped ('1234.0' -> '1234')."""
    return _series(_sub(_trim(_arrow(s)), r"^([0-9]+)\.0+$", r"\1"), s.index)


#: The standardiser of each canonical text field: the one map the nightly ingest and the
#: labelled evaluation (``evaluation.labelled``) both apply.
STANDARDISERS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "record_id": standardise_record_id,
    "forenames": standardise_name,
    "surname": standardise_name,
    "previous_surname": standardise_name,
    "nino": standardise_nino,
    "address_lines": standardise_address,
    "postcode": standardise_postcode,
    "uprn": standardise_uprn,
    "email": standardise_email,
    "phone": standardise_phone,
    "bank_sort_code": standardise_digits,
    "bank_account": standardise_digits,
}
