"""Retention purge: what is past its days goes, what is not (or must stay) is kept."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from typer.testing import CliRunner

from orchestrate.cli import app
from councilmatch.home import Home
from orchestrate.retention import purge

DAY = 86_400


def _touch(path: Path, age_days: float, now: datetime, data: bytes = b"x" * 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    t = now.timestamp() - age_days * DAY
    os.utime(path, (t, t))
    return path


def _decide_all(db_url: str, flag_ids: list[str], outcome: str = "no_issue") -> None:
    from review.db import writing
    from review.models import ReviewItem
    from review.store import involved_councils, record_decision

    for fid in flag_ids:
        with writing(db_url) as session:
            item = session.get(ReviewItem, fid)
            for council in involved_councils(item.left_council, item.right_council):
                version = session.get(ReviewItem, fid).version
                record_decision(session, flag_id=fid, council=council, actor="tester", expected_version=version,
                                outcome=outcome, amount=None, note=None, close=True)


def test_purge_by_kind_with_dry_run_and_second_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("COUNCILMATCH_REVIEW_DB_URL", raising=False)
    home = Home(tmp_path / "home").ensure()
    home.settings_file.write_text(
        "retention: {raw_archive_days: 30, quarantine_days: 90, vault_days: 400, closed_flag_days: 730}\n"
    )
    # "now" is far enough ahead that flags closed today are past 730 days.
    now = datetime.now(timezone.utc) + timedelta(days=800)
    old_archive = _touch(home.archive / "E09000007/tenancy/t1.csv.enc", 31, now)
    new_archive = _touch(home.archive / "E09000007/tenancy/t2.csv.enc", 29, now)
    old_quarantine = _touch(home.quarantine / "E09000007/tenancy/t1.enc", 91, now)
    new_quarantine = _touch(home.quarantine / "E09000007/tenancy/t2.enc", 89, now)
    vault = home.vault / "E09000007" / "tenancy"
    datakey = _touch(home.vault / "E09000007/datakey.k1.enc", 2000, now)
    audit_log = _touch(home.vault / "audit.log", 2000, now)
    v1 = _touch(vault / "e1.enc", 500, now)
    v1_index = _touch(vault / "e1.index.parquet", 500, now)
    v2 = _touch(vault / "e2.enc", 450, now)  # past retention but the newest: kept
    _touch(vault / "e2.index.parquet", 450, now)

    from review.db import migrate
    from synthetic.flags import make_flags
    from review.store import publish_flags

    from anonymise.keys import init_keys

    init_keys(home, dev_kek=True)  # the review store seals evidence and decisions under the home's keys
    db_url = home.review_db_url
    migrate(db_url)
    flags = make_flags(6, ["E09000007", "E09000012"], run_id="20261125T013000")
    publish_flags(db_url, flags)
    closed = flags["flag_id"].tolist()[:2]
    _decide_all(db_url, closed)

    dry = purge(home, dry_run=True, now=now)
    assert dry["removed"] == {"raw_archive": 1, "quarantine": 1, "vault": 2, "closed_flags": 2}
    assert old_archive.exists() and v1.exists()  # dry run deletes nothing

    done = purge(home, now=now)
    assert done["removed"] == dry["removed"]
    assert done["kept"] == {"vault": 1}
    assert not old_archive.exists() and not old_quarantine.exists()
    assert not v1.exists() and not v1_index.exists()
    for kept in (new_archive, new_quarantine, v2, datakey, audit_log):
        assert kept.exists(), kept

    from sqlalchemy import func, select

    from review.audit import verify
    from review.db import reading
    from review.models import CouncilReview, ReviewItem

    with reading(db_url) as session:
        left = set(session.execute(select(ReviewItem.flag_id)).scalars())
        assert left == set(flags["flag_id"]) - set(closed)
        assert session.execute(select(func.count()).select_from(CouncilReview)
                               .where(CouncilReview.flag_id.in_(closed))).scalar_one() == 0
        assert verify(session).ok  # the purge is on the audit chain, which still verifies

    report = json.loads(Path(done["report"]).read_text())
    listed = [p for k in report["kinds"] for p in k["removed"]]
    assert "archive/E09000007/tenancy/t1.csv.enc" in listed

    again = purge(home, now=now)
    assert sum(again["removed"].values()) == 0


def test_cli_dry_run(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    now = datetime.now(timezone.utc)
    old = _touch(home.archive / "E09000001/payroll/p.csv.enc", 45, now)
    result = CliRunner().invoke(app, ["retention", "purge", "--dry-run", "--home", str(home.root)])
    assert result.exit_code == 0, result.output
    assert "raw_archive" in result.output and old.exists()
    result = CliRunner().invoke(app, ["retention", "purge", "--home", str(home.root)])
    assert result.exit_code == 0, result.output
    assert not old.exists()
