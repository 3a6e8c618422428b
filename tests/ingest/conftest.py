"""Small feeds and extracts built in the tests (no generated data needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from councilmatch.home import Home

TODAY = dt.date(2026, 11, 25)

TENANCY_YAML = """\
council: E09000007
dataset: tenancy
version: 3
format: csv
encoding: {encoding}
delimiter: "{delimiter}"
date_format: "%d/%m/%Y"
columns:
  record_id: TenancyRef
  forenames: First Names
  surname: Surname
  dob: Date of Birth
  nino: NI Number
  address_lines: [Address 1, Town]
  postcode: Post Code
  period_start: Start Date
  period_end: End Date
mandatory: [record_id, surname, dob]
"""
HEADER = ["TenancyRef", "First Names", "Surname", "Date of Birth", "NI Number", "Address 1", "Town",
          "Post Code", "Start Date", "End Date"]
GOOD_ROWS = [
    ["T1", "Mrs Zoë", "O'Brien-Smith", "01/02/1980", "ab 12 34 56 c", "12 St John's Rd", "London", "sw1a1aa", "01/01/2020", ""],
    ["T2", "John Paul", "Smith", "15/06/1975", "", "1 High St", "London", "E1 6AN", "01/03/2019", "01/03/2021"],
    ["T3", "Ann", "Jones", "28/02/1990", "JG103759A", "Flat 2, 7 Acacia Ave", "London", "N1 9GU", "05/05/2021", ""],
]


def write_feed(home: Path, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    path = home / "feeds" / "E09000007" / "tenancy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TENANCY_YAML.format(encoding=encoding, delimiter=delimiter), encoding="utf-8")
    return path


def csv_text(rows: list[list[str]], header: list[str] = HEADER, delimiter: str = ",") -> str:
    def cell(v: str) -> str:
        quoted = v.replace('"', '""')
        return f'"{quoted}"' if (delimiter in v or '"' in v or "\n" in v) else v
    return "\n".join(delimiter.join(cell(v) for v in r) for r in [header, *rows]) + "\n"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


@pytest.fixture
def landing(home: Home) -> Path:
    folder = home.landing / "E09000007" / "tenancy"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def kit():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    import types

    return types.SimpleNamespace(
        TODAY=TODAY, TENANCY_YAML=TENANCY_YAML, HEADER=HEADER, GOOD_ROWS=GOOD_ROWS,
        write_feed=write_feed, csv_text=csv_text,
    )
