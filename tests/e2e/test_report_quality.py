"""The run report shows each feed's data-quality profile and its alerts (JSON and HTML)."""

from __future__ import annotations

from pathlib import Path

from councilmatch.home import Home
from orchestrate import run_state
from orchestrate.report import build_run_report
from review.run_report import render_html


def _home(tmp_path: Path) -> Home:
    from anonymise.keys import init_keys

    home = Home(tmp_path / "home").ensure()
    init_keys(home, dev_kek=True)  # run state is encrypted at rest
    return home


def test_report_carries_profiles_and_alerts(tmp_path: Path) -> None:
    home = _home(tmp_path)
    quality = {
        "rows_read": 100, "accepted": 98, "duplicate_record_ids": 2, "duplicate_records": 1,
        "fields": {"nino": {"missing_rate": 0.1, "invalid_rate": 0.03, "placeholder_rate": 0.2, "missing": 10,
                            "invalid": 3, "placeholder": 20},
                   "dob": {"missing_rate": 0.0, "invalid_rate": 0.0, "placeholder_rate": 0.0, "missing": 0,
                           "invalid": 0, "placeholder": 0, "date_style": "9999-99-99 year-first"}},
        "set_missing": {"nino: invalid format": 3},
        "change": {"previous_extract": "tenancy_1-abc", "fields": {"nino": {"placeholder_rate": 0.19}}},
        "alerts": ["nino: placeholders rose (1.0% -> 20.0%)", "dob: date format changed (99/99/9999 day-first -> 9999-99-99 year-first)"],
    }
    run_state.save_feed(home, "r1", {"feed_id": "E09000007/tenancy", "status": "ingested", "rows_in": 100,
                                     "accepted": 98, "quarantined": 2, "quality": quality})
    run_state.save_feed(home, "r1", {"feed_id": "E09000012/tenancy", "status": "failed", "error": "x"})
    report = build_run_report(home, "r1")
    assert list(report["data_quality"]) == ["E09000007/tenancy"]
    assert report["data_quality_alerts"] == [f"E09000007/tenancy: {a}" for a in quality["alerts"]]
    html = render_html(report)
    section = html[html.index("<h2>Data quality</h2>"):html.index("<h2>Time per stage</h2>")]
    assert "E09000007/tenancy: nino: placeholders rose (1.0% -&gt; 20.0%)" in section
    assert "<td>nino: invalid format</td><td>3</td>" in section
    assert "<td>nino</td><td>10.0%</td><td>3.0%</td><td>20.0%</td><td></td><td>placeholder +19.0 pts</td>" in section
    assert "9999-99-99 year-first" in section and "previous extract: tenancy_1-abc" in section


def test_report_without_profiles_has_no_quality_section(tmp_path: Path) -> None:
    home = _home(tmp_path)
    run_state.save_feed(home, "r1", {"feed_id": "E09000007/tenancy", "status": "ingested"})
    report = build_run_report(home, "r1")
    assert report["data_quality"] == {} and "<h2>Data quality</h2>" not in render_html(report)


def test_run_summary_prints_the_alerts(capsys) -> None:
    from rich.console import Console

    from orchestrate.commands import run as run_cli

    run_cli.console = Console(width=200, force_terminal=False)
    run_cli.print_summary({
        "run_id": "r1",
        "feeds": [{"feed_id": "E09000007/tenancy", "status": "ingested",
                   "quality": {"alerts": ["row count fell by more than half: 1,000 -> 400"]}}],
        "published": {"per_match_type": {}, "review_store": {}, "flags": 0, "flags_path": "x"},
        "timings": {}, "report": {"html": "r.html"},
    })
    assert "data-quality alert E09000007/tenancy: row count fell by more than half: 1,000 -> 400" in capsys.readouterr().out
