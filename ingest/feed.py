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
    columns:                    # canonical field -> source column (or list of columns, joined with ", ")
      record_id: TenancyRef
      forenames: First Names
      surname: Surname
      dob: Date of Birth
      address_lines: [Address 1, Address 2, Town]
      postcode: Post Code
      period_start: Start Date
    mandatory: [record_id, surname, dob]   # header must have them; rows lacking a value are quarantined
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FeedDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    columns: dict[str, str | list[str]] = Field(default_factory=dict)
    mandatory: list[str] = Field(default_factory=lambda: ["record_id"])

    @property
    def feed_id(self) -> str:
        return f"{self.council}/{self.dataset}"
