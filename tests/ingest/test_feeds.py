"""Feed definitions: schema + semantic checks, errors naming file, line and key."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ingest.feeds import FeedDefinitionError, landing_dir, load_feed, load_feeds, newest_extract


TENANCY_YAML = ""


@pytest.fixture(autouse=True)
def _kit(kit) -> None:
    global TENANCY_YAML, write_feed
    TENANCY_YAML, write_feed = kit.TENANCY_YAML, kit.write_feed


def _feed_text(**replace: str) -> str:
    text = TENANCY_YAML.format(encoding="utf-8", delimiter=",")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def _error(tmp_path: Path, text: str) -> FeedDefinitionError:
    path = tmp_path / "feed.yaml"
    path.write_text(text)
    with pytest.raises(FeedDefinitionError) as info:
        load_feed(path)
    return info.value


def test_good_feed_loads(tmp_path: Path) -> None:
    feed = load_feed(write_feed(tmp_path))
    assert feed.feed_id == "E09000007/tenancy"
    assert feed.version == 3
    assert feed.source_columns("address_lines") == ["Address 1", "Town"]
    assert feed.date_format_for("dob") == "%d/%m/%Y"


def test_yaml_one_one_booleans_stay_text(tmp_path: Path) -> None:
    text = _feed_text(**{"date_format": "true_values: [Y, YES, ON, 1, true]\ndate_format"})
    feed = load_feed(_write(tmp_path, text))
    assert feed.true_values == ["Y", "YES", "ON", "1", "TRUE"]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "f.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "replace, line, key, words",
    [
        ({"dataset: tenancy": "dataset: tenancies"}, 2, "dataset", "unknown data set 'tenancies'"),
        ({"council: E09000007": "council: E08000001"}, 1, "council", "not a London borough"),
        ({"  surname: Surname\n": "  surname: Surname\n  shoe_size: Shoes\n"}, 12, "columns.shoe_size", "not a canonical field"),
        ({"  nino: NI Number\n": "  nino: NI Number\n  bank_account: Acct\n"}, 14, "columns.bank_account", "not a field of data set 'tenancy'"),
        ({"  postcode: Post Code\n": ""}, 8, "columns", "requires mapping postcode"),
        ({"mandatory: [record_id, surname, dob]": "mandatory: [record_id, surname, email]"}, 18, "mandatory[2]", "'email' is mandatory but not mapped"),
        ({'date_format: "%d/%m/%Y"': 'date_format: "%d/%Q/%Y"'}, 7, "date_format", "needs a day"),
        ({'date_format: "%d/%m/%Y"': 'date_format: "%d/%m/%Y"\ndate_formats: {dob: "%m/%Y"}'}, 8, "date_formats.dob", "needs a day"),
        ({"version: 3": "version: three"}, 3, "version", "valid integer"),
        ({"format: csv": "format: docx"}, 4, "format", "'csv', 'xlsx', 'parquet' or 'pseudonymised'"),
        ({"version: 3": "version: 3\ncolour: red"}, 4, "colour", "unknown key"),
        ({"encoding: utf-8": "encoding: klingon"}, 5, "encoding", "unknown encoding"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, replace: dict, line: int, key: str, words: str) -> None:
    err = _error(tmp_path, _feed_text(**replace))
    msg = str(err)
    assert f"{tmp_path / 'feed.yaml'}:{line}: {key}: " in msg, msg
    assert words in msg


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    err = _error(tmp_path, _feed_text(**{"  surname: Surname": "  surname: [Surname"}))
    assert f"{tmp_path / 'feed.yaml'}:" in str(err) and "(yaml)" in str(err)
    assert err.problems[0].line is not None and err.problems[0].line >= 12


def test_several_problems_reported_together(tmp_path: Path) -> None:
    err = _error(tmp_path, _feed_text(**{"council: E09000007": "council: nowhere", "dataset: tenancy": "dataset: x"}))
    assert {p.key for p in err.problems} >= {"council", "dataset"}


def test_load_feeds_keys_by_id_and_checks_location(tmp_path: Path) -> None:
    write_feed(tmp_path)
    assert list(load_feeds(tmp_path)) == ["E09000007/tenancy"]
    wrong = tmp_path / "feeds" / "E09000008" / "tenancy.yaml"
    wrong.parent.mkdir(parents=True)
    wrong.write_text(TENANCY_YAML.format(encoding="utf-8", delimiter=","))
    with pytest.raises(FeedDefinitionError, match=r"E09000008/tenancy.yaml:1: council: file must be feeds/E09000007/tenancy.yaml"):
        load_feeds(tmp_path)


def test_newest_extract_ignores_hidden_and_partial_files(tmp_path: Path) -> None:
    feed = load_feed(write_feed(tmp_path))
    folder = landing_dir(tmp_path, feed)
    assert folder == tmp_path.resolve() / "landing" / "E09000007" / "tenancy"
    assert newest_extract(tmp_path, feed) is None
    folder.mkdir(parents=True)
    for name in ("tenancy_2026-01-01.csv", "tenancy_2026-01-02.csv", ".tenancy_2026-01-09.csv",
                 "tenancy_2026-01-08.csv.part", "tenancy_2026-01-07.xlsx", "~$tenancy.csv"):
        (folder / name).write_text("x")
    assert newest_extract(tmp_path, feed).name == "tenancy_2026-01-02.csv"
    # same name order: the later mtime wins only as a tie-breaker; names decide first
    old = folder / "tenancy_2026-01-03.csv"
    old.write_text("x")
    os.utime(old, (time.time() - 10_000, time.time() - 10_000))
    assert newest_extract(tmp_path, feed).name == "tenancy_2026-01-03.csv"


def test_load_feeds_can_collect_bad_files_and_keep_the_good(tmp_path: Path) -> None:
    write_feed(tmp_path)
    bad = tmp_path / "feeds" / "E09000008" / "payroll.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("council: E09000008\ndataset: payroll\ncolumns: {record_id: Ref}\n")
    with pytest.raises(FeedDefinitionError):
        load_feeds(tmp_path)
    invalid: dict = {}
    assert list(load_feeds(tmp_path, invalid=invalid)) == ["E09000007/tenancy"]
    assert list(invalid) == [bad] and "requires mapping forenames" in str(invalid[bad])


def test_same_name_different_suffix_newest_mtime_wins(tmp_path: Path) -> None:
    feed = load_feed(write_feed(tmp_path))
    folder = landing_dir(tmp_path, feed)
    folder.mkdir(parents=True)
    older, newer = folder / "tenancy_2026-01-05.txt", folder / "tenancy_2026-01-05.csv"
    older.write_text("x")
    newer.write_text("x")
    os.utime(older, (time.time() - 100, time.time() - 100))
    assert newest_extract(tmp_path, feed) == newer
    os.utime(newer, (time.time() - 200, time.time() - 200))
    assert newest_extract(tmp_path, feed) == older


def test_unquoted_date_format_gets_a_hint(tmp_path: Path) -> None:
    err = _error(tmp_path, _feed_text(**{'date_format: "%d/%m/%Y"': "date_format: %d/%m/%Y"}))
    assert f"{tmp_path / 'feed.yaml'}:7: (yaml): " in str(err)
    assert 'put date formats in quotes' in str(err)
