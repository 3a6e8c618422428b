"""Web routes and permissions through FastAPI's TestClient: sign-in, CSRF, councils, roles, export."""

from __future__ import annotations

import csv
import io
import secrets

import pytest
from fastapi.testclient import TestClient

from councilmatch.councils import CENTRAL
from review import audit
from review.app import create_app
from review.db import engine_for, reading
from review.models import AuditEntry
from sqlalchemy import select

SECRET = secrets.token_urlsafe(32)


class FakeVault:
    """Stands in for anonymise's Vault in route tests; records who asked for what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, council, record_id, actor, reason, dataset=None):  # noqa: ANN001, ANN204
        self.calls.append((council, record_id, actor))
        return {"forenames": "ANNA MARIA", "surname": "KOWALSKA", "record_id": record_id, "council": council}


@pytest.fixture
def vault():  # noqa: ANN201
    return FakeVault()


@pytest.fixture
def app_url(template_db, tmp_path, h):  # noqa: ANN001, ANN201
    url = h.copy_store(template_db, tmp_path)
    yield url
    engine_for(url).dispose()


@pytest.fixture
def client(app_url, vault):  # noqa: ANN001, ANN201
    app = create_app(db_url=app_url, secret_key=SECRET, secure_cookies=False, reidentifier=vault, page_size=10)
    with TestClient(app) as c:
        yield c


def _involving(flags, council, other=None):  # noqa: ANN001, ANN202
    mask = (flags.left_council == council) | (flags.right_council == council)
    if other is not None:
        mask &= (flags.left_council == other) | (flags.right_council == other)
    return flags[mask]


def _not_involving(flags, council):  # noqa: ANN001, ANN202
    return flags[(flags.left_council != council) & (flags.right_council != council)]


def test_pages_need_sign_in(client):
    for path in ("/queue", "/dashboard", "/queue.csv", "/admin/users", "/flags/abc"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path


def test_sign_in_wrong_password_and_rate_limit(client, h):
    assert h.sign_in(client, "cam_inv", "wrong password!").status_code == 401
    for _ in range(4):
        h.sign_in(client, "cam_inv", "wrong password!")
    r = h.sign_in(client, "cam_inv")  # right password, but locked out for this username+IP
    assert r.status_code == 429 and "Too many failed sign-in attempts" in r.text
    assert h.sign_in(client, "cam_sup").status_code == 303  # other usernames unaffected


def test_session_cookie_flags(app_url, vault, h):
    app = create_app(db_url=app_url, secret_key=SECRET, secure_cookies=True, reidentifier=vault)
    with TestClient(app, base_url="https://testserver") as c:
        r = h.sign_in(c, "cam_inv")
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
        assert c.get("/queue").status_code == 200


def test_security_headers(client):
    r = client.get("/login")
    csp = r.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert "<script" not in r.text and "style=" not in r.text


def test_post_without_csrf_is_refused(client, h, flags):
    h.sign_in(client, "cam_inv")
    fid = _involving(flags, h.CAMDEN).flag_id.iloc[0]
    r = client.post(f"/flags/{fid}/decision", data={"version": "1", "outcome": "fraud", "action": "close"})
    assert r.status_code == 403 and "expired" in r.text
    r = client.post(f"/flags/{fid}/decision", data={"version": "1", "outcome": "fraud", "action": "close",
                                                     "csrf_token": "forged"})
    assert r.status_code == 403
    r = client.post("/login", data={"username": "cam_inv", "password": h.PASSWORD})
    assert r.status_code == 403


def test_queue_shows_only_own_council_sorted_and_paginated(client, h, flags):
    h.sign_in(client, "cam_inv")
    mine = _involving(flags, h.CAMDEN)
    r = client.get("/queue")
    assert r.status_code == 200 and f"{len(mine):,} flags involving Camden" in r.text
    shown = []
    for page in range(1, (len(mine) + 9) // 10 + 1):
        text = client.get(f"/queue?page={page}").text
        shown += [fid for fid in flags.flag_id if f"/flags/{fid}" in text]
    assert sorted(shown) == sorted(mine.flag_id)
    first_page = client.get("/queue").text
    top = mine.sort_values(["priority", "match_probability", "flag_id"], ascending=[True, False, True]).flag_id.iloc[0]
    assert f"/flags/{top}" in first_page
    only = client.get("/queue?match_type=blue_badge_deceased&priority=1").text
    expected = mine[(mine.match_type == "blue_badge_deceased") & (mine.priority == 1)]
    assert f"{len(expected):,} flag" in only


def test_pair_page_own_record_reidentified_and_audited(client, h, flags, vault, app_url):
    h.sign_in(client, "cam_inv")
    row = _involving(flags, h.CAMDEN, h.HACKNEY).query("left_council != right_council").iloc[0]
    r = client.get(f"/flags/{row.flag_id}")
    assert r.status_code == 200
    assert "KOWALSKA" in r.text and "<svg" in r.text and "Hackney" in r.text
    own_id = row.left_record_id if row.left_council == h.CAMDEN else row.right_record_id
    other_id = row.right_record_id if row.left_council == h.CAMDEN else row.left_record_id
    assert vault.calls == [(h.CAMDEN, own_id, "cam_inv")]  # never the other council's record
    assert other_id in r.text
    with reading(app_url) as s:
        actions = [(e.actor, e.action) for e in s.execute(select(AuditEntry)).scalars()]
        assert ("cam_inv", "view") in actions and ("cam_inv", "reidentify") in actions
        assert audit.verify(s).ok


def test_other_councils_flag_and_record_are_refused(client, h, flags, vault):
    h.sign_in(client, "cam_inv")
    foreign = _not_involving(flags, h.CAMDEN).flag_id.iloc[0]
    assert client.get(f"/flags/{foreign}").status_code == 404
    assert client.get(f"/flags/{foreign}/record/left").status_code == 404
    token = h.csrf_of(client.get("/queue").text)
    r = client.post(f"/flags/{foreign}/decision", data={"csrf_token": token, "version": "1", "outcome": "fraud",
                                                          "action": "close"})
    assert r.status_code == 404
    shared = _involving(flags, h.CAMDEN).query("left_council != right_council").iloc[0]
    other_side = "right" if shared.left_council == h.CAMDEN else "left"
    own_side = "left" if other_side == "right" else "right"
    assert client.get(f"/flags/{shared.flag_id}/record/{other_side}").status_code == 403
    assert vault.calls == []
    r = client.get(f"/flags/{shared.flag_id}/record/{own_side}")
    assert r.status_code == 200 and "KOWALSKA" in r.text
    assert client.get("/flags/../admin/users").status_code in (303, 403, 404)


def test_record_outcome_conflict_and_both_councils_side_by_side(client, app_url, h, flags, vault):
    row = _involving(flags, h.CAMDEN, h.HACKNEY).query("left_council != right_council").iloc[0]
    h.sign_in(client, "cam_inv")
    page = client.get(f"/flags/{row.flag_id}").text
    token = h.csrf_of(page)
    r = client.post(f"/flags/{row.flag_id}/decision", follow_redirects=False,
                    data={"csrf_token": token, "version": "1", "outcome": "fraud", "amount": "£1,250.50",
                          "note": "=HYPERLINK(x)", "action": "close"})
    assert r.status_code == 303
    # A second tab still holding version 1: refused, not silently overwritten.
    r = client.post(f"/flags/{row.flag_id}/decision",
                    data={"csrf_token": token, "version": "1", "outcome": "no_issue", "action": "close"})
    assert r.status_code == 409 and "changed by someone else" in r.text
    with TestClient(create_app(db_url=app_url, secret_key=SECRET, secure_cookies=False,
                               reidentifier=vault)) as other:
        h.sign_in(other, "hack_inv")
        text = other.get(f"/flags/{row.flag_id}").text
        assert "Fraud" in text and "£1,250.50" in text
        assert "=HYPERLINK" not in text  # notes stay within the deciding council
        r = other.post(f"/flags/{row.flag_id}/decision", follow_redirects=False,
                       data={"csrf_token": h.csrf_of(text), "version": "2", "outcome": "already_known",
                             "action": "close"})
        assert r.status_code == 303
        assert "Closed" in other.get(f"/flags/{row.flag_id}").text
    dash = client.get("/dashboard").text
    assert "£1,250.50" in dash and "Fraud" in dash


def test_bad_amount_is_explained(client, h, flags):
    h.sign_in(client, "cam_inv")
    fid = _involving(flags, h.CAMDEN).flag_id.iloc[0]
    token = h.csrf_of(client.get(f"/flags/{fid}").text)
    r = client.post(f"/flags/{fid}/decision", data={"csrf_token": token, "version": "1", "outcome": "fraud",
                                                      "amount": "lots", "action": "close"})
    assert r.status_code == 422 and "amount: Amount must be a number" in r.text


@pytest.mark.parametrize(("field", "value", "why"), [
    ("outcome", "maybe", "Input should be"),                  # an outcome the form does not offer
    ("outcome", "fraud' OR 1=1 --", "Input should be"),
    ("amount", "-100", "greater than or equal to 0"),
    ("amount", "nan", "Amount must be a number"),
    ("amount", "inf", "Amount must be a number"),
    ("amount", "1e400", "Amount must be a number"),
    ("amount", "99999999999", "less than or equal to"),
    ("amount", "12 pounds", "Amount must be a number"),
    ("note", "x" * 4001, "at most 4000 characters"),          # oversized: refused, not silently cut
    ("version", "two", "valid integer"),
    ("version", "0", "greater than or equal to 1"),
    ("action", "delete", "Input should be"),
])
def test_decision_form_refuses_bad_input_and_saves_nothing(client, app_url, h, flags, field, value, why):
    """Attacks on the typed decision form: each is a 422 naming the field; the flag is untouched."""
    h.sign_in(client, "cam_inv")
    fid = _involving(flags, h.CAMDEN).flag_id.iloc[0]
    token = h.csrf_of(client.get(f"/flags/{fid}").text)
    data = {"csrf_token": token, "version": "1", "outcome": "fraud", "amount": "10", "note": "ok",
            "action": "close"} | {field: value}
    r = client.post(f"/flags/{fid}/decision", data=data, follow_redirects=False)
    assert r.status_code == 422, r.text[:300]
    assert f"{field}: " in r.text and why in r.text
    with reading(app_url) as s:
        from review.models import CouncilReview, ReviewItem
        assert s.get(ReviewItem, fid).version == 1
        assert s.execute(select(CouncilReview.outcome).where(CouncilReview.flag_id == fid,
                                                             CouncilReview.council == h.CAMDEN)).scalar_one() is None


def test_queue_filter_refuses_unknown_values(client, h):
    h.sign_in(client, "cam_inv")
    for query, field in (("status=deleted", "status"), ("priority=high", "priority"), ("page=0", "page"),
                         ("run=" + "r" * 101, "run")):
        r = client.get(f"/queue?{query}")
        assert r.status_code == 422 and f"{field}: " in r.text, query
    assert client.get("/queue?status=new&priority=&run=").status_code == 200


def test_roles_assign_and_admin(client, h, flags):
    fid = _involving(flags, h.CAMDEN).flag_id.iloc[0]
    h.sign_in(client, "cam_inv")
    token = h.csrf_of(client.get("/queue").text)
    assert client.post(f"/flags/{fid}/assign", data={"csrf_token": token, "version": "1",
                                                      "assignee": "cam_inv"}).status_code == 403
    assert client.get("/admin/users").status_code == 403
    client.cookies.clear()
    h.sign_in(client, "cam_sup")
    token = h.csrf_of(client.get(f"/flags/{fid}").text)
    r = client.post(f"/flags/{fid}/assign", data={"csrf_token": token, "version": "1", "assignee": "hack_inv"})
    assert r.status_code == 400 and "own council" in r.text
    r = client.post(f"/flags/{fid}/assign", follow_redirects=False,
                    data={"csrf_token": token, "version": "1", "assignee": "cam_inv2"})
    assert r.status_code == 303
    assert "Assigned to cam_inv2" in client.get(f"/flags/{fid}").text
    client.cookies.clear()
    h.sign_in(client, "admin")  # Islington's admin: Islington's users only
    page = client.get("/admin/users")
    assert page.status_code == 200 and "cam_inv2" not in page.text and "hack_inv" not in page.text
    r = client.post("/admin/users", follow_redirects=False,
                    data={"csrf_token": h.csrf_of(page.text), "username": "newbie", "council": h.ISLINGTON,
                          "role": "investigator", "password": "short"})
    assert r.status_code == 400 and "at least 10" in r.text
    r = client.post("/admin/users", follow_redirects=False,
                    data={"csrf_token": h.csrf_of(page.text), "username": "newbie", "council": h.ISLINGTON,
                          "role": "investigator", "password": "long enough password"})
    assert r.status_code == 303
    assert "newbie" in client.get("/admin/users").text
    client.cookies.clear()
    assert h.sign_in(client, "newbie", "long enough password").status_code == 303


def test_deactivated_user_is_signed_out(client, h, app_url):
    h.sign_in(client, "cam_inv")
    assert client.get("/queue").status_code == 200
    from review.db import writing
    from review.models import User
    with writing(app_url) as s:
        s.execute(select(User).where(User.username == "cam_inv")).scalar_one().active = False
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_csv_export_is_own_council_and_formula_safe(client, h, flags, app_url):
    from review.db import writing
    from review.models import ReviewItem
    mine = _involving(flags, h.CAMDEN)
    evil = mine.flag_id.iloc[0]
    with writing(app_url) as s:  # a record reference that a spreadsheet would run as a formula
        item = s.get(ReviewItem, evil)
        if item.left_council == h.CAMDEN:
            item.left_record_id = "=cmd|' /C calc'!A0"
        else:
            item.right_record_id = "=cmd|' /C calc'!A0"
    h.sign_in(client, "cam_inv")
    r = client.get("/queue.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(x["flag_id"] for x in rows) == sorted(mine.flag_id)
    bad = next(x for x in rows if x["flag_id"] == evil)
    assert bad["your_record_id"] == "'=cmd|' /C calc'!A0"
    assert all(not v.startswith(("=", "+", "-", "@")) for x in rows for v in x.values())
    assert all(x["other_council"] != "" for x in rows)
    assert not any(x["other_council"] == CENTRAL for x in rows)  # names, not codes


def test_dashboard_renders_charts(client, h):
    h.sign_in(client, "cam_inv")
    r = client.get("/dashboard")
    assert r.status_code == 200 and r.text.count("<svg") >= 3


def test_logout_needs_csrf_and_ends_session(client, h):
    h.sign_in(client, "cam_inv")
    assert client.post("/logout", data={}).status_code == 403
    token = h.csrf_of(client.get("/queue").text)
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/queue", follow_redirects=False).status_code == 303
