"""The data officer's commands through the real CLI app: exit codes and what they print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ingest.feeds import load_feed
from orchestrate.cli import app

runner = CliRunner()


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})


@pytest.fixture
def feed_home(home, landing, kit) -> Path:
    kit.write_feed(home.root)
    bad = ["T9", "Ann", "Jones", "31/02/1980", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""]
    (landing / "tenancy_2026-11-24.csv").write_text(kit.csv_text(kit.GOOD_ROWS + [bad]))
    return home.root


def test_check_usable_extract_exits_0(feed_home) -> None:
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(feed_home))
    assert r.exit_code == 0, r.output
    assert "feed definition OK" in r.output and "tenancy_2026-11-24.csv" in r.output
    assert re.search(r"rows read\s*│\s*4\s*│", r.output) and re.search(r"accepted\s*│\s*3\s*│", r.output)
    assert re.search(r"quarantined\s*│\s*1\s*│", r.output)
    assert "dob: not a date in format %d/%m/%Y" in r.output
    assert "usable: 3 of 4 rows accepted" in r.output


def test_check_by_yaml_path_and_explicit_extract(feed_home, kit) -> None:
    other = feed_home / "other.csv"
    other.write_text(kit.csv_text(kit.GOOD_ROWS[:1]))
    r = run("feeds", "check", str(feed_home / "feeds/E09000007/tenancy.yaml"), str(other), "--home", str(feed_home))
    assert r.exit_code == 0, r.output
    assert "usable: 1 of 1 rows accepted" in r.output


def test_check_header_mismatch_exits_2_naming_the_file(feed_home, kit) -> None:
    bad = feed_home / "landing/E09000007/tenancy/tenancy_2026-11-25.csv"
    bad.write_text("Ref,Name\nT1,Ann\n")
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(feed_home))
    assert r.exit_code == 2
    assert "unusable extract" in r.output and "tenancy_2026-11-25.csv" in r.output
    assert "header does not match feed E09000007/tenancy" in r.output


def test_check_nothing_accepted_exits_1(feed_home, kit) -> None:
    bad = feed_home / "landing/E09000007/tenancy/tenancy_2026-11-25.csv"
    bad.write_text(kit.csv_text([["T1", "Ann", "Jones", "never", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""]]))
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(feed_home))
    assert r.exit_code == 1, r.output
    assert "no row accepted" in r.output


def test_check_invalid_yaml_exits_2_with_line(feed_home) -> None:
    path = feed_home / "feeds/E09000007/tenancy.yaml"
    path.write_text(path.read_text().replace("dataset: tenancy", "dataset: tenancies"))
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(feed_home))
    assert r.exit_code == 2
    assert f"{path}:2: dataset: unknown data set 'tenancies'" in r.output.replace("\n", "")


def test_check_without_extract_exits_2(home, kit) -> None:
    kit.write_feed(home.root)
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(home.root))
    assert r.exit_code == 2 and "no extract in" in r.output


def _keyed(root: Path) -> None:
    """Manifests are encrypted at rest: the home needs its keyring (development KEK)."""
    from anonymise.keys import init_keys
    from councilmatch.home import Home

    home = Home.resolve(root)
    if not (home.keys / "keyring.json.enc").exists():
        init_keys(home, dev_kek=True)


def test_list_shows_feeds_and_last_manifest(feed_home) -> None:
    from anonymise.manifest import write_manifest

    _keyed(feed_home)
    write_manifest(feed_home, {"feed_id": "E09000007/tenancy", "extract_id": "x-1", "extract_file": "x.csv",
                               "rows_in": 10, "accepted": 7, "quarantined": 3, "ingested_at": "2026-11-24T01:00:00+00:00"})
    r = run("feeds", "list", "--home", str(feed_home))
    assert r.exit_code == 0, r.output
    assert "E09000007/tenancy" in r.output and "tenancy_2026-11-24.csv" in r.output
    assert re.search(r"x\.csv\s*│\s*10\s*│\s*7\s*│\s*3", r.output), r.output


SAMPLE_HEADER = "Tenancy Ref;Forename;Last Name;DOB;Address Line 1;Address Line 2;Post code;Tenancy Start Date;Notes\n"
SAMPLE_ROWS = [
    "TR-001;Zoë;Núñez;03.04.1981;1 High St;Camden;NW1 0NE;01.02.2020;quiet",
    "TR-002;Ann;Jones;25.12.1990;2 Low Rd;Camden;NW1 0NF;13.05.2021;",
]


def test_add_yes_writes_a_feed_that_passes_check(home) -> None:
    sample = home.root / "sample.csv"
    sample.write_bytes((SAMPLE_HEADER + "\n".join(SAMPLE_ROWS) + "\n").encode("cp1252"))
    r = run("feeds", "add", "--council", "E09000007", "--dataset", "tenancy", "--sample", str(sample), "--yes",
            "--home", str(home.root))
    assert r.exit_code == 0, r.output
    path = home.feeds / "E09000007" / "tenancy.yaml"
    feed = load_feed(path)
    assert (feed.encoding, feed.delimiter, feed.date_format) == ("cp1252", ";", "%d.%m.%Y")
    assert feed.columns == {
        "record_id": "Tenancy Ref", "forenames": "Forename", "surname": "Last Name", "dob": "DOB",
        "address_lines": ["Address Line 1", "Address Line 2"], "postcode": "Post code",
        "period_start": "Tenancy Start Date",
    }
    assert feed.mandatory == ["record_id", "forenames", "surname", "dob", "address_lines", "postcode", "period_start"]
    assert "unmapped source columns: Notes" in r.output
    assert "usable: 2 of 2 rows accepted" in r.output
    assert yaml.safe_load(path.read_text())["date_format"] == "%d.%m.%Y"
    # a second add refuses to overwrite
    again = run("feeds", "add", "--council", "E09000007", "--dataset", "tenancy", "--sample", str(sample), "--yes",
                "--home", str(home.root))
    assert again.exit_code == 2 and "already exists" in again.output


def test_add_interactive_lets_the_officer_fix_a_mapping(home) -> None:
    sample = home.root / "sample.csv"
    sample.write_text("Ref,Given,Surname,Birth,Addr,PC,Start\nA1,Ann,Jones,1990-01-02,1 Rd,E1 6AN,2020-01-01\n")
    # proposals in field order; the officer rejects forenames <- Given, mistypes a column (asked again),
    # then types it in another case; dob <- Birth is only a fuzzy header, so it is asked with default no
    answers = ["y", "n", "Givne", "  given ", "y", "y", "y", "y", "y", "y"]
    r = run("feeds", "add", "--council", "E09000007", "--dataset", "tenancy", "--sample", str(sample),
            "--home", str(home.root), input="\n".join(answers) + "\n")
    out = " ".join(r.output.split())
    assert "forenames <- Given? [Y/n]: n" in out
    assert "not in the sample's header: 'Givne'; header: Ref, Given, Surname, Birth, Addr, PC, Start" in out
    assert "dob <- Birth? (not sure: fuzzy header 0.93; values fit 100%; check it) [y/N]: y" in out
    feed_file = home.feeds / "E09000007" / "tenancy.yaml"
    assert feed_file.exists(), r.output
    feed = load_feed(feed_file)
    assert feed.columns["forenames"] == "Given" and feed.columns["dob"] == "Birth"
    assert r.exit_code == 0, r.output


def test_add_yes_never_takes_an_unsure_required_field(home) -> None:
    sample = home.root / "sample.csv"
    sample.write_text("Ref,Given,Surname,Birth,Addr,PC,Start\nA1,Ann,Jones,1990-01-02,1 Rd,E1 6AN,2020-01-01\n")
    r = run("feeds", "add", "--council", "E09000007", "--dataset", "tenancy", "--sample", str(sample), "--yes",
            "--home", str(home.root))
    out = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert "not sure of required field(s) dob <- Birth (fuzzy header 0.93; values fit 100%; check it)" in out
    assert not (home.feeds / "E09000007" / "tenancy.yaml").exists()


def test_add_reads_the_values_of_the_issue_15_sample(home) -> None:
    """The data officer's report in issue 15: names under 'Tenant ...' headers, 'Property Addr 2' is address
    line 2 (not a UPRN), masked samples and fit rates shown; an optional column found only by its values
    is left out under --yes."""
    header = "Tenancy Number; Tenant Forename(s); Tenant Last Name; D.O.B.; Property Addr 1; Property Addr 2; " \
             "Post code; Tenancy Start; NI No; Contact"
    rows = ["T0001; Ann; Jones; 03/04/1981; 1 High St; Camden Town; NW1 0NE; 01/02/2020; QQ123456C; ann@example.org",
            "T0002; John Paul; Smith; 25/12/1990; Flat 2; 7 Acacia Avenue; NW1 0NF; 13/05/2021; AB123456C; js@example.org",
            "T0003; Zoë; Núñez; 13/12/1970; 7 Low Rd; Hackney; E8 1AA; 13/05/2019; JG103759A; zn@example.org"]
    sample = home.root / "tenancy.csv"
    sample.write_text("\n".join([header.replace("; ", ";"), *[r.replace("; ", ";") for r in rows]]) + "\n")
    r = run("feeds", "add", "--council", "E09000007", "--dataset", "tenancy", "--sample", str(sample), "--yes",
            "--home", str(home.root))
    assert r.exit_code == 0, r.output
    feed = load_feed(home.feeds / "E09000007" / "tenancy.yaml")
    assert feed.columns == {
        "record_id": "Tenancy Number", "forenames": "Tenant Forename(s)", "surname": "Tenant Last Name",
        "dob": "D.O.B.", "address_lines": ["Property Addr 1", "Property Addr 2"], "postcode": "Post code",
        "period_start": "Tenancy Start", "nino": "NI No",
    }
    assert feed.date_format == "%d/%m/%Y"
    out = " ".join(r.output.split())
    assert "XX999999X" in out and "99/99/9999" in out and "QQ123456C" not in out  # masked samples
    assert "left unmapped email (proposed Contact, not sure: fuzzy header 0.92; values fit 100%; check it)" in out
    # the first tenant's never-issued NINO no longer hides the tenancy
    assert "usable: 3 of 3 rows accepted" in out and "nino: invalid format │ 1" in out


def test_add_yes_with_required_field_missing_exits_2(home) -> None:
    sample = home.root / "sample.csv"
    sample.write_text("Ref,Surname\nA1,Jones\n")
    r = run("feeds", "add", "--council", "E09000007", "--dataset", "tenancy", "--sample", str(sample), "--yes",
            "--home", str(home.root))
    assert r.exit_code == 2
    assert "required field(s) forenames, dob, address_lines, postcode, period_start" in r.output.replace("\n", "")
    assert not (home.feeds / "E09000007" / "tenancy.yaml").exists()


def test_check_at_source_feed_uses_the_anonymise_acceptance(home, kit) -> None:
    from anonymise.at_source import pseudonymise_at_source
    from anonymise.keys import init_keys

    init_keys(home)
    raw_feed = kit.write_feed(home.root)
    extract = home.root / "council_side.csv"
    extract.write_text(kit.csv_text(kit.GOOD_ROWS))
    landing = home.landing / "E09000007" / "tenancy"
    landing.mkdir(parents=True, exist_ok=True)
    out = landing / "tenancy_2026-11-25.parquet"
    pseudonymise_at_source(home, raw_feed, extract, out)
    raw_feed.write_text("council: E09000007\ndataset: tenancy\nformat: pseudonymised\n")
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(home.root))
    assert r.exit_code == 0, r.output
    assert "pseudonymised at source" in r.output and "usable: 3 pseudonymised rows" in r.output
    out.write_bytes(b"not parquet")
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(home.root))
    assert r.exit_code == 2 and "unusable extract" in r.output and "tenancy_2026-11-25.parquet" in r.output


def test_add_rejects_unknown_council_before_reading(home) -> None:
    sample = home.root / "sample.csv"
    sample.write_text("Ref,Surname\nA1,Jones\n")
    r = run("feeds", "add", "--council", "E08000001", "--dataset", "tenancy", "--sample", str(sample), "--yes",
            "--home", str(home.root))
    assert r.exit_code == 2 and "'E08000001' is not a London borough ONS code" in r.output


def _previous_manifest(home: Path, kit, rows: list[list[str]], extract_id: str = "tenancy_2026-11-23-aaaaaaaaaaaa") -> None:
    """Record a previous extract's profile the way the nightly ingest does."""
    from ingest.extract import ingest_extract
    from anonymise.manifest import write_manifest

    _keyed(home)
    previous = home / "previous.csv"
    previous.write_text(kit.csv_text(rows))
    result = ingest_extract(load_feed(home / "feeds/E09000007/tenancy.yaml"), previous, today=kit.TODAY)
    write_manifest(home, {**result.manifest(), "extract_id": extract_id, "ingested_at": "2026-11-23T01:00:00+00:00"})


def test_check_shows_set_missing_values_profile_and_shape_alerts(home, landing, kit) -> None:
    kit.write_feed(home.root)
    good = [[f"T{i}", f"Ann{'e' * (i % 3)}", f"Jones{'x' * i}", f"{1 + i % 28:02d}/0{1 + i % 9}/1980",
             f"JG1037{i % 10}{i % 7}A", f"{i} Rd", "London", "E1 6AN", f"{1 + i % 28:02d}/05/2020", ""] for i in range(40)]
    _previous_manifest(home.root, kit, good)
    # tonight: half the rows, NI numbers malformed or placeholders, dates flipped to ISO, towns gone
    tonight = [[r[0], r[1], r[2], "1980-02-%02d" % (1 + i % 28), "QQ123456C" if i < 3 else "UNKNOWN", r[5], "",
                r[7], r[8], r[9]] for i, r in enumerate(good[:15])]
    (landing / "tenancy_2026-11-24.csv").write_text(kit.csv_text(tonight))
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(home.root))
    out = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "usable: 15 of 15 rows accepted" in out  # a malformed optional NINO hides no record
    assert re.search(r"nino: invalid format │ 15 │", out), r.output
    assert "alert: row count fell by more than half: 40 -> 15" in out
    assert "alert: dob: date format changed (99/99/9999 day-first -> 9999-99-99 year-first)" in out
    assert "alert: nino: placeholders rose (0.0% -> 80.0%)" in out
    assert "alert: nino: invalid values rose (0.0% -> 100.0%)" in out
    assert "compared with the previous extract tenancy_2026-11-23-aaaaaaaaaaaa" in out
    assert "QQ123456C" not in r.output  # counts, never values


def test_check_alerts_when_a_column_is_renamed_or_emptied(home, landing, kit) -> None:
    kit.write_feed(home.root)
    _previous_manifest(home.root, kit, kit.GOOD_ROWS)
    header = [h if h != "NI Number" else "NINO" for h in kit.HEADER]
    rows = [[*r[:8], "", r[9]] for r in kit.GOOD_ROWS]  # Start Date emptied (optional field not mandatory)
    (landing / "tenancy_2026-11-24.csv").write_text(kit.csv_text(rows, header=header))
    r = run("feeds", "check", "E09000007/tenancy", "--home", str(home.root))
    out = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "alert: nino: its column is no longer in the header (renamed or dropped?)" in out
    assert "alert: period_start: column emptied (missing 0.0% -> 100.0%)" in out
