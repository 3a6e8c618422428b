"""Validators: vectorised checks on standardised values.

Each ``invalid_*`` function returns a boolean Series, True where a *present*
value breaks the rule (missing values are never invalid here; whether a field
may be missing is the feed's ``mandatory`` list). The parsers return the typed
Series plus the mask of values that did not parse.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: HMRC NINO rules: no D, F, I, Q, U, V in either prefix letter, no O second,
#: prefixes BG GB NK KN TN NT ZZ never issued; six digits; suffix A-D.
NINO_PATTERN = r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$"
NINO_UNISSUED_PREFIX = r"^(?:BG|GB|NK|KN|TN|NT|ZZ)"
#: UK postcode (standardised "SW1A 1AA"): outward A9, A99, AA9, AA99, A9A, AA9A; inward 9AA.
POSTCODE_PATTERN = r"^(?:[A-Z]{1,2}[0-9][A-Z0-9]?|GIR) [0-9][A-Z]{2}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
PHONE_PATTERN = r"^0[0-9]{9,10}$"
UPRN_PATTERN = r"^[0-9]{1,12}$"
#: A cell a spreadsheet would run: '=' anything, or '+', '-', '@' before a function
#: call, a cell reference with an operator, or a DDE link ('cmd|...!A0').
FORMULA_PATTERN = (
    r"^\s*(?:=\S|[+\-@]\s*[A-Za-z_][A-Za-z0-9_.]*\s*\(|[+\-@]\s*\$?[A-Za-z]{1,3}\$?[0-9]+\s*[-+*/^&:]|[=+\-@].*\|.*!)"
)
#: Longest plausible cell; longer values are quarantined rather than truncated.
MAX_CELL_CHARS = 500
#: Characters no identifier or text field may hold (RE2): C0 controls but tab, line feed and
#: carriage return (multi-line addresses), DEL, C1 controls, and the invisible format
#: characters that reorder or hide text (bidi overrides and isolates, zero width, BOM).
#: A NUL also makes PostgreSQL refuse the whole publish.
CONTROL_PATTERN = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\x{200B}-\x{200F}\x{2028}-\x{202E}\x{2066}-\x{2069}\x{FEFF}]"
#: Ids also refuse tab, line feed and carriage return.
ID_CONTROL_PATTERN = r"[\x00-\x1F\x7F-\x9F\x{200B}-\x{200F}\x{2028}-\x{202E}\x{2066}-\x{2069}\x{FEFF}]"
MAX_AGE_YEARS = 120


def _arrow(s: pd.Series) -> pa.Array:
    if not (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        s = s.astype("string[pyarrow]")
    return s.array._pa_array.combine_chunks()  # noqa: SLF001


def _present(s: pd.Series) -> np.ndarray:
    return s.notna().to_numpy()


def matches(s: pd.Series, pattern: str) -> np.ndarray:
    """RE2 search (anchor the pattern for a full match); missing -> False."""
    hit = pc.fill_null(pc.match_substring_regex(_arrow(s), pattern=pattern), False)
    return hit.to_numpy(zero_copy_only=False)


def _fails(s: pd.Series, pattern: str) -> pd.Series:
    return pd.Series(_present(s) & ~matches(s, pattern), index=s.index)


def invalid_nino(s: pd.Series) -> pd.Series:
    """Standardised NINOs ("AB123456C") that HMRC would never issue."""
    bad = _fails(s, NINO_PATTERN).to_numpy() | matches(s, NINO_UNISSUED_PREFIX)
    return pd.Series(bad, index=s.index)


def invalid_postcode(s: pd.Series) -> pd.Series:
    """Standardised postcodes not in UK format."""
    return _fails(s, POSTCODE_PATTERN)


def invalid_email(s: pd.Series) -> pd.Series:
    return _fails(s, EMAIL_PATTERN)


def invalid_phone(s: pd.Series) -> pd.Series:
    """National-form phone numbers that are not 10 or 11 digits starting 0."""
    return _fails(s, PHONE_PATTERN)


def invalid_uprn(s: pd.Series) -> pd.Series:
    return _fails(s, UPRN_PATTERN)


def invalid_digits(s: pd.Series, n: int) -> pd.Series:
    """Digit strings that are not exactly ``n`` digits (sort code 6, account 8)."""
    return _fails(s, rf"^[0-9]{{{n}}}$")


def looks_like_formula(s: pd.Series) -> pd.Series:
    """Raw cells a spreadsheet would execute (CSV injection)."""
    return pd.Series(matches(s, FORMULA_PATTERN), index=s.index)


def has_control_characters(s: pd.Series, *, is_id: bool = False) -> pd.Series:
    """Present values holding a control or invisible format character (see ``CONTROL_PATTERN``)."""
    return pd.Series(matches(s, ID_CONTROL_PATTERN if is_id else CONTROL_PATTERN), index=s.index)


def too_long(s: pd.Series, limit: int = MAX_CELL_CHARS) -> pd.Series:
    n = pc.fill_null(pc.utf8_length(_arrow(s)), 0).to_numpy(zero_copy_only=False)
    return pd.Series(n > limit, index=s.index)


def no_letters(raw: pd.Series, standardised: pd.Series) -> pd.Series:
    """Names given but nothing left after standardisation (e.g. '???')."""
    return pd.Series(_present(raw) & standardised.isna().to_numpy(), index=raw.index)


def has_digits(raw: pd.Series) -> pd.Series:
    return pd.Series(matches(raw, "[0-9]"), index=raw.index)


_FORMAT_CODES = {"%d": "(?P<d>[0-9]{1,2})", "%m": "[0-9]{1,2}", "%Y": "[0-9]{4}", "%y": "[0-9]{2}",
                 "%b": "[A-Za-z]{3}", "%B": "[A-Za-z]+", "%H": "[0-9]{1,2}", "%M": "[0-9]{1,2}", "%S": "[0-9]{1,2}"}


def _format_regex(fmt: str) -> str | None:
    """An RE2 pattern matching exactly what ``fmt`` produces, capturing the day; None if unsupported."""
    if "%d" not in fmt:
        return None
    out, i = "^", 0
    while i < len(fmt):
        if fmt[i] == "%":
            code = fmt[i:i + 2]
            if code not in _FORMAT_CODES:
                return None
            out += _FORMAT_CODES[code]
            i += 2
        else:
            out += "\\" + fmt[i] if not fmt[i].isalnum() else fmt[i]
            i += 1
    return out + "$"


def parse_dates(s: pd.Series, fmt: str) -> tuple[pd.Series, pd.Series]:
    """Parse with the feed's format; ISO 'YYYY-MM-DD' (e.g. native spreadsheet dates) is always accepted.

    Fast path: Arrow's strptime, trusted only where the text matches the format
    exactly and its day survives parsing (Arrow rolls '31/02/1980' over to March);
    everything else goes through pandas' strict parser. Returns (datetime64[ns] Series, mask of present
    values that did not parse).
    """
    text = pc.utf8_trim_whitespace(_arrow(s))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    fast = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    year = pc.year(fast)
    trusted = pc.and_(pc.greater(year, 1677), pc.less(year, 2262))
    pattern = _format_regex(fmt)
    if pattern is not None:  # the text's own day must survive parsing: '31/02' rolls over to March
        parts = pc.extract_regex(text, pattern=pattern)
        day = pc.cast(pc.struct_field(parts, "d"), pa.int64())
        trusted = pc.and_(trusted, pc.equal(day, pc.day(fast)))
    trusted = pc.fill_null(trusted, False).to_numpy(zero_copy_only=False)
    values = fast.cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False) if trusted.any() else None
    parsed = pd.Series(np.where(trusted, values, np.datetime64("NaT", "ns")) if values is not None
                       else np.full(len(s), np.datetime64("NaT", "ns")), index=s.index, dtype="datetime64[ns]")
    present = pc.is_valid(text).to_numpy(zero_copy_only=False)
    slow = present & ~trusted
    if slow.any():
        rest = pd.Series(text.filter(pa.array(slow)).to_pylist(), dtype=object)
        got = pd.to_datetime(rest, format=fmt, errors="coerce")
        iso = rest.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}") & got.isna()
        if fmt != "%Y-%m-%d" and iso.any():
            got = got.where(~iso, pd.to_datetime(rest.where(iso), format="%Y-%m-%d", errors="coerce"))
        parsed[slow] = got.astype("datetime64[ns]").to_numpy()
    parsed = parsed.dt.normalize()
    bad = parsed.isna().to_numpy() & present
    return parsed, pd.Series(bad, index=s.index)


def fix_two_digit_birth_years(dob: pd.Series, fmt: str, today: date) -> pd.Series:
    """With a two-digit year ('%y'), '01/01/45' means 1945 for a date of birth, not 2045."""
    if "%y" not in fmt:
        return dob
    future = dob > pd.Timestamp(today)
    return dob.where(~future, dob - pd.DateOffset(years=100))


def dob_in_future(dob: pd.Series, today: date) -> pd.Series:
    return pd.Series((dob > pd.Timestamp(today)).fillna(False).to_numpy(dtype=bool), index=dob.index)


def dob_too_old(dob: pd.Series, today: date, max_age: int = MAX_AGE_YEARS) -> pd.Series:
    limit = pd.Timestamp(today) - pd.DateOffset(years=max_age)
    return pd.Series((dob < limit).fillna(False).to_numpy(dtype=bool), index=dob.index)


def before(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """True where both dates are present and ``later`` < ``earlier`` (e.g. period_end < period_start)."""
    return pd.Series((later < earlier).fillna(False).to_numpy(dtype=bool), index=later.index)


def parse_amount(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """'£1,234.50' -> 1234.5; '(12.00)' -> -12.0. Returns (float64, mask of unparseable)."""
    text = s.astype("string[pyarrow]").str.strip()
    text = text.str.replace(r"^\((.*)\)$", r"-\1", regex=True).str.replace(r"[£,\s]", "", regex=True)
    values = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = values.isna().to_numpy() & _present(text)
    return values, pd.Series(bad, index=s.index)


def parse_bool(s: pd.Series, true_values: list[str], false_values: list[str]) -> tuple[pd.Series, pd.Series]:
    """Map the feed's true/false spellings (case-insensitive) to a nullable boolean."""
    text = s.astype("string[pyarrow]").str.strip().str.upper()
    is_true = text.isin([v.upper() for v in true_values]).fillna(False).to_numpy(dtype=bool)
    is_false = text.isin([v.upper() for v in false_values]).fillna(False).to_numpy(dtype=bool)
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[is_true] = True
    out[is_false] = False
    bad = _present(text) & ~is_true & ~is_false
    return out, pd.Series(bad, index=s.index)


def duplicated_ids(record_id: pd.Series) -> pd.Series:
    """Second and later occurrences of a present record id."""
    dup = record_id.duplicated(keep="first").to_numpy() & _present(record_id)
    return pd.Series(dup, index=record_id.index)
