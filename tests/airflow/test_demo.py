"""The demo's investigators: one per council, printed passwords that really sign in, re-runs reset them."""

from __future__ import annotations

from pathlib import Path

import pytest

from councilmatch.demo import add_investigators
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
