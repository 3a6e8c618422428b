"""Reading an extract into a frame of source text, one row per data row.

Every cell comes back as text (blank -> NA) whatever the format, so mapping and
validation see the same thing for CSV, XLSX and Parquet. Problems with the
whole file raise ``ExtractError``; problems with single rows (ragged rows) are
returned as ``bad_rows`` to be quarantined.

Row numbers: ``row_number`` 1 is the first data row after the header. In a
CSV file that is line ``row_number + 1`` (when no quoted value spans lines),
in a spreadsheet it is sheet row ``row_number + 1``, in Parquet it is row index
``row_number - 1`` (``RawExtract.header_offset`` says which: 1, 1, -1).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from zlib import error as zlib_error

from ingest.feed import ALLOWED_ENCODINGS, FeedDefinition, FeedLimits

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
_UTF8 = {"utf-8", "utf8", "utf-8-sig", "utf_8", "utf_8_sig", "u8"}
_BOM = codecs.BOM_UTF8


class ExtractError(ValueError):
    """The extract as a whole cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass
class BadRow:
    row_number: int
    reason: str
    raw: str  # JSON of the source cells


@dataclass
class RawExtract:
    """Source text as read: ``frame`` columns are the header names, all string dtype."""

    header: list[str]
    frame: pd.DataFrame
    row_number: np.ndarray
    bad_rows: list[BadRow] = field(default_factory=list)
    blank_rows: int = 0
    header_offset: int = 1


def describe_delimiter(d: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(d, repr(d))


def decode_extract(path: Path, data: bytes, encoding: str) -> tuple[str | None, bytes]:
    """Check the bytes decode in the feed's encoding; return (text if re-encoded, utf-8 bytes).

    Mixed or wrong encodings are file-level errors: guessing per row would
    silently corrupt names.
    """
    try:
        enc = codecs.lookup(encoding).name
    except LookupError:
        raise ExtractError(path, f"unknown encoding {encoding!r} in the feed definition") from None
    if enc not in ALLOWED_ENCODINGS.values():
        raise ExtractError(path, f"encoding {encoding!r} is not one a feed may use ({', '.join(ALLOWED_ENCODINGS)})")
    narrow = not enc.startswith("utf-16")
    if narrow and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ExtractError(path, f"starts with a UTF-16 byte order mark but the feed's encoding is {encoding}; "
                                 "save the extract as UTF-8 (or set encoding: utf-16)")
    head = data[:4096]
    if narrow and head.count(b"\x00") > len(head) // 10:
        raise ExtractError(path, f"looks like UTF-16 (every other byte is NUL) but the feed's encoding is {encoding}; "
                                 "save the extract as UTF-8 (or set encoding: utf-16)")
    if data.startswith(_BOM):
        if enc not in ("utf-8", "utf-8-sig"):
            raise ExtractError(path, f"starts with a UTF-8 byte order mark but the feed's encoding is {encoding}; set encoding: utf-8-sig")
        data = data[len(_BOM):]
    if enc in ("utf-8", "utf-8-sig"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise ExtractError(
                path, f"not valid utf-8 at byte {exc.start} (line {line}); is the feed's encoding cp1252?"
            ) from None
        return None, data
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ExtractError(path, f"not valid {encoding} at byte {exc.start} (line {line}); is the feed's encoding utf-8?") from None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise ExtractError(path, f"looks like utf-8 (multi-byte characters decode as utf-8) but the feed's encoding is {encoding}; set encoding: utf-8")
    return text, text.encode("utf-8")


def _csv_cells(line: str, delimiter: str) -> list[str]:
    """The cells of one CSV line (the standard library's parser; its field limit is 128 KiB)."""
    try:
        return next(csv.reader(io.StringIO(line), delimiter=delimiter), [])
    except csv.Error:
        return [line[:200]]


def _check_csv_size(path: Path, data: bytes, limits: FeedLimits) -> None:
    """Rows and the longest line within the feed's limits, before anything is parsed (vectorised)."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    lines = len(ends) + (0 if data.endswith(b"\n") else 1)
    if lines - 1 > limits.max_rows:
        raise ExtractError(path, f"has {lines - 1:,} data lines; over the feed's limit of {limits.max_rows:,} "
                                 "(limits.max_rows)")
    bounds = np.concatenate(([-1], ends, [len(data)]))
    lengths = np.diff(bounds) - 1
    longest = int(lengths.argmax()) if len(lengths) else 0
    if len(lengths) and lengths[longest] > limits.max_line_kb * 1024:
        raise ExtractError(path, f"line {longest + 1:,} is {int(lengths[longest]):,} bytes long; over the feed's limit "
                                 f"of {limits.max_line_kb:,} KB (limits.max_line_kb): not an extract of records, "
                                 "or a field was never closed")


def read_csv(path: Path, feed: FeedDefinition) -> RawExtract:
    data = Path(path).read_bytes()
    if not data:
        raise ExtractError(path, "empty file (0 bytes)")
    _, utf8 = decode_extract(path, data, feed.encoding)
    _check_csv_size(path, utf8, feed.limits)
    head_text = utf8[: 1 << 20].decode("utf-8", errors="ignore")
    if not head_text.strip():
        raise ExtractError(path, "no header row (file is blank)")
    try:
        header = [h.strip() for h in next(csv.reader(io.StringIO(head_text.lstrip("\r\n")), delimiter=feed.delimiter), [])]
    except csv.Error as exc:
        raise ExtractError(path, f"cannot read the header row as CSV ({exc})") from None
    if len(header) > feed.limits.max_columns:
        raise ExtractError(path, f"header has {len(header):,} columns; over the feed's limit of "
                                 f"{feed.limits.max_columns:,} (limits.max_columns)")
    if len(header) == 1:
        others = [d for d in CANDIDATE_DELIMITERS if d != feed.delimiter and d in header[0]]
        if others:
            raise ExtractError(
                path,
                f"the header reads as one column with the feed's delimiter ({describe_delimiter(feed.delimiter)}) "
                f"but contains {describe_delimiter(others[0])}s; is the delimiter {others[0]!r}?",
            )
    names = [f"c{i}" for i in range(len(header))]
    bad: list[tuple[int, str]] = []
    blank: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        number = row.number - 1 if row.number is not None else -1
        if not row.text.strip(" \t\r\n" + feed.delimiter):
            blank.append(number)
        else:
            bad.append((number, f"row: expected {row.expected_columns} fields, found {row.actual_columns}"))
            raw_rows.append(row.text)
        return "skip"

    raw_rows: list[str] = []
    leading_blank = len(utf8) - len(utf8.lstrip(b"\r\n"))
    try:
        table = pacsv.read_csv(
            io.BytesIO(utf8[leading_blank:]),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, use_threads=False,
                block_size=max(1 << 20, min(len(utf8) + 1, (1 << 31) - 1)),
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=feed.delimiter, newlines_in_values=True, ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                null_values=[""], quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ExtractError(path, f"cannot parse as CSV: {exc}") from None
    frame = table.to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow") if t == pa.string() else None)
    frame.columns = _unique(header)
    total = len(frame) + len(bad) + len(blank)
    taken = np.zeros(total + 1, dtype=bool)
    for n, _ in bad:
        taken[n] = True
    for n in blank:
        taken[n] = True
    row_number = np.flatnonzero(~taken[1:]) + 1
    if len(row_number) != len(frame):  # numbers unknown: fall back to the order read
        row_number = np.arange(1, len(frame) + 1)
    # an empty line (or only delimiters) reads as a row of nulls: not a record
    empty = frame.isna().all(axis=1).to_numpy()
    if empty.any():
        frame = frame.loc[~empty].reset_index(drop=True)
        row_number = row_number[~empty]
        blank.extend([0] * int(empty.sum()))
    bad_rows = [
        BadRow(n, reason, json.dumps(_csv_cells(text, feed.delimiter), ensure_ascii=False))
        for (n, reason), text in zip(bad, raw_rows)
    ]
    if len(frame) + len(bad_rows) == 0:
        raise ExtractError(path, "header only: no data rows")
    return RawExtract(_unique(header), frame, row_number, bad_rows, len(blank), header_offset=1)


def _unique(header: list[str]) -> list[str]:
    """Duplicate header names get ' (2)', ' (3)' so every column stays addressable."""
    seen: dict[str, int] = {}
    out = []
    for h in header:
        seen[h] = seen.get(h, 0) + 1
        out.append(h if seen[h] == 1 else f"{h} ({seen[h]})")
    return out


def _cell_text(v: object) -> object:
    if v is None or v == "":
        return pd.NA
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, (dt.datetime, dt.date)):
        return v.strftime("%Y-%m-%d")
    return str(v)


def _sheet_column(values: list[object]) -> pd.Series:
    """One sheet column as trimmed text. Arrow types a uniform column in C; only a
    column mixing types (text and numbers, say) is converted cell by cell."""
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([_cell_text(v) for v in values], type=pa.string(), from_pandas=True)
    if pa.types.is_floating(arr.type):
        whole = pc.fill_null(pc.all(pc.equal(arr, pc.floor(arr))), True).as_py()
        arr = pc.cast(pc.cast(arr, pa.int64()), pa.string()) if whole else pc.cast(arr, pa.string())
    elif pa.types.is_date(arr.type) or pa.types.is_timestamp(arr.type):
        arr = pc.strftime(arr, format="%Y-%m-%d")
    elif pa.types.is_boolean(arr.type):
        arr = pc.if_else(arr, "TRUE", "FALSE")
    elif pa.types.is_null(arr.type):
        arr = pa.nulls(len(values), pa.string())
    elif not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([arr])))


#: a cell reference in any XML spelling the reader accepts (either quote, spaces around '=')
_CELL_REF = re.compile(rb"""\sr\s*=\s*["']([A-Za-z]{1,4})([0-9]{1,9})["']""")
_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c[\s/>]")
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")
_ROW_REF = re.compile(rb"""<(?:[A-Za-z_][\w.-]*:)?row\b[^>]*?\sr\s*=\s*["']([0-9]{1,9})["']""")


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ch - 64)
    return n


def _column_letters(n: int) -> str:
    out = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def check_xlsx(path: Path, limits: FeedLimits) -> None:
    """Refuse a workbook whose sheets span more rows, columns or cells, or decompress to more
    bytes, than the feed allows, before the reader sees it.

    The XLSX reader allocates the whole area from A1 to the last cell, so one cell at
    XFD1048576 in a 1.5 KB file costs 512 GiB. The sheet XML is streamed (never held
    whole) and its cell references scanned; the ``<dimension>`` element is not trusted.
    Old binary ``.xls`` files (not zip) are left to the reader (the format caps them at
    65,536 x 256) and to the reader process's memory limit.
    """
    import zipfile

    try:
        book = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return
    except OSError as exc:
        raise ExtractError(path, f"cannot open: {exc}") from None
    budget = limits.max_uncompressed_mb * (1 << 20)
    with book:
        infos = book.infolist()
        declared = sum(i.file_size for i in infos)
        if declared > budget:
            raise ExtractError(path, f"decompresses to {declared:,} bytes; over the feed's limit of "
                                     f"{limits.max_uncompressed_mb:,} MB (limits.max_uncompressed_mb)")
        used = 0
        for info in infos:
            name = info.filename
            sheet = name.startswith("xl/worksheets/") and name.endswith(".xml")
            if not (sheet or name == "xl/sharedStrings.xml"):
                continue
            max_row = max_col = rows = rows_with_ref = cells = cells_with_ref = 0
            tail = b""
            try:
                with book.open(info) as stream:
                    while chunk := stream.read(1 << 22):
                        used += len(chunk)
                        if used > budget:
                            raise ExtractError(path, f"{name} decompresses to more than the feed's limit of "
                                                     f"{limits.max_uncompressed_mb:,} MB (limits.max_uncompressed_mb)")
                        if not sheet:
                            continue
                        # cut at the last '>' so no tag is split between chunks
                        text = tail + chunk
                        cut = text.rfind(b">") + 1
                        text, tail = text[:cut], text[cut:]
                        refs = _CELL_REF.findall(text)
                        if refs:
                            cells_with_ref += len(refs)
                            max_col = max(max_col, max(_column_number(c) for c in {c for c, _ in refs}))
                            max_row = max(max_row, max(int(r) for _, r in refs))
                        cells += len(_CELL_TAG.findall(text))
                        row_refs = _ROW_REF.findall(text)
                        rows_with_ref += len(row_refs)
                        if row_refs:
                            max_row = max(max_row, max(int(r) for r in row_refs))
                        rows += len(_ROW_TAG.findall(text))
            except (zipfile.BadZipFile, zlib_error, EOFError, NotImplementedError) as exc:
                raise ExtractError(path, f"{name} is corrupt ({exc})") from None
            if not sheet:
                continue
            # cells or rows without a reference take the next position: count them as extra width/height
            width = max_col + max(0, cells - cells_with_ref)
            height = max_row + max(0, rows - rows_with_ref)
            if height - 1 > limits.max_rows or width > limits.max_columns or height * width > limits.max_cells:
                raise ExtractError(
                    path,
                    f"{name} spans {height:,} rows x {width:,} columns (to cell {_column_letters(width)}{height}) = "
                    f"{height * width:,} cells; over the feed's limits (limits.max_rows {limits.max_rows:,}, "
                    f"limits.max_columns {limits.max_columns:,}, limits.max_cells {limits.max_cells:,})")


def read_xlsx(path: Path, feed: FeedDefinition) -> RawExtract:
    """Spreadsheets via python-calamine; native dates become ISO text, whole floats lose '.0'."""
    from python_calamine import CalamineWorkbook

    check_xlsx(path, feed.limits)
    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for corrupt files
        raise ExtractError(path, f"cannot open as a spreadsheet: {exc}") from None
    if feed.sheet is not None and feed.sheet not in book.sheet_names:
        raise ExtractError(path, f"no sheet {feed.sheet!r}; sheets: {', '.join(book.sheet_names)}")
    sheet = book.get_sheet_by_name(feed.sheet) if feed.sheet else book.get_sheet_by_index(0)
    rows = sheet.to_python(skip_empty_area=False)
    if not rows or not any(str(c).strip() for c in rows[0]):
        raise ExtractError(path, "empty sheet: no header row")
    header = _unique([str(_cell_text(c)) if _cell_text(c) is not pd.NA else "" for c in rows[0]])
    body = rows[1:]
    columns = list(itertools.zip_longest(*body, fillvalue=None)) if body else []
    columns += [(None,) * len(body)] * (len(header) - len(columns))
    frame = pd.DataFrame({name: _sheet_column(list(columns[i])) for i, name in enumerate(header)},
                         index=pd.RangeIndex(len(body)))
    blank = frame.isna().all(axis=1).to_numpy()
    row_number = np.flatnonzero(~blank) + 1
    frame = frame.loc[~blank].reset_index(drop=True)
    if len(frame) == 0:
        raise ExtractError(path, "header only: no data rows")
    return RawExtract(header, frame, row_number, [], int(blank.sum()), header_offset=1)


def read_parquet(path: Path, feed: FeedDefinition) -> RawExtract:
    """Parquet columns cast to text: dates and timestamps as 'YYYY-MM-DD'."""
    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError) as exc:
        raise ExtractError(path, f"cannot read as Parquet: {exc}") from None
    limits = feed.limits
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if meta.num_rows > limits.max_rows or meta.num_columns > limits.max_columns:
        raise ExtractError(path, f"has {meta.num_rows:,} rows x {meta.num_columns:,} columns; over the feed's limits "
                                 f"(limits.max_rows {limits.max_rows:,}, limits.max_columns {limits.max_columns:,})")
    if size > limits.max_uncompressed_mb * (1 << 20):
        raise ExtractError(path, f"holds {size:,} bytes of uncompressed data; over the feed's limit of "
                                 f"{limits.max_uncompressed_mb:,} MB (limits.max_uncompressed_mb)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ExtractError(path, f"cannot read as Parquet: {exc}") from None
    if table.num_rows == 0:
        raise ExtractError(path, "no data rows")
    cols = {}
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
            col = pc.strftime(col, format="%Y-%m-%d")
        elif not pa.types.is_string(col.type):
            col = pc.cast(col, pa.string())
        cols[name] = col
    frame = pa.table(cols).to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow"))
    frame = frame.apply(lambda s: s.str.strip().mask(s.str.strip() == ""))
    return RawExtract(list(table.column_names), frame, np.arange(1, len(frame) + 1), [], 0, header_offset=-1)


def read_extract(feed: FeedDefinition, path: Path) -> RawExtract:
    """Read an extract in the feed's format; ``pseudonymised`` extracts belong to anonymise."""
    path = Path(path)
    if not path.is_file():
        raise ExtractError(path, "no such file")
    if feed.format == "pseudonymised":
        raise ExtractError(
            path,
            "format 'pseudonymised' (at-source Parquet) is not read by ingest; "
            "it is handled by the anonymise stage's at-source import",
        )
    size = path.stat().st_size
    if size > feed.limits.max_file_mb * (1 << 20):
        raise ExtractError(path, f"is {size:,} bytes; over the feed's limit of {feed.limits.max_file_mb:,} MB "
                                 "(limits.max_file_mb)")
    reader = {"csv": read_csv, "xlsx": read_xlsx, "parquet": read_parquet}[feed.format]
    return reader(path, feed)
