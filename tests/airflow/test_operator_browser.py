"""The operator's morning in a real browser: ``councilmatch demo`` with Airflow's UI, Debian's Chromium.

Runs the demo (``./run demo``'s command) on small generated boroughs with both UIs on
free loopback ports, reads the sign-in details it prints, then, as an operator would:
signs in to Airflow's UI, finds ``nightly_matching``'s run in success with one mapped
``ingest_feed`` per feed (named by feed), opens one task's log, follows the task's
"Run report" link to the review app, signs in as the hub operator and reads the report.
Finally SIGTERM to the demo must stop everything it started, and no Airflow secret may
be in the data home. Screenshots go to a temp folder, or to docs/img/ when
COUNCILMATCH_UPDATE_SCREENSHOTS=1 (docs/operations.md shows them).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import httpx
import pytest

from orchestrate import isolated_airflow as airflow_local
from councilmatch.home import Home

REPO = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 1800  # generation is done beforehand; the night through LocalExecutor on a busy 2-core box

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Demo:
    """A running ``councilmatch demo`` and what it printed."""

    def __init__(self, home: Home, review_port: int, airflow_port: int, env: dict[str, str]) -> None:
        self.home, self.review_port, self.airflow_port = home, review_port, airflow_port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrate.cli", "demo", "--home", str(home.root), "--port", str(review_port),
             "--airflow-port", str(airflow_port)],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def printed(self, pattern: str) -> re.Match[str] | None:
        return re.search(pattern, self.output)

    def wait_until_ready(self, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            airflow = self.printed(r"Airflow UI: (http://\S+) — sign in as (\S+) / (\S+)")
            reports = self.printed(r"Run reports: (http://\S+)/reports — sign in as (\S+) / (\S+)")
            investigators = self.printed(r"Review app: (http://\S+) — sign in as (\S+) / (\S+)")
            if airflow and reports and investigators and _listening(self.review_port):
                return {"airflow": airflow[1], "airflow_user": airflow[2], "airflow_password": airflow[3],
                        "review": reports[1], "operator": reports[2], "operator_password": reports[3],
                        "investigator": investigators[2], "investigator_password": investigators[3]}
            if self.proc.poll() is not None:
                raise AssertionError(f"the demo exited ({self.proc.returncode}):\n{self.output[-6000:]}")
            time.sleep(1)
        raise AssertionError(f"the demo was not ready within {timeout:.0f} s:\n{self.output[-6000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, af: Any) -> Iterator[tuple[Demo, dict[str, str]]]:
    home = af.make_home(tmp_path_factory.mktemp("operator") / "home")
    env = {k: v for k, v in os.environ.items() if k not in ("COUNCILMATCH_REVIEW_DB_URL", "COUNCILMATCH_KEK")}
    env.update(COLUMNS="250", COUNCILMATCH_TASK_RETRIES="0", PYTHONUNBUFFERED="1")
    running = Demo(home, _free_port(), _free_port(), env)
    try:
        yield running, running.wait_until_ready(DEMO_TIMEOUT)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("COUNCILMATCH_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "img"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path_factory.mktemp("shots")


def test_the_operators_morning_in_airflow_and_the_run_report(chromium, demo: tuple[Demo, dict[str, str]],
                                                             shots: Path) -> None:
    from playwright.sync_api import expect

    from councilmatch.councils import council_name
    from orchestrate.pipeline import discover_feeds

    running, info = demo
    home = running.home
    feeds = discover_feeds(home)
    run_id = sorted(p.stem for p in home.reports.glob("*.json"))[-1]
    assert info["airflow"] == f"http://127.0.0.1:{running.airflow_port}"
    assert info["airflow_user"] == airflow_local.UI_USER
    base = info["airflow"]

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(90_000)
    expect.set_options(timeout=90_000)  # a busy 2-core machine: the UI can take a while
    page = context.new_page()

    # Sign in to Airflow's UI (simple auth manager) with what the demo printed.
    page.goto(base)
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.fill("input[name=username]", info["airflow_user"])
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/auth/login"))  # a wrong password does not get in
    page.fill("input[name=username]", info["airflow_user"])
    page.fill("input[name=password]", info["airflow_password"])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")

    # nightly_matching's runs: the demo night, in success, its note linking the run report.
    page.goto(f"{base}/dags/{airflow_local.DAG_ID}/runs")
    run_link = page.get_by_role("link", name=re.compile(r"^manual__")).first
    expect(run_link).to_be_visible()
    dag_run_id = run_link.inner_text().strip()
    run_link.click()
    expect(page).to_have_url(re.compile(r"/runs/[^/]+$"))
    expect(page.get_by_text("Success").first).to_be_visible()
    expect(page.get_by_role("link", name=run_id)).to_have_attribute(
        "href", airflow_local.report_url(info["review"], run_id))
    page.screenshot(path=str(shots / "operator-airflow-run.png"))
    page.get_by_role("button", name=re.compile(r"^Show Graph")).click()
    expect(page.get_by_text("link_shard", exact=False).last).to_be_visible()
    page.wait_for_timeout(1500)  # let the graph finish its layout before the picture
    page.screenshot(path=str(shots / "operator-airflow-graph.png"))

    # One mapped ingest_feed per feed, each named by its feed, all in success.
    page.goto(f"{base}/dags/{airflow_local.DAG_ID}/runs/{quote(dag_run_id, safe='')}/tasks/ingest_feed/mapped")
    expect(page.get_by_role("link", name=f"Task Instances [{len(feeds)}]")).to_be_visible()
    for feed in feeds:
        label = f"{feed} ({council_name(feed.split('/')[0])})"
        expect(page.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(page.locator("table tbody tr").filter(has_text="Success")).to_have_count(len(feeds))
    page.screenshot(path=str(shots / "operator-airflow-mapped.png"))

    # link_shard instances are named by match type and shard.
    page.goto(f"{base}/dags/{airflow_local.DAG_ID}/runs/{quote(dag_run_id, safe='')}/tasks/link_shard/mapped")
    expect(page.get_by_role("link", name="tenancy_two_boroughs 1/2", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="tenancy_two_boroughs 2/2", exact=True)).to_be_visible()

    # One task's log.
    camden = next(f for f in feeds if f.startswith("E09000007/"))
    page.goto(f"{base}/dags/{airflow_local.DAG_ID}/runs/{quote(dag_run_id, safe='')}/tasks/ingest_feed/mapped")
    page.get_by_role("link", name=f"{camden} ({council_name('E09000007')})", exact=True).click()
    expect(page).to_have_url(re.compile(r"/tasks/ingest_feed/mapped/\d+$"))
    expect(page.get_by_text(re.compile(r"Done\. Returned value was: \{'feed_id': '" + re.escape(camden)))
           ).to_be_visible()
    page.screenshot(path=str(shots / "operator-airflow-log.png"))

    # From the task: its "Run report" extra link opens the report in the review app.
    page.get_by_role("link", name="Details", exact=True).click()
    link = page.get_by_role("link", name="Run report")
    expect(link).to_have_attribute("href", airflow_local.report_url(info["review"], run_id))
    page.screenshot(path=str(shots / "operator-airflow-links.png"))
    with context.expect_page() as opened:
        link.click()
    report = opened.value
    expect(report).to_have_url(f"{info['review']}/login")
    report.fill("input[name=username]", info["operator"])
    report.fill("input[name=password]", info["operator_password"])
    report.click("button[type=submit]:has-text('Sign in')")
    expect(report).to_have_url(f"{info['review']}/reports")
    report.get_by_role("link", name=run_id).click()
    expect(report).to_have_url(airflow_local.report_url(info["review"], run_id))
    expect(report.locator("h1")).to_have_text(f"Nightly matching run {run_id}")
    expect(report.locator("main")).to_contain_text("Camden (E09000007) · tenancy")
    expect(report.get_by_role("heading", name="Night over night")).to_be_visible()
    expect(report.locator("svg.weights").first).to_be_visible()
    report.screenshot(path=str(shots / "operator-report.png"))
    report.get_by_role("heading", name=re.compile(r"^Models: match weight")).evaluate("h => h.scrollIntoView()")
    report.screenshot(path=str(shots / "operator-report-models.png"))
    # The operator sees no council's flags.
    assert report.goto(f"{info['review']}/queue").status == 403

    # A council's investigator cannot read the report.
    other = chromium.new_context().new_page()
    other.goto(f"{info['review']}/login")
    other.fill("input[name=username]", info["investigator"])
    other.fill("input[name=password]", info["investigator_password"])
    other.click("button[type=submit]:has-text('Sign in')")
    expect(other).to_have_url(f"{info['review']}/queue")
    assert other.goto(airflow_local.report_url(info["review"], run_id)).status == 403


def test_the_assets_were_updated_and_no_airflow_secret_is_in_the_data_home(demo: tuple[Demo, dict[str, str]]) -> None:
    running, info = demo
    token = airflow_local.api_token(info["airflow"], info["airflow_user"], info["airflow_password"])
    events = httpx.get(f"{info['airflow']}/api/v2/assets/events", headers={"Authorization": f"Bearer {token}"},
                       params={"limit": 100}, timeout=30).json()
    seen = {str(e.get(k)) for e in events["asset_events"] for k in ("name", "uri")}
    assert {"councilmatch://store/pseudonymised", "councilmatch://store/flags"} <= seen, seen
    secrets = [*airflow_local.read_env_file(airflow_local.secrets_dir(running.home) / "secrets.env").values(),
               info["airflow_password"]]
    for path in running.home.root.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path


def test_stopping_the_demo_stops_everything_it_started(demo: tuple[Demo, dict[str, str]]) -> None:
    running, _ = demo
    assert _listening(running.airflow_port) and _listening(running.review_port)
    assert running.stop() == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (_listening(running.airflow_port) or _listening(running.review_port)):
        time.sleep(0.5)
    assert not _listening(running.airflow_port), "Airflow's api-server still listens after the demo stopped"
    assert not _listening(running.review_port), "the review app still listens after the demo stopped"
