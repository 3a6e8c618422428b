"""End-to-end helpers: a generated home whose CSV extracts are sent again on later nights."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from anonymise.keys import init_keys
from councilmatch.home import Home
from synthetic import generate


class ResentFeed:
    """One CSV feed's rows as first sent; edit ``rows``, then ``send(night)`` lands them again as
    that night's extract in the same layout (encoding, BOM, delimiter, line ending)."""

    def __init__(self, home: Home, feed_id: str, original: Path):
        data = original.read_bytes()
        try:
            self.encoding, text = "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            self.encoding, text = "cp1252", data.decode("cp1252")
        self.bom, text = text.startswith("\ufeff"), text.lstrip("\ufeff")
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.delimiter = next(d for d in ("|", "\t", ";", ",") if d in text.split("\n", 1)[0])
        rows = [r for r in csv.reader(text.splitlines(), delimiter=self.delimiter) if r]
        self.home, self.feed_id, self.header, self.rows = home, feed_id, rows[0], rows[1:]
        self.original = [list(r) for r in self.rows]

    def col(self, *names: str) -> int:
        """The position of the first of ``names`` in the header (any case)."""
        lower = [h.casefold() for h in self.header]
        for name in names:
            if name.casefold() in lower:
                return lower.index(name.casefold())
        raise KeyError(f"{self.feed_id}: none of {names} in {self.header}")

    def send(self, night: str) -> None:
        council, dataset = self.feed_id.split("/")

        def line(values: list[str]) -> str:
            return self.delimiter.join('"' + v.replace('"', '""') + '"' if v != "" else "" for v in values)

        text = self.newline.join(line(r) for r in [self.header, *self.rows]) + self.newline
        path = self.home.landing / council / dataset / f"{dataset}_{night}.csv"
        path.write_bytes((("\ufeff" if self.bom else "") + text).encode(self.encoding))


#: (folder, people, seed) -> (a generated home with its keyring, a copy of its landing as first sent)
GeneratedHome = Callable[[Path, int, int], tuple[Home, Path]]


@pytest.fixture(scope="session")
def generated_home() -> GeneratedHome:
    def make(folder: Path, people: int, seed: int) -> tuple[Home, Path]:
        home = Home.resolve(folder / "home")
        generate(home, boroughs=2, people=people, seed=seed)
        init_keys(home)
        originals = folder / "originals"
        shutil.copytree(home.landing, originals)
        return home, originals

    return make


@pytest.fixture(scope="session")
def resent_feed() -> type[ResentFeed]:
    return ResentFeed
