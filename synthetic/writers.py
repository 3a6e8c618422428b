"""Write one council's extract of one data set in its feed's shape (CSV, XLSX, Parquet).

Output is byte-for-byte reproducible: XLSX archives get fixed timestamps, and
Parquet/CSV writers are given fully ordered, typed frames.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from councilmatch.contracts import DATE_FIELDS
from synthetic.feeds import FeedStyle
from synthetic.places import STREET_ABBREVIATIONS
from synthetic.population import digits_text, map_unique
from synthetic.render import Rendered

_FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
_ABBREV = re.compile(r"\b(" + "|".join(STREET_ABBREVIATIONS) + r")\b")


_TABLE_FROM = np.datetime64("1900-01-01", "D")
_TABLE_TO = np.datetime64("2100-12-31", "D")


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DATE_TOKEN = re.compile(r"%[dmYybB]|%%|[^%]+|%.")


@lru_cache(maxsize=16)
def _date_table(fmt: str) -> np.ndarray:
    """Every day 1900-2100 written in ``fmt``, assembled from digit columns (C-locale, like strftime)."""
    days = np.arange(_TABLE_FROM, _TABLE_TO + 1)
    y = days.astype("datetime64[Y]").astype(np.int64) + 1970
    m = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    d = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    pieces = {"%d": lambda: digits_text(d, 2), "%m": lambda: digits_text(m, 2), "%Y": lambda: digits_text(y, 4),
              "%y": lambda: digits_text(y % 100, 2), "%b": lambda: np.array([x[:3] for x in _MONTHS], dtype=object)[m - 1],
              "%B": lambda: np.array(_MONTHS, dtype=object)[m - 1], "%%": lambda: "%"}
    out = np.full(len(days), "", dtype=object)
    for token in _DATE_TOKEN.findall(fmt):
        if token.startswith("%") and token not in pieces:      # anything unusual: let strftime do it
            return np.array([x.strftime(fmt) for x in days.astype(object)], dtype=object)
        out = out + (pieces[token]() if token in pieces else token)
    return out


def format_dates(values: np.ndarray, fmt: str) -> np.ndarray:
    """Dates as text in ``fmt`` (None for NaT), by table lookup."""
    values = np.asarray(values, "datetime64[D]")
    out = np.full(len(values), None, dtype=object)
    ok = ~np.isnat(values) & (values >= _TABLE_FROM) & (values <= _TABLE_TO)
    out[ok] = _date_table(fmt)[(values[ok] - _TABLE_FROM).astype(np.int64)]
    return out


def impossible_date(year: int, fmt: str) -> str:
    """30 February of ``year`` written in ``fmt`` (a date no calendar has)."""
    return fmt.replace("%d", "30").replace("%m", "02").replace("%b", "Feb").replace("%B", "February").replace("%Y", str(year)).replace("%y", f"{year % 100:02d}")


def _text(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype=object, copy=False)


def source_columns(rendered: Rendered, style: FeedStyle, native_dates: bool = False) -> dict[str, np.ndarray]:
    """The extract as the council's system would export it: source column name -> values (text, or
    native dates and numbers for Parquet)."""
    feed = style.feed
    out: dict[str, np.ndarray] = {}
    for field, cols in feed.columns.items():
        col = cols if isinstance(cols, str) else cols[0]
        v = rendered[field] if field != "address_lines" else None
        if field == "address_lines":
            line1 = rendered["address_line_1"]
            if style.abbreviate_streets:
                line1 = map_unique(line1, lambda a: _ABBREV.sub(lambda m: STREET_ABBREVIATIONS[m.group(1)], a))
            parts = [line1, rendered["locality"], rendered["town"]]
            if style.upper_names:
                parts = [map_unique(p, str.upper) for p in parts]
            if isinstance(cols, list):
                out.update(zip(cols, parts))
            else:
                p = [_text(x).fillna("") for x in parts]
                out[cols] = np.where(pd.isna(parts[0]), None, (p[0] + ", " + p[1] + ", " + p[2]).to_numpy())
        elif field in DATE_FIELDS:
            if native_dates:
                out[col] = v.astype("datetime64[ms]")
                continue
            fmt = feed.date_formats.get(field, feed.date_format)
            text = format_dates(v, fmt)
            bad = rendered["_impossible"] == field
            if bad.any():
                years = pd.DatetimeIndex(rendered["dob"][bad]).year.fillna(1980).astype(int)
                text[bad] = [impossible_date(int(y), fmt) for y in years]
            out[col] = text
        elif field == "discount":
            known = ~pd.isna(v)
            out[col] = np.where(known, np.where(np.asarray(v.fillna(False), bool), style.true_token, style.false_token), None)
        elif field == "amount":
            out[col] = v if native_dates else map_unique(np.where(np.isnan(v), None, v), "{:.2f}".format)
        elif field in ("forenames", "surname", "previous_surname") and style.upper_names:
            out[col] = map_unique(v, str.upper)
        elif field == "phone" and style.phone_style:
            t = _text(v)
            out[col] = ((t.str[:5] + " " + t.str[5:]) if style.phone_style == 1 else ("+44 " + t.str[1:5] + " " + t.str[5:])).to_numpy()
        elif field == "bank_sort_code" and style.phone_style == 1:
            t = _text(v)
            out[col] = (t.str[:2] + "-" + t.str[2:4] + "-" + t.str[4:]).to_numpy()
        else:
            out[col] = v
    return out


def _arrow_table(columns: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({name: pa.array(values, from_pandas=True) for name, values in columns.items()})


def write_extract(values: Rendered, style: FeedStyle, path: Path) -> int:
    """Write the extract; returns the number of data rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    feed = style.feed
    if feed.format == "parquet":
        pq.write_table(_arrow_table(source_columns(values, style, native_dates=True)), path, compression="snappy")
    elif feed.format == "xlsx":
        _write_xlsx(pd.DataFrame(source_columns(values, style)), path, sheet=feed.sheet or "Extract")
    else:
        # Arrow's writer quotes every text value, as many council exports do
        buf = io.BytesIO()
        pacsv.write_csv(_arrow_table(source_columns(values, style)), buf,
                        pacsv.WriteOptions(delimiter=feed.delimiter, quoting_style="needed",
                                           eol="\r\n" if feed.encoding == "cp1252" else "\n"))
        data = buf.getvalue()
        if feed.encoding.replace("_", "-").lower() not in ("utf-8", "utf8"):
            data = data.decode("utf-8").encode(feed.encoding)     # utf-8-sig adds the BOM here
        path.write_bytes(data)
    return len(values["record_id"])


def _write_xlsx(frame: pd.DataFrame, path: Path, sheet: str) -> None:
    """openpyxl write-only workbook with text cells, repacked with fixed timestamps."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    fixed = datetime(2020, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "councilmatch synthetic"
    ws = wb.create_sheet(sheet)
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False, name=None):   # xlsx feeds are small data sets
        ws.append([None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    # zip entry times (and the core properties' modified stamp) come from the clock: pin them
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"<dcterms:modified([^>]*)>[^<]*</dcterms:modified>",
                              rb"<dcterms:modified\1>2020-01-01T00:00:00Z</dcterms:modified>", data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
