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
from synthetic.population import map_unique

_FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
_ABBREV = re.compile(r"\b(" + "|".join(STREET_ABBREVIATIONS) + r")\b")


_TABLE_FROM = np.datetime64("1900-01-01", "D")
_TABLE_TO = np.datetime64("2100-12-31", "D")


@lru_cache(maxsize=16)
def _date_table(fmt: str) -> np.ndarray:
    """Every day 1900-2100 written in ``fmt`` (each format is spelled out once per process)."""
    days = np.arange(_TABLE_FROM, _TABLE_TO + 1).astype(object)
    return np.array([d.strftime(fmt) for d in days], dtype=object)


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


def source_frame(values: pd.DataFrame, style: FeedStyle, native_dates: bool = False) -> pd.DataFrame:
    """The extract as the council's system would export it: source column names, text values."""
    feed = style.feed
    out: dict[str, object] = {}
    imp = values["_impossible"].to_numpy()
    for field, cols in feed.columns.items():
        if field == "address_lines":
            line1 = values["address_line_1"].to_numpy()
            if style.abbreviate_streets:
                line1 = map_unique(line1, lambda a: _ABBREV.sub(lambda m: STREET_ABBREVIATIONS[m.group(1)], a))
            parts = [pd.Series(line1, dtype=object), values["locality"], values["town"]]
            if style.upper_names:
                parts = [pd.Series(map_unique(p.to_numpy(), str.upper), dtype=object) for p in parts]
            if isinstance(cols, list):
                for c, p in zip(cols, parts):
                    out[c] = p.to_numpy()
            else:
                joined = parts[0].fillna("") + ", " + parts[1].fillna("") + ", " + parts[2].fillna("")
                out[cols] = np.where(parts[0].isna(), None, joined)
            continue
        col = cols if isinstance(cols, str) else cols[0]
        v = values[field]
        if field in DATE_FIELDS:
            fmt = feed.date_formats.get(field, feed.date_format)
            if native_dates:
                out[col] = pd.to_datetime(v.to_numpy()).astype("datetime64[ms]")
            else:
                text = format_dates(v.to_numpy(), fmt)
                bad = imp == field
                if bad.any():
                    years = pd.DatetimeIndex(values["dob"].to_numpy()).year.fillna(1980).astype(int).to_numpy()
                    text[bad] = [impossible_date(int(y), fmt) for y in years[bad]]
                out[col] = text
        elif field == "discount":
            out[col] = np.where(v.isna(), None, np.where(v.fillna(False).to_numpy(bool), style.true_token, style.false_token))
        elif field == "amount":
            out[col] = v.to_numpy() if native_dates else np.where(v.isna(), None, v.map("{:.2f}".format))
        elif field in ("forenames", "surname", "previous_surname") and style.upper_names:
            out[col] = map_unique(v.to_numpy(), str.upper)
        elif field == "phone" and style.phone_style:
            s = v.astype(object)
            out[col] = (s.str[:5] + " " + s.str[5:]) if style.phone_style == 1 else ("+44 " + s.str[1:5] + " " + s.str[5:])
        elif field == "bank_sort_code" and style.phone_style == 1:
            s = v.astype(object)
            out[col] = (s.str[:2] + "-" + s.str[2:4] + "-" + s.str[4:]).to_numpy()
        else:
            out[col] = v.to_numpy()
    return pd.DataFrame(out)


def write_extract(values: pd.DataFrame, style: FeedStyle, path: Path) -> int:
    """Write the extract; returns the number of data rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    feed = style.feed
    if feed.format == "parquet":
        frame = source_frame(values, style, native_dates=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, path, compression="snappy")
    elif feed.format == "xlsx":
        _write_xlsx(source_frame(values, style), path, sheet=feed.sheet or "Extract")
    else:
        # Arrow's writer quotes every text value, as many council exports do
        table = pa.Table.from_pandas(source_frame(values, style), preserve_index=False)
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(delimiter=feed.delimiter, quoting_style="needed",
                                                       eol="\r\n" if feed.encoding == "cp1252" else "\n"))
        data = buf.getvalue()
        if feed.encoding.replace("_", "-").lower() not in ("utf-8", "utf8"):
            data = data.decode("utf-8").encode(feed.encoding)     # utf-8-sig adds the BOM here
        path.write_bytes(data)
    return len(values)


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
