"""Pure standardisers: each takes a pandas Series of text and returns the standardised Series.

These produce the forms documented in ``councilmatch.contracts`` and are reused
outside ingest (e.g. to standardise FEBRL data for evaluation), so they know
nothing about feeds. Missing or blank input becomes ``pd.NA``. Every function
is idempotent: standardising a standardised value changes nothing. They never
reject a value; ``ingest.validate`` decides what is invalid.
"""

from __future__ import annotations

import re

import pandas as pd

#: Letters NFKD does not decompose into ASCII.
_FOLD = str.maketrans({
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i",
})
_APOSTROPHES = r"['’‘`´ʼ]"
TITLES: tuple[str, ...] = (
    "MR", "MRS", "MS", "MISS", "MX", "MASTER", "DR", "PROF", "PROFESSOR", "SIR", "DAME",
    "LORD", "LADY", "REV", "REVD", "REVEREND", "FR", "CAPT", "CPT", "COL", "MAJ", "CLLR", "HON",
)
_TITLE_PREFIX = re.compile(r"^(?:(?:" + "|".join(TITLES) + r") )+(?=\S)")

#: Address abbreviations expanded word by word (ST is handled separately: SAINT or STREET).
ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "RD": "ROAD", "AVE": "AVENUE", "AV": "AVENUE", "LN": "LANE", "DR": "DRIVE", "CT": "COURT",
    "CRT": "COURT", "CL": "CLOSE", "CRES": "CRESCENT", "CRESC": "CRESCENT", "GDNS": "GARDENS",
    "GRN": "GREEN", "GR": "GROVE", "GRV": "GROVE", "PL": "PLACE", "SQ": "SQUARE", "TER": "TERRACE",
    "TERR": "TERRACE", "PK": "PARK", "PDE": "PARADE", "HSE": "HOUSE", "HO": "HOUSE", "BLDGS": "BUILDINGS",
    "APT": "APARTMENT", "FLT": "FLAT", "MT": "MOUNT",
    "UPR": "UPPER", "LWR": "LOWER", "GT": "GREAT", "CTR": "CENTRE", "EST": "ESTATE", "WY": "WAY",
    "HWY": "HIGHWAY", "BVD": "BOULEVARD", "BLVD": "BOULEVARD", "MWS": "MEWS", "WLK": "WALK", "EMB": "EMBANKMENT",
}
_ABBREV_RX = re.compile(r"\b(" + "|".join(sorted(ADDRESS_ABBREVIATIONS, key=len, reverse=True)) + r")\b")
_POSTCODE_TAIL = re.compile(r"(?:\s*\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})+$")


def _text(s: pd.Series) -> pd.Series:
    """Trimmed text with blanks as NA (object dtype so NA survives string ops)."""
    s = s.astype("string").str.strip()
    return s.mask(s == "")


def fold_diacritics(s: pd.Series) -> pd.Series:
    """'Zoë Ångström' -> 'Zoe Angstrom': NFKD then drop what is not ASCII."""
    s = s.astype("string").str.translate(_FOLD).str.normalize("NFKD")
    return s.str.encode("ascii", errors="ignore").str.decode("ascii").astype("string")


def _blank_to_na(s: pd.Series) -> pd.Series:
    s = s.str.replace(r"\s+", " ", regex=True).str.strip()
    return s.mask(s == "")


def standardise_name(s: pd.Series) -> pd.Series:
    """Upper-case ASCII letters and single spaces; titles, apostrophes and punctuation gone.

    "Mrs. Zoë O'Brien-Smith" -> "ZOE OBRIEN SMITH".
    """
    s = fold_diacritics(_text(s)).str.upper()
    s = s.str.replace(_APOSTROPHES, "", regex=True).str.replace(r"[^A-Z]+", " ", regex=True)
    s = _blank_to_na(s)
    return s.str.replace(_TITLE_PREFIX, "", regex=True)


def split_forenames(forenames: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Standardised forenames -> (first_name, middle_names); middle_names NA when there are none."""
    parts = forenames.astype("string").str.partition(" ")
    first = parts[0].mask(forenames.isna())
    middle = parts[2].mask(parts[2] == "")
    return first.astype("string"), middle.astype("string")


def standardise_postcode(s: pd.Series) -> pd.Series:
    """'sw1a1aa' -> 'SW1A 1AA': upper, no punctuation, one space before the inward code.

    Values too short to have an inward code (e.g. Australian '2000') stay compact.
    """
    s = fold_diacritics(_text(s)).str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)
    s = s.str.replace(r"^(.{2,})(.{3})$", r"\1 \2", regex=True)
    return s.mask(s == "")


def standardise_nino(s: pd.Series) -> pd.Series:
    """'ab 12 34 56 c' -> 'AB123456C': upper, letters and digits only."""
    s = fold_diacritics(_text(s)).str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)
    return s.mask(s == "")


def standardise_address(s: pd.Series) -> pd.Series:
    """Upper, punctuation removed, abbreviations expanded, trailing postcode dropped.

    "12, St. John's Rd., London SW1A 1AA" -> "12 SAINT JOHNS ROAD LONDON".
    """
    s = fold_diacritics(_text(s)).str.upper()
    s = s.str.replace(_APOSTROPHES, "", regex=True).str.replace(r"[^A-Z0-9]+", " ", regex=True)
    s = _blank_to_na(s)
    s = s.str.replace(_POSTCODE_TAIL, "", regex=True)
    # ST before a name at the start of the street (after a number) is SAINT, elsewhere STREET
    s = s.str.replace(r"(^|\d[A-Z]? )ST (?=[A-Z])", r"\1SAINT ", regex=True)
    s = s.str.replace(r"\bST\b", "STREET", regex=True)
    s = s.str.replace(_ABBREV_RX, lambda m: ADDRESS_ABBREVIATIONS[m.group(1)], regex=True)
    return _blank_to_na(s)


def standardise_phone(s: pd.Series) -> pd.Series:
    """Digits in national form: '+44 (0)7700 900123' -> '07700900123'.

    A leading 44/0044 becomes 0; ten digits without the 0 (lost by a spreadsheet) get it back.
    """
    s = _text(s).str.replace(r"\(0\)", "", regex=True).str.replace(r"\D", "", regex=True)
    s = s.str.replace(r"^(?:00)?44(\d{9,10})$", r"0\1", regex=True)
    s = s.str.replace(r"^([1-9]\d{9})$", r"0\1", regex=True)
    return s.mask(s == "")


def standardise_email(s: pd.Series) -> pd.Series:
    """Trimmed, lower-case."""
    return _text(s).str.lower()


def standardise_uprn(s: pd.Series) -> pd.Series:
    """Digits without leading zeros ('000100023336956' -> '100023336956'); a float's '.0' is dropped."""
    s = _text(s).str.replace(r"^(\d+)\.0+$", r"\1", regex=True).str.replace(r"\s", "", regex=True)
    s = s.str.lstrip("0")
    return s.mask(s == "")


def standardise_digits(s: pd.Series) -> pd.Series:
    """Digits only (sort codes '12-34-56' -> '123456', account numbers)."""
    s = _text(s).str.replace(r"^(\d+)\.0+$", r"\1", regex=True).str.replace(r"\D", "", regex=True)
    return s.mask(s == "")


def standardise_record_id(s: pd.Series) -> pd.Series:
    """Trimmed text; a spreadsheet float's '.0' is dropped ('1234.0' -> '1234')."""
    return _text(s).str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
