"""CSV export of a queue, safe to open in a spreadsheet.

Every cell is quoted, and a text cell that a spreadsheet could run as a formula gets
a leading apostrophe (OWASP CSV injection) — not only at its start but after every
character a spreadsheet might take as a field separator (``;`` in many European
locales, ``,``, tab, ``|``), since a program that splits on ``;`` ignoring quotes
turns ``TEN;=1+1`` into a cell ``=1+1``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_AFTER_SEPARATOR = re.compile(r"([;,|\t])([=+\-@\t\r])")


def csv_safe(value: object) -> object:
    """Neutralise a text cell a spreadsheet would run as a formula, whatever the separator."""
    if not isinstance(value, str):
        return value
    value = _AFTER_SEPARATOR.sub(r"\1'\2", value)
    if value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_lines(header: list[str], rows: Iterable[list[object]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
        if buf.tell() > 64_000:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
