"""The review app under attack: each test replays an attack from the security review
(issue 10) and checks that it now fails. The store-backed ones run on SQLite and PostgreSQL.

Numbers in test names are the issue's finding numbers; docs/security.md ("Review app")
lists what each test tries.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import secrets
import stat
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from orchestrate.cli import app as cli_app
from councilmatch.home import Home
from review import audit, auth
from review.app import create_app, session_secret
from review.auth import WeakSecretError
from review.db import engine_for, reading, writing
from review.export import csv_lines
from review.models import AuditEntry, AuditHead, LoginFailure, User
from review.store import publish_flags

SECRET = secrets.token_urlsafe(32)
ROOT = Path(__file__).resolve().parents[2]
HUGE = "1" * 23  # the 23-digit integers of finding 13


class FakeVault:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, council, record_id, actor, reason, dataset=None):  # noqa: ANN001, ANN204
        self.calls.append((council, record_id, actor))
        return {"forenames": "ANNA", "surname": "KOWALSKA", "nino": "QQ123456C", "record_id": record_id}


@pytest.fixture
def store(db_url, flags, h):  # noqa: ANN001, ANN201
    """A review store with flags and users of three councils plus a hub admin (SQLite and PostgreSQL)."""
    publish_flags(db_url, flags)
    h.add_users(db_url, ("cam_inv", h.CAMDEN, "investigator"), ("cam_sup", h.CAMDEN, "supervisor"),
                ("cam_admin", h.CAMDEN, "admin"), ("hack_inv", h.HACKNEY, "investigator"),
                ("isl_admin", h.ISLINGTON, "admin"), ("hub_op", auth.HUB, "hub_admin"))
    return db_url


@pytest.fixture
def app(store):  # noqa: ANN001, ANN201
    return create_app(db_url=store, secret_key=SECRET, secure_cookies=False, reidentifier=FakeVault())


def client_of(app, ip: str = "198.51.100.10") -> TestClient:  # noqa: ANN001
    return TestClient(app, client=(ip, 50000))


def signed_in(app, h, username: str, ip: str = "198.51.100.10") -> TestClient:  # noqa: ANN001
    c = client_of(app, ip)
    assert h.sign_in(c, username).status_code == 303, username
    return c


def shared_flag(flags, a: str, b: str):  # noqa: ANN001, ANN201
    return flags[((flags.left_council == a) & (flags.right_council == b))
                 | ((flags.left_council == b) & (flags.right_council == a))].iloc[0]


def foreign_flag(flags, council: str) -> str:  # noqa: ANN001
    return flags[(flags.left_council != council) & (flags.right_council != council)].flag_id.iloc[0]


def audit_rows(db_url: str) -> list[AuditEntry]:
    with reading(db_url) as s:
        return list(s.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())


def user_row(db_url: str, username: str) -> User:
    with reading(db_url) as s:
        return s.execute(select(User).where(User.username == username)).scalar_one()


# --------------------------------------------------------------------------
# 3. A council's admin administers their own council only; hub_admin creates councils' admins
# --------------------------------------------------------------------------


def test_3_council_admin_cannot_create_users_in_another_council(app, store, h):
    c = signed_in(app, h, "cam_admin")
    token = h.csrf_of(c.get("/admin/users").text)
    for council, role, name in ((h.HACKNEY, "investigator", "evil_hack"), (h.ISLINGTON, "admin", "evil_isl"),
                                (auth.HUB, "hub_admin", "evil_hub"), (h.CAMDEN, "hub_admin", "evil_hub2")):
        r = c.post("/admin/users", data={"csrf_token": token, "username": name, "council": council, "role": role,
                                         "password": "long enough password"})
        assert r.status_code == 403, (council, role)
        with reading(store) as s:
            assert s.execute(select(User).where(User.username == name)).scalar_one_or_none() is None
    assert c.post("/admin/users", follow_redirects=False,
                  data={"csrf_token": token, "username": "cam_new", "council": h.CAMDEN, "role": "investigator",
                        "password": "long enough password"}).status_code == 303
    denied = [e for e in audit_rows(store) if e.action == "denied" and e.actor == "cam_admin"]
    assert {e.object for e in denied} >= {"user:evil_hack", "user:evil_isl", "user:evil_hub"}
    # The attack of the review: sign in as a self-made Hackney investigator and open a Hackney record.
    assert h.sign_in(client_of(app), "evil_hack", "long enough password").status_code == 401


def test_3_council_admin_cannot_see_or_deactivate_other_councils_users(app, store, h):
    c = signed_in(app, h, "cam_admin")
    page = c.get("/admin/users").text
    assert "cam_inv" in page and "hack_inv" not in page and "isl_admin" not in page and "hub_op" not in page
    token = h.csrf_of(page)
    for victim in ("hack_inv", "isl_admin", "hub_op"):
        r = c.post(f"/admin/users/{user_row(store, victim).id}/active", data={"csrf_token": token, "active": "0"})
        assert r.status_code == 403, victim
        assert user_row(store, victim).active, victim
    assert h.sign_in(client_of(app), "hack_inv").status_code == 303
    r = c.post(f"/admin/users/{user_row(store, 'cam_inv').id}/active", follow_redirects=False,
               data={"csrf_token": token, "active": "0"})
    assert r.status_code == 303 and not user_row(store, "cam_inv").active


def test_3_hub_admin_creates_a_councils_first_admin_and_sees_no_council_data(app, store, h, flags):
    hub = client_of(app)
    r = h.sign_in(hub, "hub_op")
    assert r.status_code == 303 and r.headers["location"] == "/admin/users"
    fid = shared_flag(flags, h.CAMDEN, h.HACKNEY).flag_id
    for path in ("/queue", "/queue.csv", "/dashboard", f"/flags/{fid}", f"/flags/{fid}/record/left"):
        assert hub.get(path, follow_redirects=False).status_code == 403, path
    assert hub.get("/", follow_redirects=False).headers["location"] == "/admin/users"
    page = hub.get("/admin/users").text
    assert "cam_admin" in page and "cam_inv" not in page  # admins only, no council's staff
    assert '>Queue</a>' not in page
    token = h.csrf_of(page)
    r = hub.post("/admin/users", data={"csrf_token": token, "username": "hack_inv2", "council": h.HACKNEY,
                                       "role": "investigator", "password": "long enough password"})
    assert r.status_code == 403  # the hub does not staff councils
    r = hub.post("/admin/users", follow_redirects=False,
                 data={"csrf_token": token, "username": "hack_admin", "council": h.HACKNEY, "role": "admin",
                       "password": "long enough password"})
    assert r.status_code == 303
    assert any(e.actor == "hub_op" and e.action == "user_add" and e.object == "user:hack_admin"
               for e in audit_rows(store))
    # Hackney's new admin staffs Hackney (and only Hackney).
    ha = client_of(app)
    assert h.sign_in(ha, "hack_admin", "long enough password").status_code == 303
    token = h.csrf_of(ha.get("/admin/users").text)
    assert ha.post("/admin/users", follow_redirects=False,
                   data={"csrf_token": token, "username": "hack_sup", "council": h.HACKNEY, "role": "supervisor",
                         "password": "long enough password"}).status_code == 303


def test_3_hub_admin_is_made_on_the_hub_by_the_cli(tmp_path, monkeypatch):
    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    home = Home.resolve(tmp_path / "home").ensure()
    runner = CliRunner()
    r = runner.invoke(cli_app, ["users", "add", "--home", str(home.root), "--username", "op1", "--role", "hub_admin",
                                "--password-stdin"], input="a long enough password\n")
    assert r.exit_code == 0 and "hub_admin op1 (hub)" in r.output, r.output
    r = runner.invoke(cli_app, ["users", "add", "--home", str(home.root), "--username", "op2", "--role", "hub_admin",
                                "--council", "E09000007", "--password-stdin"], input="a long enough password\n")
    assert r.exit_code == 2 and "belongs to no council" in r.output
    r = runner.invoke(cli_app, ["users", "add", "--home", str(home.root), "--username", "inv", "--password-stdin"],
                      input="a long enough password\n")
    assert r.exit_code == 2 and "council" in r.output
    engine_for(home.review_db_url).dispose()


# --------------------------------------------------------------------------
# 4. Sessions end server-side: sign-out, deactivation, password change
# --------------------------------------------------------------------------


def _replay(app, cookie: str, path: str) -> int:  # noqa: ANN001
    c = client_of(app, "203.0.113.66")
    c.cookies.set("cm_session", cookie)
    return c.get(path, follow_redirects=False).status_code


def test_4_a_cookie_saved_before_sign_out_opens_nothing(app, h, flags):
    c = signed_in(app, h, "cam_inv")
    fid = shared_flag(flags, h.CAMDEN, h.HACKNEY).flag_id
    stolen = c.cookies.get("cm_session")
    assert _replay(app, stolen, "/queue") == 200  # the copy works while the session lives
    c.post("/logout", data={"csrf_token": h.csrf_of(c.get("/queue").text)})
    for path in ("/queue", f"/flags/{fid}", "/queue.csv"):
        assert _replay(app, stolen, path) == 303, path


def test_4_deactivation_and_password_change_end_sessions(app, store, h):
    inv = signed_in(app, h, "cam_inv")
    sup = signed_in(app, h, "cam_sup")
    stolen_inv, stolen_sup = inv.cookies.get("cm_session"), sup.cookies.get("cm_session")
    admin = signed_in(app, h, "cam_admin")
    token = h.csrf_of(admin.get("/admin/users").text)
    uid = user_row(store, "cam_inv").id
    admin.post(f"/admin/users/{uid}/active", data={"csrf_token": token, "active": "0"})
    admin.post(f"/admin/users/{uid}/active", data={"csrf_token": token, "active": "1"})
    assert _replay(app, stolen_inv, "/queue") == 303  # reactivation does not revive old sessions
    with writing(store) as s:
        user = s.execute(select(User).where(User.username == "cam_sup")).scalar_one()
        assert auth.set_password(s, user, "a brand new password", actor="test") >= 1
    assert _replay(app, stolen_sup, "/queue") == 303
    assert h.sign_in(client_of(app), "cam_sup", "a brand new password").status_code == 303


def test_4_changing_ones_password_ends_a_stolen_session(app, h):
    victim = signed_in(app, h, "cam_inv")
    stolen = victim.cookies.get("cm_session")
    page = victim.get("/account/password").text
    r = victim.post("/account/password", data={"csrf_token": h.csrf_of(page), "current": "not my password",
                                               "new": "a brand new password"})
    assert r.status_code == 400 and _replay(app, stolen, "/queue") == 200  # wrong current password: nothing changes
    r = victim.post("/account/password", follow_redirects=False,
                    data={"csrf_token": h.csrf_of(page), "current": h.PASSWORD, "new": "a brand new password"})
    assert r.status_code == 303
    assert _replay(app, stolen, "/queue") == 303  # the thief's copy is dead
    assert victim.get("/queue", follow_redirects=False).status_code == 200  # the user's browser goes on


def test_4_cli_set_password_ends_sessions(tmp_path, monkeypatch, h):
    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    home = Home.resolve(tmp_path / "home").ensure()
    h.add_users(home.review_db_url, ("cam_inv", h.CAMDEN, "investigator"))
    app = create_app(home, secure_cookies=False, reidentifier=FakeVault())
    stolen = signed_in(app, h, "cam_inv").cookies.get("cm_session")
    r = CliRunner().invoke(cli_app, ["users", "set-password", "--home", str(home.root), "--username", "cam_inv",
                                     "--password-stdin"], input="another long password\n")
    assert r.exit_code == 0 and "1 session(s) ended" in r.output, r.output
    assert _replay(app, stolen, "/queue") == 303
    engine_for(home.review_db_url).dispose()


# --------------------------------------------------------------------------
# 5. The audit chain is keyed and anchored outside the database
# --------------------------------------------------------------------------


def _verify(db_url: str) -> audit.VerifyResult:
    with reading(db_url) as s:
        return audit.verify(s)


def test_5_truncating_the_trail_and_moving_the_head_back_is_detected(app, store, h, flags):
    c = signed_in(app, h, "cam_inv")
    c.get(f"/flags/{shared_flag(flags, h.CAMDEN, h.HACKNEY).flag_id}")
    audit.checkpoint(store, "test")
    assert _verify(store).ok
    rows = audit_rows(store)
    keep = rows[-3]
    with writing(store) as s:  # the attack: drop the last entries, point the head at the new end
        s.execute(text("delete from audit_log where seq > :n"), {"n": keep.seq})
        s.execute(text("update audit_head set seq = :n, hash = :h where id = 1"), {"n": keep.seq, "h": keep.hash})
    result = _verify(store)
    assert not result.ok and any("removed from the end" in p for p in result.problems), result.problems


def test_5_recomputing_every_hash_is_detected(store):
    audit.checkpoint(store, "test")
    rows = audit_rows(store)
    prev = audit.GENESIS
    with writing(store) as s:  # rewrite actor of every entry and re-chain with plain SHA-256 (no key)
        for e in rows:
            actor = "nobody" if e.actor == "cli" or e.actor == "test" else e.actor
            payload = json.dumps([e.seq, e.at, actor, e.action, e.object, e.detail, prev], separators=(",", ":"),
                                 ensure_ascii=False)
            new = hashlib.sha256(payload.encode()).hexdigest()
            s.execute(text("update audit_log set actor = :a, prev_hash = :p, hash = :h where seq = :n"),
                      {"a": actor, "p": prev, "h": new, "n": e.seq})
            prev = new
        s.execute(text("update audit_head set hash = :h where id = 1"), {"h": prev})
    result = _verify(store)
    assert not result.ok and any("MAC mismatch" in p for p in result.problems)
    # Even with a guessed key the rewrite disagrees with the signed checkpoint.
    fake = audit.Anchor(b"k" * 32, audit.root_for(store) / audit.CHECKPOINTS_FILE, "guess")
    with reading(store) as s:
        assert not audit.verify(s, anchor=fake).ok


def test_5_a_forged_checkpoint_is_refused_and_the_key_is_not_in_the_database(store, tmp_path):
    anchor = audit.anchor_for(store)
    with open(anchor.checkpoints, "a") as f:
        f.write(json.dumps({"seq": 1, "head": "0" * 64, "at": "x", "reason": "forged", "mac": "0" * 64}) + "\n")
    result = _verify(store)
    assert not result.ok and any("not a checkpoint signed" in p for p in result.problems)
    with reading(store) as s:
        dump = " ".join(str(v) for row in s.execute(text("select * from audit_log")).all() for v in row)
        dump += " ".join(str(v) for row in s.execute(text("select * from audit_head")).all() for v in row)
    assert base64.urlsafe_b64encode(anchor.key).decode()[:20] not in dump and anchor.key.hex() not in dump


def test_5_cli_verify_detects_truncation_against_a_logged_checkpoint(tmp_path, monkeypatch, flags):
    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    from anonymise import at_rest
    from anonymise.keys import init_keys

    home = Home.resolve(tmp_path / "home").ensure()
    init_keys(home)
    runner = CliRunner()
    path = tmp_path / "run.parquet"
    at_rest.write_frame(path, flags, home)  # the hub's flags are encrypted at rest; publish refuses plain Parquet
    assert runner.invoke(cli_app, ["users", "add", "--home", str(home.root), "--username", "cam_inv", "--council",
                                   "E09000007", "--password-stdin"], input="a long enough password\n").exit_code == 0
    assert runner.invoke(cli_app, ["review", "publish", str(path), "--home", str(home.root)]).exit_code == 0
    r = runner.invoke(cli_app, ["audit", "checkpoint", "--home", str(home.root)])
    logged = r.output.strip().splitlines()[-1]
    assert r.exit_code == 0 and json.loads(logged)["seq"] >= 1
    r = runner.invoke(cli_app, ["audit", "verify", "--home", str(home.root)])
    assert r.exit_code == 0 and "intact" in r.output
    with writing(home.review_db_url) as s:
        last = s.execute(select(AuditHead)).scalar_one().seq
        prev = s.execute(select(AuditEntry).where(AuditEntry.seq == last - 1)).scalar_one()
        s.execute(text("delete from audit_log where seq = :n"), {"n": last})
        s.execute(text("update audit_head set seq = :n, hash = :h"), {"n": prev.seq, "h": prev.hash})
    (home.root / audit.CHECKPOINTS_FILE).unlink()  # even with the checkpoint file gone, the logged line holds
    r = runner.invoke(cli_app, ["audit", "verify", "--home", str(home.root)])
    assert r.exit_code == 0  # without any anchor a cut tail cannot be seen (documented)
    r = runner.invoke(cli_app, ["audit", "verify", "--home", str(home.root), "--checkpoint", logged])
    assert r.exit_code == 1 and "removed from the end" in r.output
    engine_for(home.review_db_url).dispose()


# --------------------------------------------------------------------------
# 6. Placeholder and low-entropy session secrets are refused
# --------------------------------------------------------------------------


def test_6_the_env_example_placeholder_cannot_sign_sessions(store, tmp_path, monkeypatch):
    placeholder = next(line.split("=", 1)[1] for line in (ROOT / ".env.example").read_text().splitlines()
                       if line.startswith("COUNCILMATCH_REVIEW_SECRET="))
    with pytest.raises(WeakSecretError):
        create_app(db_url=store, secret_key=placeholder, secure_cookies=False)
    monkeypatch.setenv("COUNCILMATCH_REVIEW_SECRET", placeholder)
    with pytest.raises(WeakSecretError):
        session_secret(Home(tmp_path))
    for weak in ("a" * 64, "abcdefghijklmnopqrstuvwxyz0123456789", "short-but-random-Q7x", "0123456789" * 4):
        with pytest.raises(WeakSecretError):
            auth.check_session_secret(weak)
    auth.check_session_secret(secrets.token_urlsafe(32))
    auth.check_session_secret(secrets.token_hex(32))


# --------------------------------------------------------------------------
# 11. Sign-in limits: per address across names, by the trusted forwarded address
# --------------------------------------------------------------------------


def test_11_password_spraying_from_one_address_is_stopped(app, h):
    sprayer = client_of(app, "203.0.113.7")
    codes = [h.sign_in(sprayer, f"user{i}", "Winter2026!").status_code for i in range(auth.MAX_IP_FAILURES)]
    assert codes == [401] * auth.MAX_IP_FAILURES
    assert h.sign_in(sprayer, "cam_inv", "Winter2026!").status_code == 429
    assert h.sign_in(sprayer, "cam_inv").status_code == 429  # even the right password, from there
    assert h.sign_in(client_of(app, "198.51.100.20"), "cam_inv").status_code == 303  # the real user elsewhere


def test_11_behind_the_proxy_an_attacker_cannot_lock_out_the_real_user(store, h):
    proxy = "10.0.0.2"
    app = create_app(db_url=store, secret_key=SECRET, secure_cookies=False, reidentifier=FakeVault(),
                     proxies="10.0.0.0/24")

    def via_proxy(client_addr: str) -> TestClient:
        c = client_of(app, proxy)
        c.headers["x-forwarded-for"] = f"{client_addr}, {proxy}"
        return c

    attacker = via_proxy("203.0.113.9")
    for _ in range(auth.MAX_FAILURES):
        assert h.sign_in(attacker, "cam_inv", "guess guess guess").status_code == 401
    assert h.sign_in(attacker, "cam_inv").status_code == 429
    assert h.sign_in(via_proxy("198.51.100.30"), "cam_inv").status_code == 303
    # A client that is not the proxy cannot pick its address by sending the header.
    spoofer = client_of(app, "203.0.113.50")
    for i in range(auth.MAX_FAILURES):
        spoofer.headers["x-forwarded-for"] = f"192.0.2.{i + 1}"
        assert h.sign_in(spoofer, "cam_sup", "guess guess guess").status_code == 401
    spoofer.headers["x-forwarded-for"] = "192.0.2.200"
    assert h.sign_in(spoofer, "cam_sup", "guess guess guess").status_code == 429


# --------------------------------------------------------------------------
# 12. Argon2 runs with the SQLite write lock free
# --------------------------------------------------------------------------


def test_12_password_hashing_does_not_hold_the_write_lock(sqlite_url, flags, h, monkeypatch):
    from review import db as review_db

    publish_flags(sqlite_url, flags)
    h.add_users(sqlite_url, ("cam_inv", h.CAMDEN, "investigator"))
    lock = review_db._sqlite_write_lock(review_db.normalise_url(sqlite_url))
    held: list[bool] = []
    real = auth.check_password

    def spy(stored: str, password: str) -> bool:
        held.append(lock.locked())
        return real(stored, password)

    monkeypatch.setattr(auth, "check_password", spy)
    app = create_app(db_url=sqlite_url, secret_key=SECRET, secure_cookies=False, reidentifier=FakeVault())
    c = client_of(app)
    assert h.sign_in(c, "cam_inv", "wrong password!!").status_code == 401
    assert h.sign_in(c, "nobody", "wrong password!!").status_code == 401
    assert h.sign_in(c, "cam_inv").status_code == 303
    assert held == [False, False, False]


# --------------------------------------------------------------------------
# 13. Oversized integers are a 4xx, never a 500
# --------------------------------------------------------------------------


def test_13_oversized_integers_are_refused_cleanly(app, store, h, flags):
    c = signed_in(app, h, "cam_inv")
    fid = shared_flag(flags, h.CAMDEN, h.HACKNEY).flag_id
    token = h.csrf_of(c.get("/queue").text)
    for path in (f"/queue?page={HUGE}", f"/queue?priority={HUGE}", f"/queue.csv?priority={HUGE}",
                 f"/queue?page=-{HUGE}", "/queue?page=abc"):
        r = c.get(path)
        assert 400 <= r.status_code < 500 and "Not a valid request" in r.text, path
    assert c.get("/queue?priority=&status=&page=").status_code == 200  # "Any" in the filter form
    r = c.post(f"/flags/{fid}/decision", data={"csrf_token": token, "version": HUGE, "outcome": "fraud"})
    assert r.status_code == 422
    r = c.post(f"/flags/{fid}/assign", data={"csrf_token": token, "version": HUGE, "assignee": "cam_inv"})
    assert r.status_code in (403, 422)
    admin = signed_in(app, h, "cam_admin")
    r = admin.post(f"/admin/users/{HUGE}/active", data={"csrf_token": h.csrf_of(admin.get("/admin/users").text),
                                                          "active": "0"})
    assert r.status_code == 422


# --------------------------------------------------------------------------
# 15. The SQLite store and its -wal/-shm files are private
# --------------------------------------------------------------------------


def test_15_review_db_and_its_wal_are_0600(tmp_path, flags, h):
    h.with_keys(tmp_path)
    url = f"sqlite:///{tmp_path / 'review.db'}"
    publish_flags(url, flags)
    files = [tmp_path / n for n in ("review.db", "review.db-wal", "review.db-shm")]
    assert all(p.exists() for p in files)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o600"}
    engine_for(url).dispose()
    old = tmp_path / "old"
    h.with_keys(old)
    (old / "review.db").touch(mode=0o644)
    os.chmod(old / "review.db", 0o644)  # a store made by an older version
    publish_flags(f"sqlite:///{old / 'review.db'}", flags)
    assert stat.S_IMODE((old / "review.db").stat().st_mode) == 0o600
    engine_for(f"sqlite:///{old / 'review.db'}").dispose()


# --------------------------------------------------------------------------
# 16. CSV export: no formula, whatever the separator
# --------------------------------------------------------------------------


@pytest.mark.parametrize("evil", ["TEN;=1+1", "=1+1", "TEN,+cmd|' /C calc'!A0", "a|@SUM(A1)", "x\t-1+2", "@A1"])
def test_16_csv_cells_cannot_become_formulas_with_any_separator(evil):
    out = "".join(csv_lines(["id"], [[evil]]))
    body = out.splitlines()[1]
    for sep in (",", ";", "\t", "|"):
        for cell in body.split(sep):  # a naive reader that splits on the separator, quotes and all
            cell = cell.strip('"')
            assert not cell.startswith(("=", "+", "-", "@")), (sep, cell)
    assert re.sub(r"'(?=[=+\-@\t])", "", next(csv.reader(io.StringIO(body)))[0]) == evil  # only neutralised


def test_16_export_route_neutralises_semicolon_formulas(app, store, h, flags):
    from review.models import ReviewItem
    fid = flags[flags.left_council == h.CAMDEN].flag_id.iloc[0]
    with writing(store) as s:
        s.get(ReviewItem, fid).left_record_id = "TEN;=1+1"
    c = signed_in(app, h, "cam_inv")
    text_ = c.get("/queue.csv").text
    assert "TEN;=1+1" not in text_ and "TEN;'=1+1" in text_
    assert all(not cell.strip('"').startswith("=") for line in text_.splitlines() for cell in line.split(";"))


# --------------------------------------------------------------------------
# 17. No staff names across councils
# --------------------------------------------------------------------------


def test_17_the_other_council_sees_no_staff_usernames(app, store, h, flags):
    row = shared_flag(flags, h.CAMDEN, h.HACKNEY)
    sup = signed_in(app, h, "cam_sup")
    page = sup.get(f"/flags/{row.flag_id}").text
    sup.post(f"/flags/{row.flag_id}/assign", data={"csrf_token": h.csrf_of(page), "version": "1",
                                                   "assignee": "cam_inv"})
    page = sup.get(f"/flags/{row.flag_id}").text
    sup.post(f"/flags/{row.flag_id}/decision", data={"csrf_token": h.csrf_of(page), "version": "2",
                                                     "outcome": "fraud", "amount": "100", "action": "close"})
    own = sup.get(f"/flags/{row.flag_id}").text
    assert "cam_sup" in own.split("Outcomes")[1] and "Assigned to cam_inv" in own  # own council: names shown
    other = signed_in(app, h, "hack_inv").get(f"/flags/{row.flag_id}").text
    assert "Fraud" in other  # the outcome is shared (docs/security.md)
    assert "cam_sup" not in other and "cam_inv" not in other


# --------------------------------------------------------------------------
# 19. A running app reads records sealed under a new key without restart
# --------------------------------------------------------------------------


def test_19_records_sealed_after_key_rotation_are_readable_without_restart(tmp_path, monkeypatch, flags, h):
    keys = pytest.importorskip("anonymise.keys")
    from anonymise.vault import Vault

    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    monkeypatch.setenv("COUNCILMATCH_KEK", base64.b64encode(os.urandom(32)).decode())
    home = Home.resolve(tmp_path / "home").ensure()
    keys.init_keys(home)
    first, second = flags[flags.left_council == h.CAMDEN].iloc[:2].itertuples()

    def seal(row, extract: str, surname: str) -> None:  # noqa: ANN001
        Vault(home, keys.load_keyring(home)).store(h.CAMDEN, extract, pd.DataFrame(
            {"council": [h.CAMDEN], "dataset": [row.left_dataset], "record_id": [row.left_record_id],
             "forenames": ["ANNA"], "surname": [surname]}))

    seal(first, "x1", "BEFOREROTATION")
    publish_flags(home.review_db_url, flags)
    h.add_users(home.review_db_url, ("cam_inv", h.CAMDEN, "investigator"))
    app = create_app(home, secure_cookies=False)
    c = signed_in(app, h, "cam_inv")
    assert "BEFOREROTATION" in c.get(f"/flags/{first.flag_id}").text
    keys.rotate_keys(home)
    seal(second, "x2", "AFTERROTATION")
    assert "AFTERROTATION" in c.get(f"/flags/{second.flag_id}").text
    engine_for(home.review_db_url).dispose()


# --------------------------------------------------------------------------
# 20. Audit gaps: probes and sign-outs are recorded; typed names are not stored
# --------------------------------------------------------------------------


def test_20_probes_of_other_councils_flags_and_sign_outs_are_audited(app, store, h, flags):
    c = signed_in(app, h, "cam_inv")
    foreign = foreign_flag(flags, h.CAMDEN)
    assert c.get(f"/flags/{foreign}").status_code == 404
    token = h.csrf_of(c.get("/queue").text)
    assert c.post(f"/flags/{foreign}/decision", data={"csrf_token": token, "version": "1",
                                                      "outcome": "fraud"}).status_code == 404
    c.post("/logout", data={"csrf_token": token})
    rows = audit_rows(store)
    probes = [e for e in rows if e.action == "not_found" and e.actor == "cam_inv"]
    assert {e.object for e in probes} == {f"/flags/{foreign}", f"/flags/{foreign}/decision"}
    assert any(e.action == "logout" and e.actor == "cam_inv" for e in rows)
    assert _verify(store).ok


def test_20_a_password_typed_as_the_username_is_not_stored(app, store, h):
    typed = "Tr0ub4dor&3-my-real-password"
    c = client_of(app)
    assert h.sign_in(c, typed, "whatever else").status_code == 401
    assert h.sign_in(c, "cam_inv", "wrong password!!").status_code == 401
    with reading(store) as s:
        dump = json.dumps([[str(v) for v in row] for table in ("audit_log", "login_failures")
                           for row in s.execute(text(f"select * from {table}")).all()])
        failed = [e for e in s.execute(select(AuditEntry).where(AuditEntry.action == "login_failed")).scalars()]
        keys_ = s.execute(select(LoginFailure.key)).scalars().all()
    assert typed not in dump and typed.lower() not in dump.lower()
    unknown = next(e for e in failed if e.object == "user:unknown")
    assert unknown.actor == "-" and json.loads(unknown.detail)["name"].startswith("h:")
    assert any(e.actor == "cam_inv" for e in failed)  # a real account's name is kept
    assert all(typed not in k for k in keys_)
    if store.startswith("sqlite"):
        raw = Path(store.removeprefix("sqlite:///"))
        engine_for(store).dispose()
        assert typed.encode() not in raw.read_bytes() + (raw.with_name(raw.name + "-wal").read_bytes()
                                                         if raw.with_name(raw.name + "-wal").exists() else b"")


# --------------------------------------------------------------------------
# Upgrading: a trail written before the keyed chain is keyed once, and only if intact
# --------------------------------------------------------------------------


def _make_legacy(home: Home) -> None:
    """Turn the home's trail into what an older version wrote: unkeyed SHA-256, no key, no checkpoints."""
    prev = audit.GENESIS
    with writing(home.review_db_url) as s:
        for e in s.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
            e.prev_hash, e.hash = prev, audit._legacy_hash(e.seq, e.at, e.actor, e.action, e.object, e.detail, prev)
            prev = e.hash
        s.execute(select(AuditHead)).scalar_one().hash = prev
    (home.root / audit.KEY_FILE).unlink()
    (home.root / audit.CHECKPOINTS_FILE).unlink()
    audit._anchors.clear()


def test_5_an_older_unkeyed_trail_is_sealed_once_and_only_if_intact(tmp_path, monkeypatch, flags, h):
    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    home = Home.resolve(h.with_keys(Home.resolve(tmp_path / "home").ensure().root))
    publish_flags(home.review_db_url, flags)
    h.add_users(home.review_db_url, ("cam_inv", h.CAMDEN, "investigator"))
    _make_legacy(home)
    with pytest.raises(audit.AuditKeyError, match="seal-legacy"):
        create_app(home, secure_cookies=False)
    runner = CliRunner()
    with writing(home.review_db_url) as s:  # tampered before the upgrade: refused, nothing keyed
        s.execute(text("update audit_log set actor = 'someone' where seq = 1"))
    r = runner.invoke(cli_app, ["audit", "seal-legacy", "--home", str(home.root)])
    assert r.exit_code == 1 and "entry 1" in r.output and not (home.root / audit.CHECKPOINTS_FILE).exists()
    with writing(home.review_db_url) as s:
        s.execute(text("update audit_log set actor = 'pipeline' where seq = 1"))
    r = runner.invoke(cli_app, ["audit", "seal-legacy", "--home", str(home.root)])
    assert r.exit_code == 0 and "Audit trail keyed" in r.output, r.output
    r = runner.invoke(cli_app, ["audit", "verify", "--home", str(home.root)])
    assert r.exit_code == 0 and "intact" in r.output
    assert any(e.action == "audit_sealed" for e in audit_rows(home.review_db_url))
    assert h.sign_in(client_of(create_app(home, secure_cookies=False, reidentifier=FakeVault())),
                     "cam_inv").status_code == 303
    engine_for(home.review_db_url).dispose()
