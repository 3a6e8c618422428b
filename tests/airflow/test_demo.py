"""The demo's investigators: one per council, printed passwords that really sign in, re-runs reset them."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrate.demo import add_investigators
from councilmatch.home import Home


def test_investigators_sign_in_with_printed_passwords_and_rerun_resets(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from review.auth import authenticate

    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    home = Home(tmp_path / "home").ensure()
    first = add_investigators(home, ["E09000007", "E09000012"])
    assert [u["username"] for u in first] == ["demo-e09000007", "demo-e09000012"]
    second = add_investigators(home, ["E09000007", "E09000012"])
    assert first[0]["password"] != second[0]["password"]
    assert authenticate(home.review_db_url, "demo-e09000007", second[0]["password"], "127.0.0.1") is not None
    assert authenticate(home.review_db_url, "demo-e09000012", first[1]["password"], "127.0.0.1") is None


def test_demo_operator_is_a_hub_operator_and_rerun_resets_its_password(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrate.demo import add_operator
    from review.auth import HUB, authenticate

    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    home = Home(tmp_path / "home").ensure()
    first = add_operator(home)
    signed_in = authenticate(home.review_db_url, first["username"], first["password"], "127.0.0.1")
    assert signed_in is not None
    first_session = signed_in[1]
    second = add_operator(home)
    assert first["password"] != second["password"]
    signed_in = authenticate(home.review_db_url, first["username"], second["password"], "127.0.0.1")
    assert signed_in is not None
    user, _token = signed_in
    assert user.role == "operator" and user.council == HUB
    assert authenticate(home.review_db_url, first["username"], first["password"], "127.0.0.1") is None
    # A new password ends the operator's earlier sessions (server-side sessions).
    from review.auth import session_user
    from review.db import reading
    with reading(home.review_db_url) as db:
        assert session_user(db, first_session) is None
