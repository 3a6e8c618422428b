"""Run reports for the hub's operators: who may read them (attacked), and what they show.

The operator role is hub-level: it reads run reports and nothing else. Council users
(investigators, supervisors, admins) are refused the reports; operators are refused every
council page (queue, flags, records, dashboard, export, user admin); a council admin cannot
mint an operator; a run id cannot walk out of ``reports/``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrate import report as run_report
from councilmatch.home import Home
from review.app import create_app
from review.auth import HUB, add_user, validate_new_user
from review.db import engine_for, writing

SECRET = secrets.token_urlsafe(32)
RUN = "20261125T013000"
XSS = "<script>alert(1)</script>"


def _report(run_id: str, rows_in: int, quarantined: int, per_type: dict[str, int],
            models: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "feeds": [{"feed_id": "E09000007/tenancy", "status": "ingested", "rows_in": rows_in,
                   "accepted": rows_in - quarantined, "quarantined": quarantined,
                   "quarantine_reasons": {"dob: not a date": quarantined}},
                  {"feed_id": f"E09000012/{XSS}", "status": "fell_back", "rows_in": 0, "accepted": 0,
                   "quarantined": 0, "error": "tenancy.csv: header has no column 'tenancy_ref'"}],
        "feeds_failed": [f"E09000012/{XSS}"], "feeds_fell_back": [f"E09000012/{XSS}"],
        "totals": {"rows_in": rows_in, "accepted": rows_in - quarantined, "quarantined": quarantined},
        "flags": sum(per_type.values()), "flags_per_match_type": per_type,
        "change_since_last_run": {"previous_run": "none (first run)"}, "stages": {"plan": {"seconds": 1.5}},
        "models": models or {}, "match_type_titles": {"tenancy_two_boroughs": "Tenancy in two boroughs"},
    }


MODEL_WITH_FIT = {
    "match_type": "tenancy_two_boroughs", "lambda": 0.002, "prior_weight": -8.9, "training_pairs": 812,
    "comparisons": [{"name": "surname", "levels": [{"label": "exact", "m": 0.9, "u": 0.01, "weight": 6.49},
                                                   {"label": "else", "m": 0.1, "u": 0.99, "weight": -3.3}]}],
    "fit_check": {"converged": True, "em_iterations": 7, "max_m_change": 0.00042,
                  "precision_at_threshold": {"estimated": 0.97}, "warnings": ["few training pairs"]},
}
MODEL_WITHOUT_FIT = {"match_type": "ctr_payroll", "lambda": 0.01,
                     "comparisons": [{"name": "nino", "levels": [{"label": "exact", "weight": 11.2}]}],
                     "household": {"left_person_missing": 0.0123, "start": 0.1, "records": 40219, "iterations": 14,
                                   "right_sampled": 1.0, "at_bound": False, "fallback": None}}


@pytest.fixture
def home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home").ensure()
    home.reports.mkdir(parents=True)
    nights = [("20261122T013000", 900, 9, {"tenancy_two_boroughs": 10}),
              ("20261123T013000", 950, 12, {"tenancy_two_boroughs": 12, "ctr_payroll": 1}),
              ("20261124T013000", 940, 30, {"tenancy_two_boroughs": 11, "ctr_payroll": 2})]
    for run_id, rows, q, per in nights:
        (home.reports / f"{run_id}.json").write_text(json.dumps(_report(run_id, rows, q, per)))
    tonight = _report(RUN, 1000, 40, {"tenancy_two_boroughs": 14, "ctr_payroll": 3},
                      models={"tenancy_two_boroughs": MODEL_WITH_FIT, "ctr_payroll": MODEL_WITHOUT_FIT})
    tonight["trend"] = run_report.trend(home, tonight)
    (home.reports / f"{RUN}.json").write_text(json.dumps(tonight))
    (home.root / "secret.json").write_text(json.dumps({"run_id": "stolen", "feeds": []}))
    return home


@pytest.fixture
def client(home: Home, template_db: Path, tmp_path: Path, h: Any):  # noqa: ANN201
    url = h.copy_store(template_db, tmp_path)
    with writing(url) as session:
        add_user(session, username="hub_op", council=HUB, role="operator", password="correct horse battery",
                 actor="test")
        add_user(session, username="hub_adm", council=HUB, role="hub_admin", password="correct horse battery",
                 actor="test")
    app = create_app(home, db_url=url, secret_key=SECRET, secure_cookies=False, reidentifier=lambda *a, **k: {},
                     audit_root=tmp_path)  # the store's audit key lives beside the copied store
    with TestClient(app) as c:
        yield c
    engine_for(url).dispose()


def test_trend_reads_earlier_nights_and_skips_what_is_not_a_report(home: Home) -> None:
    (home.reports / "20261121T013000.json").write_text("{not json")
    tonight = _report("20261126T013000", 10, 1, {"ctr_payroll": 5})
    tonight["feeds"].append({"feed_id": "E09000019/payroll", "status": "failed", "rows_in": 50, "accepted": 50})
    tonight["feeds"].append({"feed_id": "E09000019/tenancy", "status": "no_new_extract", "rows_in": 7,
                             "accepted": 7})
    points = run_report.trend(home, tonight, nights=4)
    assert points[-1]["records_in_matching"] == 9 + 7  # the failed feed's rows are not in matching
    assert [p["run_id"] for p in points] == ["20261123T013000", "20261124T013000", RUN, "20261126T013000"]
    assert [p["quarantined"] for p in points] == [12, 30, 40, 1]
    assert [p["flags_per_match_type"].get("ctr_payroll", 0) for p in points] == [1, 2, 3, 5]


def test_operator_reads_the_report_councils_by_name_trend_and_fit_check(client: TestClient, h: Any) -> None:
    r = h.sign_in(client, "hub_op", "correct horse battery")
    assert r.status_code == 303 and r.headers["location"] == "/reports"
    listing = client.get("/reports")
    assert listing.status_code == 200
    assert listing.text.index(RUN) < listing.text.index("20261122T013000")  # newest first
    page = client.get(f"/reports/{RUN}").text
    assert "Camden <span class='muted'>(E09000007)</span> · tenancy" in page
    assert "Hackney" in page
    assert "Tenancy in two boroughs" in page
    # Night over night: four nights of quarantine, with the change since last night and a sparkline.
    trend = page[page.index("Night over night"):page.index("Change since the last run")]
    for night in ("20261122T013000", "20261123T013000", "20261124T013000", RUN):
        assert night in trend
    assert "Rows quarantined" in trend and "+10" in trend and "<polyline" in trend
    # Models: one weights chart per match type, the fit check as a table, or a plain "none" without one.
    assert page.count("<svg class=\"weights\"") == 2
    fit = page[page.index("id='model-tenancy_two_boroughs'"):page.index("id='model-ctr_payroll'")]
    assert "em iterations" in fit and "0.00042" in fit and "estimated: 0.97" in fit and "few training pairs" in fit
    assert "No fit check recorded for this model." in page[page.index("id='model-ctr_payroll'"):]
    # a household match type's estimated share of left records whose own person is absent
    assert "for an estimated 1.23% of 40,219 left records (EM from 10.00%)" in page[page.index("id='model-ctr_payroll'"):]
    assert "Household:" not in fit
    assert XSS not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("username", ["cam_inv", "cam_sup", "admin", "hack_inv"])
def test_council_users_are_refused_run_reports(client: TestClient, h: Any, username: str) -> None:
    h.sign_in(client, username)
    for path in ("/reports", f"/reports/{RUN}"):
        r = client.get(path)
        assert r.status_code == 403, (username, path)
        assert "Rows quarantined" not in r.text and "tenancy_two_boroughs" not in r.text


def test_operator_is_refused_every_council_page(client: TestClient, h: Any, flags: Any) -> None:
    h.sign_in(client, "hub_op", "correct horse battery")
    assert client.get("/", follow_redirects=False).headers["location"] == "/reports"
    fid = flags.flag_id.iloc[0]
    for path in ("/queue", "/queue.csv", "/dashboard", f"/flags/{fid}", f"/flags/{fid}/record/left",
                 f"/flags/{fid}/record/right", "/admin/users"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 403, path
        assert "NW1" not in r.text and "KOWALSKA" not in r.text
    token = h.csrf_of(client.get("/reports").text)
    r = client.post(f"/flags/{fid}/decision", data={"csrf_token": token, "version": "1", "outcome": "fraud"})
    assert r.status_code == 403


def test_hub_admin_reads_run_reports_and_lands_on_users(client: TestClient, h: Any) -> None:
    r = h.sign_in(client, "hub_adm", "correct horse battery")
    assert r.status_code == 303 and r.headers["location"] == "/admin/users"
    page = client.get(f"/reports/{RUN}")
    assert page.status_code == 200 and "Night over night" in page.text
    assert client.get("/queue", follow_redirects=False).status_code == 403


def test_operator_session_is_server_side_a_kept_cookie_opens_nothing_after_sign_out(client: TestClient,
                                                                                    h: Any) -> None:
    h.sign_in(client, "hub_op", "correct horse battery")
    page = client.get("/reports")
    assert page.status_code == 200
    kept = dict(client.cookies)
    client.post("/logout", data={"csrf_token": h.csrf_of(page.text)}, follow_redirects=False)
    client.cookies.clear()
    for name, value in kept.items():
        client.cookies.set(name, value)
    r = client.get("/reports", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_run_id_cannot_leave_the_reports_folder(client: TestClient, h: Any) -> None:
    h.sign_in(client, "hub_op", "correct horse battery")
    for attempt in ("..%2Fsecret", "%2E%2E%2Fsecret", ".hidden", "secret", "a" * 80, f"{RUN}.json"):
        r = client.get(f"/reports/{attempt}")
        assert r.status_code == 404, attempt
        assert "stolen" not in r.text
    r = client.get("/reports/../secret")  # the client resolves it to /secret: no page there
    assert r.status_code == 404 and "stolen" not in r.text


def test_a_council_admin_cannot_create_an_operator(client: TestClient, h: Any) -> None:
    h.sign_in(client, "admin")
    page = client.get("/admin/users")
    assert "operator" not in page.text.split('name="role"', 1)[-1].split("</select>", 1)[0]
    for council in (HUB, h.ISLINGTON):
        r = client.post("/admin/users", data={"csrf_token": h.csrf_of(page.text), "username": "sneaky",
                                              "council": council, "role": "operator",
                                              "password": "long enough password"})
        assert r.status_code == 403
    client.cookies.clear()
    assert h.sign_in(client, "sneaky", "long enough password").status_code == 401


def test_operator_has_no_council_and_council_roles_need_one() -> None:
    validate_new_user("op", HUB, "operator", "long enough password")
    with pytest.raises(ValueError, match="hub"):
        validate_new_user("op", "E09000007", "operator", "long enough password")
    with pytest.raises(ValueError, match="London borough"):
        validate_new_user("inv", HUB, "investigator", "long enough password")
