"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from councilmatch.home import Home

HomeOption = Annotated[
    Optional[Path],
    typer.Option(
        "--home",
        help="Data home (landing/, feeds/, store/, vault/, ...). Default: $COUNCILMATCH_HOME, else ./councilmatch-data.",
        show_default=False,
    ),
]


def resolve_home(home: Path | None) -> Home:
    return Home.resolve(home)


def counts_table(title: str, label: str, counts: dict, value: str = "rows", fmt: str = "{:,}") -> Table:
    """A two-column table of ``counts`` (label -> number), the number right-aligned."""
    table = Table(title=title)
    table.add_column(label)
    table.add_column(value, justify="right")
    for key, number in counts.items():
        table.add_row(str(key), fmt.format(number))
    return table
