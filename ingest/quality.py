"""The data-quality profile of one extract, and how it changed since the feed's previous one.

A data officer needs to see more than "accepted / quarantined": how many values of each
field are missing, invalid or placeholders, how many records are duplicated, and whether
the feed's shape changed overnight (a column renamed or emptied, the date format flipped,
placeholders spiking, half the rows gone). ``ingest_extract`` builds the profile
(``IngestResult.quality``); the pipeline and ``feeds check`` compare it with the feed's
previous extract (``compare``) and raise alerts.

The profile holds counts, rates and value *shapes* ("99/99/9999") only: never a value, so
it can go in manifests, run state and the run report.

Rates: ``missing`` and ``invalid`` are shares of the rows read (data rows that parsed);
``placeholder`` is a share of the accepted rows (``ingest.placeholders`` on the standardised
values, the same detector linkage uses to treat placeholders as missing).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from councilmatch.contracts import DATE_FIELDS
from ingest.placeholders import FIELD_KINDS, placeholder_mask

#: An alert is raised when a rate rises by at least this many points ...
RISE_POINTS = 0.05
#: ... and to at least this multiple of what it was.
RISE_FACTOR = 2.0
#: A column at least this empty, that was at most EMPTIED_BEFORE empty last time, was emptied.
EMPTIED_NOW, EMPTIED_BEFORE = 0.99, 0.5
#: Rows read falling below this share of the previous extract's.
ROWS_DROP = 0.5

#: Values per batch whose shape is taken (day/month order is counted on every value).
SHAPE_SAMPLE = 20_000
_TRIPLE = r"^(?P<a>[0-9]{1,4})[^0-9](?P<b>[0-9]{1,2})[^0-9](?P<c>[0-9]{2,4})"


def _arrow(s: pd.Series) -> pa.Array:
    return s.astype("string[pyarrow]").array._pa_array.combine_chunks()  # noqa: SLF001 (Arrow view)


#: Each byte's shape: ASCII digits '9', ASCII letters 'a', every other byte itself (so a
#: character of several UTF-8 bytes, none of them ASCII, stays as it was).
_SHAPE_OF_BYTE = np.arange(256, dtype=np.uint8)
_SHAPE_OF_BYTE[ord("0"):ord("9") + 1] = ord("9")
_SHAPE_OF_BYTE[ord("A"):ord("Z") + 1] = ord("a")
_SHAPE_OF_BYTE[ord("a"):ord("z") + 1] = ord("a")


def _shape_counts(text: pa.Array) -> dict[str, int]:
    """How many values have each shape (digits as 9, ASCII letters as a): '12/03/1990' -> '99/99/9999'.

    One table lookup over the array's bytes, kept in Arrow's offsets: the same shapes as two regex
    replacements (``[0-9]`` -> 9, ``[A-Za-z]`` -> a), about twenty times faster."""
    validity, offsets, data = text.buffers()
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    shapes = pa.Array.from_buffers(text.type, len(text), [validity, offsets, pa.py_buffer(_SHAPE_OF_BYTE[raw])],
                                   text.null_count, text.offset)
    counts = pc.value_counts(shapes)
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))


class ProfileBuilder:
    """Accumulates per-batch counts (ingest validates in batches), then finishes on the accepted frame."""

    def __init__(self, mapped_fields: list[str], absent_fields: list[str]) -> None:
        self.fields = list(dict.fromkeys([*mapped_fields, *absent_fields]))
        self.absent = set(absent_fields)
        self.rows = 0
        self.missing: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.set_missing: Counter[str] = Counter()
        self.shapes: dict[str, Counter[str]] = {}
        self.order: dict[str, Counter[str]] = {}

    def add_batch(self, mapped: dict[str, pd.Series], n: int, invalid_any: dict[str, np.ndarray],
                  reasons: Counter[str], set_missing: Counter[str]) -> None:
        self.rows += n
        for fld, s in mapped.items():
            self.missing[fld] += int(s.isna().sum())
        for fld, m in invalid_any.items():
            self.invalid[fld] += int(np.count_nonzero(m))
        self.reasons.update(reasons)
        self.set_missing.update(set_missing)
        for fld in DATE_FIELDS:
            if fld in mapped:
                self._add_date_style(fld, mapped[fld])

    def add_checks(self, invalid_any: dict[str, np.ndarray], reasons: Counter[str], set_missing: Counter[str]) -> None:
        """What validation found in rows validated tonight (``add_batch`` counted missing values on all rows)."""
        for fld, m in invalid_any.items():
            self.invalid[fld] += int(np.count_nonzero(m))
        self.reasons.update(reasons)
        self.set_missing.update(set_missing)

    def add_reused(self, cleared: np.ndarray, reasons: np.ndarray, bits: dict[str, int]) -> None:
        """Rows a re-sent extract did not validate again (accepted as before): their invalid values
        are the fields they had set to missing (``cleared`` bit masks), their reasons as kept."""
        for fld, bit in bits.items():
            count = int(np.count_nonzero((cleared >> np.uint32(bit)) & 1))
            if count:
                self.invalid[fld] += count
        kept = pd.Series(reasons, dtype=object).dropna()
        if len(kept):
            counts = {str(k): int(v) for k, v in kept.str.split("; ").explode().value_counts().items()}
            self.reasons.update(counts)
            self.set_missing.update(counts)

    def _add_date_style(self, fld: str, text: pd.Series) -> None:
        present = text.dropna()
        if present.empty:
            return
        text = _arrow(present)  # Arrow kernels from here: no per-row Python
        # the shape of a sample is enough to see the dominant format
        self.shapes.setdefault(fld, Counter()).update(_shape_counts(text.slice(0, SHAPE_SAMPLE)))
        parts = pc.extract_regex(text, pattern=_TRIPLE)
        first_text = pc.struct_field(parts, "a")
        first = pc.cast(first_text, pa.int64())
        second = pc.cast(pc.struct_field(parts, "b"), pa.int64())
        short_first = pc.less_equal(pc.utf8_length(first_text), 2)
        order = self.order.setdefault(fld, Counter())
        order["day-first"] += int(pc.sum(pc.and_(pc.greater(first, 12), short_first)).as_py() or 0)
        order["month-first"] += int(pc.sum(pc.and_(pc.greater(second, 12), short_first)).as_py() or 0)

    def _date_style(self, fld: str) -> str | None:
        shapes = self.shapes.get(fld)
        if not shapes:
            return None
        shape = shapes.most_common(1)[0][0]
        o = self.order.get(fld, Counter())
        if shape.startswith("9999"):
            order = "year-first"
        elif o["day-first"] and o["month-first"]:
            order = "mixed"
        elif o["day-first"]:
            order = "day-first"
        elif o["month-first"]:
            order = "month-first"
        else:
            order = "unclear" if "9/9" in shape or "9.9" in shape or "9-9" in shape else ""
        return f"{shape} {order}".strip()

    def finish(self, accepted: pd.DataFrame, duplicate_ids: int, rows_in: int,
               masks: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """``accepted``: the accepted rows with optional values as sent (``IngestResult.vault_frame``),
        so a placeholder that also broke the field's format ('UNKNOWN' as a NINO) is counted too.
        ``masks``: filled with each field's placeholder mask."""
        n, a = max(self.rows, 1), max(len(accepted), 1)
        fields: dict[str, dict[str, Any]] = {}
        for fld in self.fields:
            entry: dict[str, Any] = {
                "missing": self.rows if fld in self.absent else self.missing[fld],
                "invalid": self.invalid[fld],
            }
            kind = FIELD_KINDS.get(fld)
            if kind and fld != "record_id" and fld in accepted.columns and fld not in self.absent:
                mask = placeholder_mask(accepted[fld], kind).to_numpy(dtype=bool)
                entry["placeholder"] = int(mask.sum())
                if masks is not None:
                    masks[fld] = mask  # the caller's placeholder bits reuse them where values are alike
            else:
                entry["placeholder"] = 0
            entry["missing_rate"] = round(entry["missing"] / n, 4)
            entry["invalid_rate"] = round(entry["invalid"] / n, 4)
            entry["placeholder_rate"] = round(entry["placeholder"] / a, 4)
            if fld in self.absent:
                entry["not_in_header"] = True
            if fld in DATE_FIELDS:
                entry["date_style"] = self._date_style(fld)
            fields[fld] = entry
        person = [c for c in ("forenames", "surname", "dob", "address_lines", "postcode") if c in self.fields
                  and c not in self.absent]
        dup_records = int(accepted[person].dropna().duplicated().sum()) if person and len(accepted) else 0
        return {
            "rows_read": self.rows,
            "rows_in": rows_in,
            "accepted": len(accepted),
            "fields": fields,
            "invalid_reasons": dict(sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "set_missing": dict(sorted(self.set_missing.items(), key=lambda kv: (-kv[1], kv[0]))),
            "duplicate_record_ids": int(duplicate_ids),
            "duplicate_records": dup_records,
        }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _rose(now: float, before: float) -> bool:
    return now - before >= RISE_POINTS and now >= RISE_FACTOR * before


def compare(previous: dict[str, Any] | None, current: dict[str, Any], previous_extract: str | None = None) -> dict[str, Any]:
    """Change since the previous extract's profile, with the alerts a data officer must look at."""
    if not previous or not previous.get("fields"):
        return {"previous_extract": None, "alerts": []}
    alerts: list[str] = []
    before_rows, now_rows = int(previous.get("rows_in", 0)), int(current.get("rows_in", 0))
    if before_rows and now_rows < ROWS_DROP * before_rows:
        alerts.append(f"row count fell by more than half: {before_rows:,} -> {now_rows:,}")
    fields: dict[str, dict[str, float]] = {}
    for fld, now in current["fields"].items():
        was = previous["fields"].get(fld)
        if not was:
            continue
        delta = {k: round(now[k] - was[k], 4) for k in ("missing_rate", "invalid_rate", "placeholder_rate")
                 if k in now and k in was}
        fields[fld] = delta
        if now.get("not_in_header") and not was.get("not_in_header"):
            alerts.append(f"{fld}: its column is no longer in the header (renamed or dropped?)")
        elif now["missing_rate"] >= EMPTIED_NOW and was["missing_rate"] <= EMPTIED_BEFORE:
            alerts.append(f"{fld}: column emptied (missing {_pct(was['missing_rate'])} -> {_pct(now['missing_rate'])})")
        if now.get("date_style") and was.get("date_style") and _style_changed(was["date_style"], now["date_style"]):
            alerts.append(f"{fld}: date format changed ({was['date_style']} -> {now['date_style']})")
        if _rose(now.get("placeholder_rate", 0.0), was.get("placeholder_rate", 0.0)):
            alerts.append(f"{fld}: placeholders rose ({_pct(was['placeholder_rate'])} -> {_pct(now['placeholder_rate'])})")
        if _rose(now.get("invalid_rate", 0.0), was.get("invalid_rate", 0.0)):
            alerts.append(f"{fld}: invalid values rose ({_pct(was['invalid_rate'])} -> {_pct(now['invalid_rate'])})")
    return {
        "previous_extract": previous_extract,
        "rows_in": {"before": before_rows, "now": now_rows},
        "fields": fields,
        "alerts": alerts,
    }


def _style_changed(before: str, now: str) -> bool:
    """A different shape, or day-first <-> month-first; 'unclear'/'mixed' alone is no flip."""
    b_shape, _, b_order = before.partition(" ")
    n_shape, _, n_order = now.partition(" ")
    if b_shape != n_shape:
        return True
    return {b_order, n_order} == {"day-first", "month-first"}


def previous_profile(manifests: list[dict[str, Any]], extract_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The quality profile of the feed's latest earlier ingested extract (another extract id), if any.

    ``manifests`` are the feed's manifests (``anonymise.manifest.read_manifests``), passed in by
    the caller: ingest reads no store.
    """
    earlier = [m for m in manifests if m.get("extract_id") != extract_id and m.get("quality")]
    if not earlier:
        return None, None
    m = max(earlier, key=lambda m: (m.get("ingested_at", ""), m.get("extract_id", "")))
    return m["quality"], m.get("extract_id")


def with_change(manifests: list[dict[str, Any]], extract_id: str, quality: dict[str, Any]) -> dict[str, Any]:
    """``quality`` plus ``change`` (since the previous extract among ``manifests``) and its ``alerts``."""
    previous, previous_id = previous_profile(manifests, extract_id)
    change = compare(previous, quality, previous_id)
    return {**quality, "change": change, "alerts": change["alerts"]}


__all__ = ["ProfileBuilder", "compare", "previous_profile", "with_change"]
