"""Feed definitions: one YAML file per council and data set (feeds/<council>/<dataset>.yaml).

Example::

    council: E09000007          # ONS code (councilmatch.councils)
    dataset: tenancy            # a key of councilmatch.contracts.DATASETS
    version: 1                  # bump when the mapping changes; recorded in each manifest
    format: csv                 # csv | xlsx | parquet | pseudonymised (at-source Parquet)
    encoding: utf-8             # csv: utf-8 | utf-8-sig | cp1252 | latin-1
    delimiter: ","              # csv only
    sheet: null                 # xlsx only: sheet name (default: first sheet)
    date_format: "%d/%m/%Y"     # default for every date field
    date_formats: {dob: "%Y-%m-%d"}   # per-field overrides
    true_values: ["Y", "YES", "1", "TRUE"]   # boolean fields (discount)
    false_values: ["N", "NO", "0", "FALSE"]  # optional; anything in neither list is invalid
    columns:                    # canonical field -> source column (or list of columns, joined with ", ")
      record_id: TenancyRef
      forenames: First Names
      surname: Surname
      dob: Date of Birth
      address_lines: [Address 1, Address 2, Town]
      postcode: Post Code
      period_start: Start Date
      nino: NI Number
    mandatory: [record_id, surname, dob]   # header must have them; rows lacking a value are quarantined
    limits: {max_file_mb: 1024}  # optional: size limits (FeedLimits), checked before the extract is parsed
    quarantine_invalid: [nino]  # optional fields whose *invalid* value also quarantines the row
                                # (default []: an invalid optional value is set to missing and counted)

The schema only checks shapes; ``ingest.feeds.load_feed`` adds the semantic checks
(known data set and fields, valid date formats, London council) and reports the
file, line and key of any problem.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _as_text(value: object) -> object:
    """YAML turns ``TRUE`` into a bool and ``1`` into an int; a feed means the text."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return str(value)
    return value


#: Encodings a CSV feed may declare (codec names as ``codecs.lookup`` normalises them). Anything
#: else (``rot13`` is a codec too) is refused when the feed definition is validated.
ALLOWED_ENCODINGS: dict[str, str] = {
    "utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "cp1252": "cp1252", "latin-1": "iso8859-1",
    "iso-8859-15": "iso8859-15", "ascii": "ascii", "utf-16": "utf-16",
}


class FeedLimits(BaseModel):
    """Per-feed size limits: an extract over any of them fails with a clear error before it is parsed.

    They bound what one hostile or broken file can cost (a 1.5 KB XLSX declaring a cell at
    XFD1048576 asks the reader for 512 GiB). Raise them in the feed for a council whose
    extracts are genuinely bigger.
    """

    model_config = ConfigDict(extra="forbid")
    #: size of the extract file on disk
    max_file_mb: int = Field(default=1024, ge=1)
    #: data rows (CSV lines, sheet rows, Parquet rows)
    max_rows: int = Field(default=2_000_000, ge=1)
    #: columns (CSV header, sheet width, Parquet columns)
    max_columns: int = Field(default=500, ge=1)
    #: CSV: the longest line, so no single field can be longer
    max_line_kb: int = Field(default=16384, ge=1)
    #: XLSX: sheet XML + shared strings once decompressed; Parquet: uncompressed data
    max_uncompressed_mb: int = Field(default=1024, ge=1)
    #: XLSX: rows x columns of the area the sheet spans (the reader allocates every cell of it)
    max_cells: int = Field(default=20_000_000, ge=1)


class FeedDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    council: str
    dataset: str
    version: int = 1
    format: Literal["csv", "xlsx", "parquet", "pseudonymised"] = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","
    sheet: str | None = None
    date_format: str = "%Y-%m-%d"
    date_formats: dict[str, str] = Field(default_factory=dict)
    true_values: list[str] = Field(default_factory=lambda: ["Y", "YES", "1", "TRUE", "T"])
    false_values: list[str] = Field(default_factory=lambda: ["N", "NO", "0", "FALSE", "F"])
    columns: dict[str, str | list[str]] = Field(default_factory=dict)
    mandatory: list[str] = Field(default_factory=lambda: ["record_id"])
    limits: FeedLimits = Field(default_factory=FeedLimits)
    #: Fields besides the mandatory ones whose invalid value quarantines the row. By default an
    #: invalid optional value is set to missing (the row still goes to matching) and counted:
    #: one malformed NINO or phone number must not hide a record from matching.
    quarantine_invalid: list[str] = Field(default_factory=list)

    @field_validator("true_values", "false_values", mode="before")
    @classmethod
    def _values_as_text(cls, v: object) -> object:
        return [_as_text(x) for x in v] if isinstance(v, list) else v

    @field_validator("columns", mode="before")
    @classmethod
    def _columns_as_text(cls, v: object) -> object:
        if not isinstance(v, dict):
            return v
        return {k: ([_as_text(x) for x in c] if isinstance(c, list) else _as_text(c)) for k, c in v.items()}

    @property
    def feed_id(self) -> str:
        return f"{self.council}/{self.dataset}"

    def source_columns(self, field: str) -> list[str]:
        """The source column(s) a canonical field is mapped from ([] when unmapped)."""
        cols = self.columns.get(field)
        if cols is None:
            return []
        return [cols] if isinstance(cols, str) else list(cols)

    def quarantines_invalid(self) -> set[str]:
        """Fields whose invalid value quarantines the row: record_id, the mandatory ones, ``quarantine_invalid``."""
        return {"record_id", *self.mandatory, *self.quarantine_invalid}

    def date_format_for(self, field: str) -> str:
        return self.date_formats.get(field, self.date_format)
