"""Suite-wide test settings.

Test homes are development homes: they opt in to the development key-encryption key
(``keys init --dev-kek``), which production refuses (``anonymise.kek``). The variable is
inherited by the command-line runs the tests start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("COUNCILMATCH_DEV_KEK", "1")
os.environ.pop("COUNCILMATCH_PRODUCTION", None)


#: Debian's Chromium, driven by Playwright without a browser download.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``browser`` are skipped where Debian's chromium is not installed."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason="Debian chromium not installed")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
