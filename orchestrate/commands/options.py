"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

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
