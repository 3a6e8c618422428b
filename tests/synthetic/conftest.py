"""One small generated home shared by the synthetic tests (generation takes a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from councilmatch.home import Home
from synthetic import GenerateSummary, generate


class Generated:
    def __init__(self, home: Home, summary: GenerateSummary):
        self.home = home
        self.summary = summary
        t = home.truth
        self.records = pd.read_parquet(t / "records.parquet").astype({"council": str, "dataset": str})
        self.people = pd.read_parquet(t / "people.parquet")
        self.scenarios = pd.read_parquet(t / "scenarios.parquet")
        self.flags = pd.read_parquet(t / "expected_flags.parquet")


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    root: Path = tmp_path_factory.mktemp("synthetic-home")
    home = Home.resolve(root)
    summary = generate(home, boroughs=3, people=3000, seed=11)
    return Generated(home, summary)
