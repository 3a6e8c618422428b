"""The review app in a real browser: Debian's headless Chromium driven by Playwright.

Starts ``councilmatch review serve`` in a subprocess on a free port against a data
home with flags, users and a real vault. Screenshots go to a temp folder, or to
docs/screenshots/ when COUNCILMATCH_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from councilmatch.home import Home
from review.db import engine_for
from review.store import publish_flags

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, flags, h):  # noqa: ANN001, ANN201
    from anonymise.keys import init_keys, load_keyring
    from anonymise.vault import Vault
    from synthetic.flags import make_flags

    # A second, later run adds flags, so the dashboard has a trend.
    later = make_flags(40, [h.CAMDEN, h.HACKNEY, h.ISLINGTON], run_id="2026-11-21", seed=8)
    later = later[~later.flag_id.isin(flags.flag_id)]
    later["left_record_id"] = "N" + later["left_record_id"].str[1:]
    everything = pd.concat([flags, later], ignore_index=True)

    env = {k: v for k, v in os.environ.items() if k not in ("COUNCILMATCH_REVIEW_DB_URL", "COUNCILMATCH_KEK")}
    home = Home.resolve(tmp_path / "home").ensure()
    init_keys(home)
    vault = Vault(home, load_keyring(home))
    names = ["AMELIA OKONKWO", "DAVID HARGREAVES", "PRIYA RAMASWAMY", "TOMASZ NOWAK", "GRACE ADEYEMI"]
    for side in ("left", "right"):
        camden = everything[everything[f"{side}_council"] == h.CAMDEN]
        for dataset, part in camden.groupby(f"{side}_dataset"):
            n = len(part)
            vault.store(h.CAMDEN, f"{side}-{dataset}", pd.DataFrame({
                "council": h.CAMDEN, "dataset": dataset, "record_id": part[f"{side}_record_id"].to_numpy(),
                "forenames": [names[i % 5].split()[0] for i in range(n)],
                "surname": [names[i % 5].split()[1] for i in range(n)],
                "dob": pd.to_datetime(["1961-04-12"] * n),
                "address_lines": ["FLAT 3 42 ROYAL COLLEGE STREET LONDON"] * n, "postcode": ["NW1 0TH"] * n}))
    publish_flags(home.review_db_url, flags)
    again = flags.iloc[:60].assign(run_id="2026-11-21", last_seen="2026-11-21")  # 30 not raised again
    publish_flags(home.review_db_url, pd.concat([again, later], ignore_index=True))
    h.add_users(home.review_db_url, ("camden.investigator", h.CAMDEN, "supervisor"),
                ("hackney.investigator", h.HACKNEY, "investigator"))
    engine_for(home.review_db_url).dispose()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrate.cli", "review", "serve", "--home", str(home.root),
                             "--port", str(port), "--insecure-cookies"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(proc.stdout.read().decode())
    else:
        proc.kill()
        raise RuntimeError("review server did not start")
    yield base
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def shots(tmp_path) -> Path:  # noqa: ANN001
    if os.environ.get("COUNCILMATCH_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path


def test_investigator_journey_in_chromium(chromium, server, shots, flags, h):
    from playwright.sync_api import expect

    mine = flags[(flags.left_council == h.CAMDEN) & (flags.right_council == h.HACKNEY)]
    pair = mine.sort_values("priority").iloc[0]
    foreign = flags[(flags.left_council != h.CAMDEN) & (flags.right_council != h.CAMDEN)].iloc[0]
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/queue")
    expect(page).to_have_url(f"{server}/login")
    page.screenshot(path=str(shots / "login.png"), full_page=True)
    page.fill("input[name=username]", "camden.investigator")
    page.fill("input[name=password]", h.PASSWORD)
    page.click("button[type=submit]:has-text('Sign in')")
    expect(page).to_have_url(f"{server}/queue")
    expect(page.locator("h1")).to_have_text("Your council's queue")
    expect(page.locator("table.table tbody tr")).not_to_have_count(0)
    page.screenshot(path=str(shots / "queue.png"), full_page=True)

    page.goto(f"{server}/flags/{pair.flag_id}")
    expect(page.locator(".card-own .record")).to_contain_text("NW1 0TH")  # re-identified from the vault
    expect(page.locator("body")).to_contain_text("Hackney")
    expect(page.locator("svg.chart")).to_be_visible()
    page.screenshot(path=str(shots / "pair.png"), full_page=True)

    page.check("input[name=outcome][value=fraud]")
    page.fill("input[name=amount]", "4200")
    page.fill("textarea[name=note]", "Second tenancy confirmed by visit.")
    page.click("button[value=close]")
    expect(page.locator(".notice")).to_have_text("Saved.")
    expect(page.locator("body")).to_contain_text("£4,200.00")

    page.goto(f"{server}/dashboard")
    expect(page.locator("dl.summary")).to_contain_text("£4,200.00")
    expect(page.locator("svg.chart").first).to_be_visible()
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    response = page.goto(f"{server}/flags/{foreign.flag_id}")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    other_side = "right" if pair.left_council == h.CAMDEN else "left"
    response = page.goto(f"{server}/flags/{pair.flag_id}/record/{other_side}")
    assert response.status == 403
