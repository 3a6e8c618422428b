"""Ingest one extract: read -> map -> validate -> standardise, in memory.

``ingest_extract`` returns the canonical frame (``councilmatch.contracts.CANONICAL_COLUMNS``)
and the quarantined rows with their reasons; it writes nothing (the pipeline
pseudonymises the accepted rows, encrypts the quarantine and writes the manifest).

Decisions worth knowing:
- A row is quarantined only for what makes it unusable: a mandatory field (or
  record_id) missing or invalid, a duplicate record id, a hostile cell, a ragged
  row; every reason is "field: problem" and the reasons are "; "-joined.
- An invalid *optional* value (a malformed NINO, phone, email or UPRN, an
  unparseable optional date, a digit in a previous surname) is set to missing and
  the row goes on to matching: quarantining it would lose the record, and would
  let anyone evade matching by giving a malformed phone number. The problem is
  counted per field and reason (``IngestResult.quality["set_missing"]``) and the
  vault keeps the value as sent (``IngestResult.vault_frame``). A feed can list
  optional fields whose invalid value should quarantine (``quarantine_invalid``).
- Formula-looking cells ('=SUM(...)', '+cmd|...', '@HYPERLINK(...)') are
  quarantined, not neutralised: they are either an injection attempt or a broken
  export, and either way the council should see them. Plain '-12.50' or
  '+44 7700 900123' are not formulas.
- Duplicate record ids: the first occurrence in file order is kept (if valid),
  the second and later are quarantined as "record_id: duplicate".
- A re-sent extract (``RowMemory``): rows the feed's last extract accepted, unchanged as sent
  (keyed raw-row digest), are not validated or standardised again; the profile and the
  placeholder rules still see every row (see ``ingest_extract``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from councilmatch.contracts import CANONICAL_COLUMNS, DATASETS, DATE_FIELDS, IDENTIFIERS
from councilmatch.safepath import sanitise_name
from ingest import standardise as std
from ingest import validate as val
from ingest.feed import FeedDefinition
from ingest.placeholders import FOR_MATCHING, clear_placeholders, placeholder_bits
from ingest.quality import ProfileBuilder
from ingest.read import ExtractError, RawExtract, read_extract

NAME_FIELDS = ("forenames", "surname", "previous_surname")
_FORMAT_CHECKS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "nino": val.invalid_nino,
    "postcode": val.invalid_postcode,
    "uprn": val.invalid_uprn,
    "email": val.invalid_email,
    "phone": val.invalid_phone,
    "bank_sort_code": lambda s: val.invalid_digits(s, 6),
    "bank_account": lambda s: val.invalid_digits(s, 8),
}
QUARANTINE_COLUMNS = ("row_number", "record_id", "reasons", "raw")
#: Bit i of a row's ``cleared`` mask: CANONICAL_COLUMNS[i] was set to missing (invalid optional value).
CLEARED_BITS: dict[str, int] = {c: i for i, c in enumerate(CANONICAL_COLUMNS)}
_NON_IDENTIFYING_DATES = tuple(f for f in DATE_FIELDS if f not in IDENTIFIERS)


@dataclass
class PreviousRows:
    """The feed's last extract's accepted rows, in accepted order (``anonymise.reuse`` keeps them):
    their raw-row digests, what validation did to them, and their vaulted clear values."""

    digests: np.ndarray            # uint64 raw-row digest (``raw_row_digests``)
    cleared: np.ndarray            # uint32 ``CLEARED_BITS`` mask
    reasons: np.ndarray            # object: "; "-joined reasons of the cleared values, or None
    placeholders: np.ndarray       # uint16 ``placeholders.placeholder_bits``
    vault: pd.DataFrame            # the vaulted clear values (text, optional values as sent)
    today: str                     # ISO date the previous extract was validated on


@dataclass
class RowMemory:
    """Skip a re-sent extract's unchanged rows: ``key`` keys the raw-row digests (ingest holds
    no keyring); ``previous`` is None on a feed's first extract (digests are still made)."""

    key: bytes
    previous: PreviousRows | None = None


@dataclass
class AcceptedRows:
    """Per accepted row (file order) of an ingest with a ``RowMemory``: where it came from and what
    the next extract needs to skip it. ``IngestResult.accepted`` then holds only the fresh rows."""

    reused_from: np.ndarray        # int64: position in the previous extract's accepted rows, or -1 (fresh)
    digests: np.ndarray
    cleared: np.ndarray
    reasons: np.ndarray
    placeholders: np.ndarray

    @property
    def reused(self) -> int:
        return int(np.count_nonzero(self.reused_from >= 0))

#: Rows validated and standardised at a time (bounds the temporaries, not the result).
BATCH_ROWS = 200_000


@dataclass
class IngestResult:
    feed_id: str
    extract_path: Path
    extract_id: str
    checksum: str
    feed_version: int
    rows_in: int
    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    #: header problems that did not stop the ingest (e.g. an optional column missing)
    warnings: list[str] = field(default_factory=list)
    blank_rows: int = 0
    #: add to row_number for the file line (CSV) / sheet row (XLSX); Parquet: -1 gives the row index
    header_offset: int = 1
    ingested_at: str = ""
    #: the data-quality profile (counts, rates and shapes only; see ingest.quality)
    quality: dict = field(default_factory=dict)
    #: optional values set to missing, as sent: (position in accepted, field, value); clear, vault only
    as_sent: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"position": pd.Series(dtype="int64"), "field": pd.Series(dtype=object), "value": pd.Series(dtype=object)}))
    #: with a ``RowMemory``: every accepted row's origin and digests (``accepted`` is then the fresh rows only)
    rows: AcceptedRows | None = None

    @property
    def accepted_count(self) -> int:
        return len(self.rows.reused_from) if self.rows is not None else len(self.accepted)

    def for_pseudonymising(self) -> pd.DataFrame:
        """The fresh accepted rows as they are pseudonymised: placeholder values (judged over the
        whole extract, ``ingest.placeholders``) missing, so that two dummies never agree. The same
        at the hub and at source (``anonymise.at_source``); needs an ingest with a ``RowMemory``,
        which judges them."""
        if self.rows is None:
            raise RuntimeError(f"{self.feed_id}: ingested without a RowMemory, so no placeholder was judged")
        return clear_placeholders(self.accepted, self.rows.placeholders[self.rows.reused_from < 0])

    def vault_frame(self) -> pd.DataFrame:
        """The accepted rows for the vault: an optional value set to missing is kept as the council sent it,
        so an investigator sees what the council holds (dates as YYYY-MM-DD text where valid)."""
        if self.as_sent.empty:
            return self.accepted
        frame = self.accepted.copy()
        for fld, part in self.as_sent.groupby("field", sort=False):
            if fld not in IDENTIFIERS:
                continue  # non-identifying fields are not vaulted
            col = frame[fld]
            if pd.api.types.is_datetime64_any_dtype(col):
                col = col.dt.strftime("%Y-%m-%d")
            values = col.astype(object).to_numpy()
            values[part["position"].to_numpy()] = part["value"].to_numpy(dtype=object)
            frame[fld] = pd.Series(values, index=frame.index).astype("string[pyarrow]")
        return frame

    def quarantine_counts(self) -> dict[str, int]:
        """Rows per reason ("field: problem"); a row with two reasons counts under both."""
        if self.quarantined.empty:
            return {}
        counts = self.quarantined["reasons"].str.split("; ").explode().value_counts()
        return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}

    def manifest(self) -> dict:
        """What was ingested, with counts only: no clear identifier and no cell value."""
        council, _, dataset = self.feed_id.partition("/")
        return {
            "feed_id": self.feed_id,
            "council": council,
            "dataset": dataset,
            "feed_version": self.feed_version,
            "extract_id": self.extract_id,
            "extract_file": self.extract_path.name,
            "checksum": self.checksum,
            "rows_in": self.rows_in,
            "accepted": self.accepted_count,
            "quarantined": len(self.quarantined),
            "blank_rows": self.blank_rows,
            "quarantine_reasons": self.quarantine_counts(),
            "set_missing": dict(self.quality.get("set_missing", {})),
            "quality": self.quality,
            "warnings": list(self.warnings),
            "ingested_at": self.ingested_at,
        }


def file_checksum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _normal(name: str) -> str:
    return " ".join(str(name).split()).casefold()


class _Reasons:
    """Collects (mask, "field: problem") pairs and joins them per row."""

    def __init__(self, n: int):
        self.text = np.full(n, "", dtype=object)
        self.any = np.zeros(n, dtype=bool)

    def add(self, mask: pd.Series | np.ndarray, reason: str) -> None:
        m = np.asarray(mask, dtype=bool)
        if m.any():
            self.text[m] = self.text[m] + ("; " + reason)
            self.any |= m

    def joined(self) -> np.ndarray:
        return np.array([t[2:] for t in self.text[self.any]], dtype=object)


def _resolve_columns(feed: FeedDefinition, raw: RawExtract, path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Canonical field -> the header's source columns, plus header warnings; a header lacking
    a mandatory or required column is unusable."""
    lookup: dict[str, str] = {}
    repeated: set[str] = set()
    for h in raw.header:
        if _normal(h) in lookup:
            repeated.add(_normal(h))
        lookup.setdefault(_normal(h), h)
    twice = [n for f in feed.columns for n in feed.source_columns(f) if _normal(n) in repeated]
    if twice:
        raise ExtractError(path, f"column(s) {', '.join(repr(n) for n in twice)} appear more than once in the header")
    spec = DATASETS[feed.dataset]
    must = set(feed.mandatory) | set(spec.required) | {"record_id"}
    resolved: dict[str, list[str]] = {}
    warnings: list[str] = []
    missing_must: list[str] = []
    for fld in feed.columns:
        names = feed.source_columns(fld)
        found = [lookup[_normal(n)] for n in names if _normal(n) in lookup]
        absent = [n for n in names if _normal(n) not in lookup]
        if not found:
            if fld in must:
                missing_must.append(f"{', '.join(repr(n) for n in absent)} ({fld})")
            else:
                warnings.append(f"column {', '.join(repr(n) for n in absent)} mapped to {fld} is not in the header; {fld} left empty")
            continue
        if absent:
            warnings.append(f"column {', '.join(repr(n) for n in absent)} mapped to {fld} is not in the header")
        resolved[fld] = found
    if missing_must:
        raise ExtractError(
            path,
            f"header does not match feed {feed.feed_id} (version {feed.version}): missing column(s) "
            f"{'; '.join(missing_must)}; header has: {', '.join(raw.header)}",
        )
    return resolved, warnings


def _map_fields(frame: pd.DataFrame, resolved: dict[str, list[str]]) -> dict[str, pd.Series]:
    """Canonical field -> trimmed source text (blank -> NA; several columns joined with ', ')."""
    mapped: dict[str, pd.Series] = {}
    for fld, columns in resolved.items():
        parts = [frame[c].astype("string[pyarrow]").str.strip() for c in columns]
        parts = [p.mask(p == "") for p in parts]
        joined = parts[0]
        for p in parts[1:]:
            both = joined.notna() & p.notna()
            joined = joined.where(~both, joined + ", " + p).fillna(p)
        mapped[fld] = joined
    return mapped


class _Checks:
    """Routes each (mask, field, problem): quarantine the row if the field must be valid (mandatory,
    record_id, ``quarantine_invalid``), otherwise set the value to missing and count it."""

    def __init__(self, n: int, quarantine_fields: set[str]):
        self.reasons = _Reasons(n)
        self.n = n
        self.quarantine_fields = quarantine_fields
        self.invalid_any: dict[str, np.ndarray] = {}
        self.counts: Counter[str] = Counter()
        self.cleared: dict[str, np.ndarray] = {}
        self.cleared_reasons: list[tuple[str, np.ndarray]] = []

    def problem(self, mask: pd.Series | np.ndarray, fld: str, problem: str) -> None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            return
        reason = f"{fld}: {problem}"
        self.counts[reason] += int(np.count_nonzero(m))
        self.invalid_any[fld] = self.invalid_any.get(fld, np.zeros(self.n, dtype=bool)) | m
        if fld in self.quarantine_fields:
            self.reasons.add(m, reason)
        else:
            self.cleared[fld] = self.cleared.get(fld, np.zeros(self.n, dtype=bool)) | m
            self.cleared_reasons.append((reason, m))

    def clear(self, out: dict[str, pd.Series], fld: str) -> None:
        if fld in self.cleared:
            out[fld] = out[fld].mask(self.cleared[fld])

    def set_missing_counts(self) -> Counter[str]:
        """Optional values set to missing on rows that were not quarantined anyway."""
        keep = ~self.reasons.any
        return Counter({r: int(np.count_nonzero(m & keep)) for r, m in self.cleared_reasons if (m & keep).any()})


def _validate_and_standardise(
    feed: FeedDefinition, mapped: dict[str, pd.Series], n: int, today: dt.date, duplicate: np.ndarray
) -> tuple[pd.DataFrame, _Checks]:
    checks = _Checks(n, feed.quarantines_invalid())
    reasons = checks.reasons  # what always quarantines: hostile or broken cells, missing mandatory values
    index = pd.RangeIndex(n)
    out: dict[str, pd.Series] = {}
    na_text = pd.Series(pd.NA, index=index, dtype="string[pyarrow]")

    for fld, s in mapped.items():
        reasons.add(val.looks_like_formula(s), f"{fld}: formula-looking cell")
        reasons.add(val.too_long(s), f"{fld}: longer than {val.MAX_CELL_CHARS} characters")
        reasons.add(val.has_control_characters(s, is_id=fld == "record_id"), f"{fld}: control character")
    for fld in dict.fromkeys(["record_id", *feed.mandatory]):
        if fld in mapped:
            reasons.add(mapped[fld].isna(), f"{fld}: missing")

    for fld, fn in std.STANDARDISERS.items():
        if fld not in mapped:
            out[fld] = na_text
            continue
        out[fld] = fn(mapped[fld]).astype("string[pyarrow]")
        if fld in NAME_FIELDS:
            checks.problem(val.has_digits(mapped[fld]), fld, "contains digits")
            checks.problem(val.no_letters(mapped[fld], out[fld]), fld, "no letters")
        if fld in _FORMAT_CHECKS:
            checks.problem(_FORMAT_CHECKS[fld](out[fld]), fld, "invalid format")
        checks.clear(out, fld)
    reasons.add(duplicate, "record_id: duplicate")
    out["first_name"], out["middle_names"] = std.split_forenames(out["forenames"])

    for fld in DATE_FIELDS:
        if fld not in mapped:
            out[fld] = pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
            continue
        fmt = feed.date_format_for(fld)
        parsed, bad = val.parse_dates(mapped[fld], fmt)
        checks.problem(bad, fld, f"not a date in format {fmt}")
        if fld == "dob":
            parsed = val.fix_two_digit_birth_years(parsed, fmt, today)
        out[fld] = parsed
    checks.problem(val.dob_in_future(out["dob"], today), "dob", "in the future")
    checks.problem(val.dob_too_old(out["dob"], today), "dob", f"more than {val.MAX_AGE_YEARS} years ago")
    checks.clear(out, "dob")
    checks.problem(val.dob_in_future(out["date_of_death"], today), "date_of_death", "in the future")
    checks.problem(val.before(out["date_of_death"], out["dob"]), "date_of_death", "before dob")
    checks.problem(val.before(out["period_end"], out["period_start"]), "period_end", "before period_start")
    for fld in DATE_FIELDS:
        if fld in mapped:
            checks.clear(out, fld)

    if "amount" in mapped:
        out["amount"], bad = val.parse_amount(mapped["amount"])
        checks.problem(bad, "amount", "not a number")
        checks.clear(out, "amount")
    else:
        out["amount"] = pd.Series(np.nan, index=index, dtype="float64")
    if "discount" in mapped:
        out["discount"], bad = val.parse_bool(mapped["discount"], feed.true_values, feed.false_values)
        checks.problem(bad, "discount", "not one of true_values/false_values")
        checks.clear(out, "discount")
    else:
        out["discount"] = pd.Series(pd.NA, index=index, dtype="boolean")

    out["council"] = pd.Series(feed.council, index=index, dtype="string[pyarrow]")
    out["dataset"] = pd.Series(feed.dataset, index=index, dtype="string[pyarrow]")
    frame = pd.DataFrame({c: out[c] for c in CANONICAL_COLUMNS}, index=index)
    return frame, checks


def _large_text(s: pd.Series) -> pa.Array:
    array = s.array
    arr = (array._pa_array.combine_chunks() if hasattr(array, "_pa_array")  # noqa: SLF001 (Arrow view)
           else pa.array(s.astype(object).where(s.notna(), None), type=pa.large_string()))
    return pc.fill_null(arr.cast(pa.large_string()), "")  # blank and missing map alike (_map_fields)


def raw_row_digests(frame: pd.DataFrame, resolved: dict[str, list[str]], duplicate: np.ndarray, key: bytes,
                    context: str) -> np.ndarray:
    """uint64 per row: a keyed hash (pandas' SipHash, keyed) of the row's mapped cells as sent, joined
    by an Arrow kernel, and its duplicate flag, under a key that also covers ``context`` (the feed
    definition and the header mapping). Two rows with one digest get one outcome from validation
    and standardisation. A row whose cells hold the separator itself gets 0, which never matches."""
    hash_key = hashlib.sha256(key + b"\x1f" + context.encode()).digest()[:8].hex()
    columns = sorted({c for cs in resolved.values() for c in cs})
    arrays = [_large_text(frame[c]) for c in columns]
    arrays.append(pa.array(np.where(np.asarray(duplicate, dtype=bool), "1", "0"), type=pa.large_string()))
    joined = pc.binary_join_element_wise(*arrays, pa.scalar("\x1f", pa.large_string()))
    digests = pd.util.hash_array(joined.to_numpy(zero_copy_only=False), hash_key=hash_key).astype(np.uint64)
    ambiguous = pc.count_substring(joined, "\x1f").to_numpy(zero_copy_only=False) != len(arrays) - 1
    digests[ambiguous] = 0
    return digests


def vault_text(col: pd.Series) -> pd.Series:
    """A clear value as the vault keeps it (``anonymise.vault``): dates as YYYY-MM-DD text,
    Arrow-backed strings, missing as NA."""
    text = col.dt.strftime("%Y-%m-%d") if pd.api.types.is_datetime64_any_dtype(col) else col
    return text.astype("string[pyarrow]")


def _date_flip_risk(mapped: dict[str, pd.Series], feed: FeedDefinition, before: dt.date, today: dt.date) -> np.ndarray:
    """Rows whose date checks could come out differently today than on ``before`` (a date of birth
    or death near either day, or near either day 120 or 100 years back): validated afresh."""
    n = len(next(iter(mapped.values()))) if mapped else 0
    risk = np.zeros(n, dtype=bool)
    if before == today:
        return risk
    lo = pd.Timestamp(min(before, today)) - pd.Timedelta(days=2)
    hi = pd.Timestamp(max(before, today)) + pd.Timedelta(days=2)
    for fld in ("dob", "date_of_death"):
        if fld not in mapped:
            continue
        parsed, _ = val.parse_dates(mapped[fld], feed.date_format_for(fld))
        for years in ((0, 100, val.MAX_AGE_YEARS, val.MAX_AGE_YEARS + 100) if fld == "dob" else (0,)):
            shifted = parsed + pd.DateOffset(years=years) if years else parsed
            risk |= ((shifted >= lo) & (shifted <= hi)).fillna(False).to_numpy(dtype=bool)
    return risk


def _reused_part(prev: PreviousRows, source: np.ndarray, mapped: dict[str, pd.Series], feed: FeedDefinition,
                 today: dt.date) -> pd.DataFrame:
    """The reused rows as the profile and the placeholder rules see them: their vaulted clear values,
    and the non-identifying dates (not vaulted) parsed again from the cells as sent."""
    part = prev.vault.iloc[source].reset_index(drop=True)
    cleared = prev.cleared[source]
    for fld in _NON_IDENTIFYING_DATES:
        if fld in mapped:
            parsed, _ = val.parse_dates(mapped[fld], feed.date_format_for(fld))
            gone = (cleared >> CLEARED_BITS[fld]) & 1 == 1
            part[fld] = parsed.mask(gone).reset_index(drop=True)
        else:
            part[fld] = pd.Series(pd.NaT, index=part.index, dtype="datetime64[ns]")
    return part


def _matching_frame(frame: pd.DataFrame, cleared: np.ndarray | None) -> pd.DataFrame:
    """The placeholder rules' input from vault-form text: invalid optional values missing, dob a date."""
    out = pd.DataFrame(index=frame.index)
    for fld in FOR_MATCHING:
        col = frame[fld] if fld in frame.columns else pd.Series(None, index=frame.index, dtype=object)
        if cleared is not None:
            col = col.mask((cleared >> CLEARED_BITS[fld]) & 1 == 1)
        out[fld] = pd.to_datetime(col, format="ISO8601") if fld == "dob" else col.astype("string[pyarrow]")
    return out


def ingest_extract(
    feed: FeedDefinition,
    path: Path,
    *,
    today: dt.date | None = None,
    on_stage: Callable[[str], None] | None = None,
    rows: RowMemory | None = None,
) -> IngestResult:
    """Read, map, validate and standardise one extract; rows_in == accepted + quarantined.

    Deterministic: the same extract gives the same frames (``today`` fixes the
    date-of-birth checks for tests). Raises ``ExtractError`` if the file is unusable.

    With ``rows`` (a re-sent extract, ``RowMemory``): a row whose raw-row digest equals one of
    the previous extract's accepted rows is not validated or standardised again; it is accepted
    as it was (``IngestResult.rows.reused_from``), its profile counts come from what was kept of
    it, and ``accepted`` holds only the fresh rows. Bad rows are never skipped (they were not
    accepted), so the quarantine is always made afresh. If tonight's placeholder rules (which
    count values over the whole column) would treat a skipped row differently, the extract is
    ingested again with nothing skipped.
    """
    path = Path(path)
    stage = on_stage or (lambda _s: None)
    today = today or dt.date.today()
    stage("checksum")
    checksum = file_checksum(path) if path.is_file() else ""
    stage("read")
    raw = read_extract(feed, path)
    stage("map")
    resolved, warnings = _resolve_columns(feed, raw, path)
    n = len(raw.frame)
    record_ids = _map_fields(raw.frame, {"record_id": resolved["record_id"]})["record_id"]
    duplicate = val.duplicated_ids(std.standardise_record_id(record_ids)).to_numpy()

    prev = rows.previous if rows is not None else None
    source = np.full(n, -1, dtype=np.int64)  # position among the previous extract's accepted rows
    digests = np.zeros(n, dtype=np.uint64)
    if rows is not None:
        stage("digest rows")
        context = json.dumps({"feed": feed.model_dump(mode="json"), "resolved": resolved}, sort_keys=True)
        digests = raw_row_digests(raw.frame, resolved, duplicate, rows.key, context)
        if prev is not None and len(prev.digests):
            order = np.argsort(prev.digests, kind="stable")
            ranked = prev.digests[order]
            pos = np.minimum(np.searchsorted(ranked, digests), len(ranked) - 1)
            source = np.where((ranked[pos] == digests) & (digests != 0), order[pos], -1)
    prev_today = dt.date.fromisoformat(prev.today) if prev is not None else today

    # batches bound the memory the Arrow temporaries take; ids were checked across the whole file
    accepted_parts: list[pd.DataFrame] = []
    bad_parts: list[np.ndarray] = []
    reason_parts: list[np.ndarray] = []
    sent_parts: list[pd.DataFrame] = []
    origin_parts: list[np.ndarray] = []  # per accepted row: previous position or -1
    cleared_parts: list[np.ndarray] = []
    why_parts: list[np.ndarray] = []
    reused_parts: list[pd.DataFrame] = []
    profile = ProfileBuilder(list(resolved), [f for f in feed.columns if f not in resolved])
    accepted_so_far = 0
    for start in range(0, max(n, 1), BATCH_ROWS):
        stop = min(n, start + BATCH_ROWS)
        stage(f"validate rows {start + 1:,}-{stop:,} of {n:,}")
        mapped_all = _map_fields(raw.frame.iloc[start:stop].reset_index(drop=True), resolved)
        src = source[start:stop]
        if (src >= 0).any() and prev_today != today:
            src = np.where(_date_flip_risk(mapped_all, feed, prev_today, today), -1, src)
            source[start:stop] = src
        fresh = src < 0
        mapped = mapped_all if fresh.all() else {k: v[fresh].reset_index(drop=True) for k, v in mapped_all.items()}
        nf = int(np.count_nonzero(fresh))
        canonical, checks = _validate_and_standardise(feed, mapped, nf, today, duplicate[start:stop][fresh])
        keep = ~checks.reasons.any
        accepted_parts.append(canonical.loc[keep])
        bad = np.zeros(stop - start, dtype=bool)
        bad[fresh] = checks.reasons.any
        bad_parts.append(bad)
        reason_parts.append(checks.reasons.joined())
        position = accepted_so_far + np.cumsum(keep) - 1
        for fld, cleared in checks.cleared.items():
            sel = cleared & keep
            if sel.any():
                sent_parts.append(pd.DataFrame({"position": position[sel].astype(np.int64), "field": fld,
                                                "value": mapped[fld][sel].to_numpy(dtype=object)}))
        accepted_so_far += int(np.count_nonzero(keep))
        if stop > start:
            profile.add_batch(mapped_all, stop - start, {}, Counter(), Counter())  # missing, date shapes: all rows
            profile.add_checks(checks.invalid_any, checks.counts, checks.set_missing_counts())  # fresh rows
        if rows is not None:
            bits = np.zeros(nf, dtype=np.uint32)
            why = np.full(nf, "", dtype=object)
            for fld, m in checks.cleared.items():
                bits |= m.astype(np.uint32) << np.uint32(CLEARED_BITS[fld])
            for reason, m in checks.cleared_reasons:
                why[m] = why[m] + ("; " + reason)
            accepted_here = ~bad
            origin = src[accepted_here]
            cleared_here = np.zeros(len(origin), dtype=np.uint32)
            why_here = np.full(len(origin), None, dtype=object)
            is_fresh = origin < 0
            cleared_here[is_fresh] = bits[keep]
            joined = pd.Series(why[keep], dtype=object).str.slice(2)
            why_here[is_fresh] = joined.where(joined != "", None).to_numpy(dtype=object)
            if (~is_fresh).any():
                cleared_here[~is_fresh] = prev.cleared[origin[~is_fresh]]
                why_here[~is_fresh] = prev.reasons[origin[~is_fresh]]
                profile.add_reused(cleared_here[~is_fresh], why_here[~is_fresh], CLEARED_BITS)
                reused_mapped = {k: v[~fresh].reset_index(drop=True) for k, v in mapped_all.items()}
                reused_parts.append(_reused_part(prev, origin[~is_fresh], reused_mapped, feed, today))
            origin_parts.append(origin)
            cleared_parts.append(cleared_here)
            why_parts.append(why_here)
        del mapped, mapped_all, canonical

    stage("quarantine")
    accepted = pd.concat(accepted_parts, ignore_index=True) if len(accepted_parts) > 1 else accepted_parts[0].reset_index(drop=True)
    bad = np.concatenate(bad_parts)
    raw_json = (
        raw.frame.loc[bad].to_json(orient="records", lines=True, force_ascii=False).split("\n")
        if bad.any() else []
    )
    quarantined = pd.DataFrame({
        "row_number": raw.row_number[bad].astype(np.int64),
        "record_id": record_ids[bad].to_numpy(dtype=object),
        "reasons": np.concatenate(reason_parts),
        "raw": [r for r in raw_json if r],
    })
    if raw.bad_rows:
        ragged = pd.DataFrame({
            "row_number": np.array([b.row_number for b in raw.bad_rows], dtype=np.int64),
            "record_id": None,
            "reasons": [b.reason for b in raw.bad_rows],
            "raw": [b.raw for b in raw.bad_rows],
        })
        quarantined = pd.concat([quarantined, ragged], ignore_index=True)
    quarantined = quarantined.sort_values("row_number", kind="stable").reset_index(drop=True)
    quarantined["record_id"] = quarantined["record_id"].astype("string[pyarrow]")
    quarantined = quarantined[list(QUARANTINE_COLUMNS)]

    rows_in = n + len(raw.bad_rows)
    result = IngestResult(
        feed_id=feed.feed_id,
        extract_path=path,
        # the landing file's name is the council's: made a safe name ('x (1).csv' -> 'x_1')
        extract_id=f"{sanitise_name(path.stem, 'extract')}-{checksum[:12]}",
        checksum=checksum,
        feed_version=feed.version,
        rows_in=rows_in,
        accepted=accepted,
        quarantined=quarantined,
        warnings=warnings,
        blank_rows=raw.blank_rows,
        header_offset=raw.header_offset,
        ingested_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    if sent_parts:
        result.as_sent = pd.concat(sent_parts, ignore_index=True)
    if rows is not None:
        origin = np.concatenate(origin_parts) if origin_parts else np.zeros(0, dtype=np.int64)
        result.rows = AcceptedRows(origin, digests[~bad], np.concatenate(cleared_parts) if cleared_parts else
                                   np.zeros(0, dtype=np.uint32), np.concatenate(why_parts) if why_parts else
                                   np.zeros(0, dtype=object), np.zeros(len(origin), dtype=np.uint16))
    if rows_in != result.accepted_count + len(quarantined):  # never expected: a bug, not bad data
        raise RuntimeError(f"{path}: rows do not reconcile ({rows_in} in, {result.accepted_count} accepted, "
                           f"{len(quarantined)} quarantined)")
    stage("profile")
    masks: dict[str, np.ndarray] = {}
    if result.rows is None or not result.rows.reused:
        result.quality = profile.finish(result.vault_frame(), int(np.count_nonzero(duplicate)), rows_in, masks)
        if result.rows is not None:  # the profile saw optional values as sent: its masks hold where none was cleared
            alike = set(masks) - set(result.as_sent["field"].unique())
            result.rows.placeholders = placeholder_bits(accepted, {f: masks[f] for f in alike})
        return result
    # some rows were skipped: the profile and the placeholder rules see every accepted row, the
    # skipped ones as they were vaulted (text), the fresh ones turned into the same form
    fresh_frame = result.vault_frame()
    fresh_text = pd.DataFrame({c: vault_text(fresh_frame[c]) for c in IDENTIFIERS + ("record_id",)})
    for fld in _NON_IDENTIFYING_DATES:
        fresh_text[fld] = fresh_frame[fld]
    reused = pd.concat(reused_parts, ignore_index=True)[list(fresh_text.columns)]
    origin = result.rows.reused_from
    everything = pd.concat([fresh_text.set_axis(np.flatnonzero(origin < 0)),
                            reused.set_axis(np.flatnonzero(origin >= 0))]).sort_index()
    result.quality = profile.finish(everything, int(np.count_nonzero(duplicate)), rows_in, masks)
    cleared_any = np.bitwise_or.reduce(result.rows.cleared) if len(result.rows.cleared) else 0
    alike = {f: m for f, m in masks.items() if f in CLEARED_BITS and not (cleared_any >> CLEARED_BITS[f]) & 1}
    bits = placeholder_bits(_matching_frame(everything, result.rows.cleared), alike)
    if not np.array_equal(bits[origin >= 0], prev.placeholders[origin[origin >= 0]]):
        # tonight's placeholder rules treat a skipped row differently: nothing is skipped
        stage("placeholders changed: every row validated again")
        return ingest_extract(feed, path, today=today, on_stage=on_stage, rows=RowMemory(rows.key, None))
    result.rows.placeholders = bits
    return result


__all__ = ["AcceptedRows", "ExtractError", "IngestResult", "PreviousRows", "RowMemory", "file_checksum", "ingest_extract",
           "raw_row_digests", "vault_text"]
