"""The real vault behind the pair page, and the review CLI commands."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from orchestrate.cli import app as cli_app
from councilmatch.home import Home
from review.app import create_app
from review.db import engine_for, writing
from review.store import publish_flags


@pytest.fixture
def home(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    monkeypatch.delenv("COUNCILMATCH_KEK", raising=False)
    h = Home.resolve(tmp_path / "home").ensure()
    yield h
    engine_for(h.review_db_url).dispose()


def test_pair_page_reidentifies_from_the_real_vault(home, flags, h):
    anonymise_keys = pytest.importorskip("anonymise.keys")
    from anonymise.vault import Vault

    row = flags[(flags.left_council == h.CAMDEN) & (flags.right_council != h.CAMDEN)].iloc[0]
    anonymise_keys.init_keys(home)
    canonical = pd.DataFrame({"council": [h.CAMDEN], "dataset": [row.left_dataset],
                              "record_id": [row.left_record_id], "forenames": ["ZBIGNIEW"],
                              "surname": ["BRZECZYSZCZYKIEWICZ"], "postcode": ["NW1 2AB"]})
    Vault(home, anonymise_keys.load_keyring(home)).store(h.CAMDEN, "x1", canonical)
    publish_flags(home.review_db_url, flags)
    h.add_users(home.review_db_url, ("cam_inv", h.CAMDEN, "investigator"))
    with TestClient(create_app(home, secure_cookies=False)) as client:
        h.sign_in(client, "cam_inv")
        page = client.get(f"/flags/{row.flag_id}").text
    assert "BRZECZYSZCZYKIEWICZ" in page and "NW1 2AB" in page
    vault_audit = (home.vault / "audit.log").read_text()
    assert '"actor": "cam_inv"' in vault_audit and row.flag_id in vault_audit
    # Clear data never lands in the review store (nor in its audit trail).
    raw = (home.root / "review.db").read_bytes()
    assert b"BRZECZYSZCZYKIEWICZ" not in raw and b"ZBIGNIEW" not in raw


def test_cli_users_add_and_audit_verify(home, flags):
    runner = CliRunner()
    args = ["users", "add", "--home", str(home.root), "--username", "sup1", "--council", "E09000007",
            "--role", "supervisor", "--password-stdin"]
    r = runner.invoke(cli_app, args, input="a long enough password\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, args, input="a long enough password\n")
    assert r.exit_code == 2 and "already exists" in r.output
    r = runner.invoke(cli_app, [*args[:6], "--council", "E99999999", "--password-stdin"], input="a long enough password\n")
    assert r.exit_code == 2 and "council" in r.output
    from anonymise.keys import init_keys

    init_keys(home)  # the store seals evidence under the home's keys
    publish_flags(home.review_db_url, flags)
    r = runner.invoke(cli_app, ["audit", "verify", "--home", str(home.root)])
    assert r.exit_code == 0 and "intact: 2 entries" in r.output
    with writing(home.review_db_url) as s:
        s.execute(text("update audit_log set actor = 'someone-else' where seq = 1"))
    r = runner.invoke(cli_app, ["audit", "verify", "--home", str(home.root)])
    assert r.exit_code == 1 and "entry 1: contents altered" in r.output


def test_cli_publish_reports_counts_and_bad_files(home, flags, tmp_path):
    from anonymise import at_rest
    from anonymise.keys import init_keys

    init_keys(home)  # flags files are encrypted at rest under the home's keys
    runner = CliRunner()
    path = tmp_path / "run.parquet"
    flags.to_parquet(path)
    r = runner.invoke(cli_app, ["review", "publish", str(path), "--home", str(home.root)])
    assert r.exit_code != 0 and "not an encrypted councilmatch file" in str(r.exception or r.output)
    at_rest.write_frame(path, flags, home)
    r = runner.invoke(cli_app, ["review", "publish", str(path), "--home", str(home.root)])
    assert r.exit_code == 0 and "new=90" in r.output
    r = runner.invoke(cli_app, ["review", "publish", str(path), "--home", str(home.root)])
    assert "new=0 updated=0 unchanged=90" in r.output
    at_rest.write_frame(path, flags.drop(columns=["priority"]), home)
    r = runner.invoke(cli_app, ["review", "publish", str(path), "--home", str(home.root)])
    assert r.exit_code == 2 and "priority" in r.output and str(path) in r.output
