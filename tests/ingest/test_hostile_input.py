"""Hostile extracts and feed definitions, tried as an attacker would (issue 10: items 1, 2, 8, 9, 10, 14).

Each test builds the attack, runs the hub's own code on it and checks that the attack
fails, with an error that names the file and the problem, and that nothing is left behind.
The whole-night versions of the at-source traversal and the XLSX bomb are in
tests/e2e/test_hostile_night.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from councilmatch.fileio import staged
from councilmatch.home import Home
from councilmatch.safepath import UnsafePathError, ensure_inside, path_inside, safe_name, sanitise_name
from ingest.feed import FeedLimits
from ingest.feeds import FeedDefinitionError, load_feed, parse_feed
from ingest.read import ExtractError, check_xlsx, read_extract
from orchestrate import pipeline

RUN = "20261102T020000"
TRAVERSALS = ["..", ".", "../x", "../../etc/passwd", "/etc/passwd", "a/b", "a\\b", "", ".hidden", "x\x00y",
              "E09000007/../../x", "ｘ／ｙ", "tenancy_20261102 (1)", "a" * 201, "line\nbreak"]


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def hub(home: Home, kit, monkeypatch) -> Home:
    """A hub with a keyring and Camden's CSV tenancy feed."""
    from anonymise.keys import init_keys

    monkeypatch.setenv("COUNCILMATCH_KEK", base64.b64encode(os.urandom(32)).decode())
    init_keys(home)
    kit.write_feed(home.root)
    return home


def _camden_extract(home: Home, kit, name: str = "tenancy_20261101.csv", rows=None) -> Path:
    folder = home.landing / "E09000007" / "tenancy"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(kit.csv_text(rows or kit.GOOD_ROWS), encoding="utf-8")
    return path


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _feed(kit, tmp_path: Path, replace: dict[str, str] | None = None, extra: str = ""):
    text = kit.TENANCY_YAML.format(encoding="utf-8", delimiter=",")
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return parse_feed(text + extra, tmp_path / "feed.yaml")


def xlsx_bytes(sheet_data: str) -> bytes:
    """A minimal workbook whose one sheet holds ``sheet_data`` (hand-made, as an attacker would)."""
    ns = "http://schemas.openxmlformats.org"
    files = {
        "[Content_Types].xml": f'<?xml version="1.0"?><Types xmlns="{ns}/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": f'<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0"?><workbook xmlns="{ns}/spreadsheetml/2006/main" '
        f'xmlns:r="{ns}/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" '
        'r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/'
        f'relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0"?><worksheet xmlns="{ns}/spreadsheetml/2006/main">'
        f"<sheetData>{sheet_data}</sheetData></worksheet>",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def cell(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


#: The attack of issue 10: one cell at XFD1048576, 1.5 KB on disk, 512 GiB for the reader.
BOMB = xlsx_bytes('<row r="1">' + cell("A1", "TenancyRef") + '</row><row r="1048576">'
                  + cell("XFD1048576", "x") + "</row>")


def at_source_file(hub: Home, kit, tmp_path: Path, council: str, extract_id: str | None = None,
                   record_id: str | None = None) -> Path:
    """What `councilmatch pseudonymise` makes for ``council``, then altered by that council."""
    from anonymise.at_source import pseudonymise_at_source

    feed_yaml = tmp_path / f"{council}_raw.yaml"
    feed_yaml.write_text(kit.TENANCY_YAML.format(encoding="utf-8", delimiter=",").replace("E09000007", council))
    raw = tmp_path / f"{council}_tenancy_20261101.csv"
    raw.write_text(kit.csv_text([[f"I{r[0]}", *r[1:]] for r in kit.GOOD_ROWS]))
    out = tmp_path / f"{council}_at_source.parquet"
    pseudonymise_at_source(hub, feed_yaml, raw, out)
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[b"councilmatch"])
    if extract_id is not None:
        meta["extract_id"] = extract_id
        i = table.schema.get_field_index("extract_id")
        table = table.set_column(i, table.schema.field(i), pa.array([extract_id] * table.num_rows, pa.string()))
    if record_id is not None:
        i = table.schema.get_field_index("record_id")
        ids = table.column(i).to_pylist()
        ids[0] = record_id
        table = table.set_column(i, table.schema.field(i), pa.array(ids, pa.string()))
    table = table.replace_schema_metadata({b"councilmatch": json.dumps(meta).encode()})
    pq.write_table(table, out)
    return out


def install_at_source_feed(hub: Home, council: str, parquet: Path) -> None:
    feed = hub.feeds / council / "tenancy.yaml"
    feed.parent.mkdir(parents=True, exist_ok=True)
    feed.write_text(f"council: {council}\ndataset: tenancy\nformat: pseudonymised\n")
    landing = hub.landing / council / "tenancy"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "tenancy_20261102.parquet").write_bytes(parquet.read_bytes())


# -- item 1: path traversal ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRAVERSALS)
def test_safe_name_refuses_every_traversal_attempt(name: str) -> None:
    with pytest.raises(UnsafePathError, match="not a safe name"):
        safe_name(name, "extract id")
    safe = sanitise_name(name)
    assert safe_name(safe) == safe and "/" not in safe and not safe.startswith(".")


def test_path_inside_refuses_traversal_and_symlink_escape(tmp_path: Path) -> None:
    base = tmp_path / "store"
    base.mkdir()
    assert path_inside(base, "tenancy", "E09000007", "x.parquet") == base / "tenancy" / "E09000007" / "x.parquet"
    for parts in (("..", "x"), ("tenancy", "../../x"), ("/etc",), ("a/b",)):
        with pytest.raises(UnsafePathError):
            path_inside(base, *parts)
    (base / "link").symlink_to(tmp_path)  # a link planted in the home still cannot lead out
    with pytest.raises(UnsafePathError, match="resolves outside"):
        path_inside(base, "link", "x.parquet")
    with pytest.raises(UnsafePathError, match="resolves outside"):
        ensure_inside(base, base / ".." / "x")


@pytest.mark.parametrize("bad", ["../E09000007/tenancy_x", "../../../../outside", "/tmp/x", "a b", ".x"])
def test_every_home_path_builder_refuses_a_traversing_name(tmp_path: Path, bad: str) -> None:
    from anonymise.datakeys import datakey_path
    from anonymise.quarantine import quarantine_path
    from orchestrate import run_state
    from anonymise.manifest import manifest_path

    home = Home(tmp_path / "h")
    builders = [
        lambda: home.pseudonymised_path("tenancy", "E09000019", bad),
        lambda: home.pseudonymised_path(bad, "E09000019", "x"),
        lambda: home.pseudonymised_path("tenancy", bad, "x"),
        lambda: home.flags_path(bad),
        lambda: manifest_path(home, "E09000019/tenancy", bad),
        lambda: manifest_path(home, f"{bad}/tenancy", "x"),
        lambda: quarantine_path(home, "E09000019", "tenancy", bad),
        lambda: datakey_path(home, bad, "k1"),
        lambda: run_state.run_dir(home, bad),
    ]
    for build in builders:
        with pytest.raises(UnsafePathError):
            build()
    # a broken feed's id comes from a folder name: its run state file is made safe, not refused
    assert run_state.feed_file(home, RUN, f"{bad}/tenancy").parent == home.runs / RUN / "feeds"


@pytest.mark.parametrize("extract_id", ["../E09000007/tenancy_20261101-000000000000", "../../../../../outside",
                                        "/tmp/absolute", ".hidden"])
def test_at_source_extract_id_cannot_traverse(hub: Home, kit, tmp_path: Path, extract_id: str) -> None:
    """Attack (issue 10, item 1): Islington's at-source file names Camden's store file as its extract id."""
    _camden_extract(hub, kit)
    ingested = pipeline.ingest_feed(hub, "E09000007/tenancy", RUN)
    assert ingested["status"] == "ingested"
    if extract_id.startswith("../E09000007/"):  # aim at Camden's real store file
        extract_id = f"../E09000007/{ingested['extract_id']}"
    camden = {p: p.read_bytes() for p in _files(hub.store)}
    attack = at_source_file(hub, kit, tmp_path, "E09000019", extract_id)
    before_outside = _files(tmp_path)
    install_at_source_feed(hub, "E09000019", attack)
    outcome = pipeline.ingest_feed(hub, "E09000019/tenancy", RUN)
    assert outcome["status"] == "failed"
    assert "extract_id" in outcome["error"] and "not a safe name" in outcome["error"]
    assert "tenancy_20261102.parquet" in outcome["error"]
    # Camden's files are untouched, Islington wrote nothing, nothing appeared outside the home
    assert {p: p.read_bytes() for p in _files(hub.store) if "runs" not in p.parts} == {
        p: b for p, b in camden.items() if "runs" not in p.parts}
    new_outside = {p for p in _files(tmp_path) - before_outside if not p.is_relative_to(hub.root)}
    assert not new_outside
    assert not (hub.pseudonymised / "tenancy" / "E09000019").exists()


def test_at_source_record_id_with_a_control_character_is_refused(hub: Home, kit, tmp_path: Path) -> None:
    install_at_source_feed(hub, "E09000019", at_source_file(hub, kit, tmp_path, "E09000019", record_id="IT\x001"))
    outcome = pipeline.ingest_feed(hub, "E09000019/tenancy", RUN)
    assert outcome["status"] == "failed" and "control character" in outcome["error"]
    assert not hub.pseudonymised.exists() or not _files(hub.pseudonymised)


def test_at_source_forged_counts_are_refused(hub: Home, kit, tmp_path: Path) -> None:
    path = at_source_file(hub, kit, tmp_path, "E09000019")
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"councilmatch"])
    meta["manifest"]["quarantine_reasons"] = {"x": "../../etc"}
    pq.write_table(table.replace_schema_metadata({b"councilmatch": json.dumps(meta).encode()}), path)
    install_at_source_feed(hub, "E09000019", path)
    outcome = pipeline.ingest_feed(hub, "E09000019/tenancy", RUN)
    assert outcome["status"] == "failed" and "ingest counts in the file metadata are not valid" in outcome["error"]


def test_honest_at_source_file_is_still_accepted(hub: Home, kit, tmp_path: Path) -> None:
    install_at_source_feed(hub, "E09000019", at_source_file(hub, kit, tmp_path, "E09000019"))
    outcome = pipeline.ingest_feed(hub, "E09000019/tenancy", RUN)
    assert outcome["status"] == "ingested" and outcome["accepted"] == 3


# -- item 2: XLSX bomb and reader isolation ------------------------------------------------------------


XLSX_ATTACKS = {
    "one cell at XFD1048576": BOMB,
    "single quotes and spaces": xlsx_bytes("<row r='1'><c r='A1' t='inlineStr'><is><t>a</t></is></c></row>"
                                           "<row r = '1048576'><c r = 'XFD1048576' t='inlineStr'><is><t>x</t>"
                                           "</is></c></row>"),
    "lying dimension": xlsx_bytes('<row r="1">' + cell("A1", "a") + "</row>" + '<row r="900000">'
                                  + cell("ZZ900000", "x") + "</row>").replace(b"<sheetData>", b"<sheetData>"),
    "cells without references": xlsx_bytes("<row>" + '<c t="inlineStr"><is><t>a</t></is></c>' * 600 + "</row>"),
    "rows past the row limit": xlsx_bytes('<row r="1">' + cell("A1", "a") + '</row><row r="2000002">'
                                          + cell("A2000002", "x") + "</row>"),
}


@pytest.mark.parametrize("attack", list(XLSX_ATTACKS))
def test_xlsx_area_is_checked_before_the_reader_sees_it(tmp_path: Path, attack: str) -> None:
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(XLSX_ATTACKS[attack])
    assert path.stat().st_size < 4096
    started = time.perf_counter()
    with pytest.raises(ExtractError, match=r"spans [0-9,]+ rows x [0-9,]+ columns.*over the feed's limits") as err:
        check_xlsx(path, FeedLimits())
    assert time.perf_counter() - started < 5
    assert str(path) in str(err.value)


def test_xlsx_decompressing_past_the_limit_is_refused(tmp_path: Path) -> None:
    rows = "".join(f'<row r="{i}">' + cell(f"A{i}", "x" * 1000) + "</row>" for i in range(1, 1500))
    path = tmp_path / "zip_bomb.xlsx"
    path.write_bytes(xlsx_bytes(rows))
    assert path.stat().st_size < 100_000
    with pytest.raises(ExtractError, match="limits.max_uncompressed_mb"):
        check_xlsx(path, FeedLimits(max_uncompressed_mb=1))
    check_xlsx(path, FeedLimits())  # within the default limits: accepted


def test_honest_xlsx_passes_the_check_and_reads(tmp_path: Path, kit) -> None:
    feed = _feed(kit, tmp_path, {"format: csv": "format: xlsx"})
    rows = [kit.HEADER, *kit.GOOD_ROWS]
    data = "".join(f'<row r="{i}">' + "".join(cell(f"{chr(65 + j)}{i}", v) for j, v in enumerate(r) if v) + "</row>"
                   for i, r in enumerate(rows, start=1))
    path = tmp_path / "ok.xlsx"
    path.write_bytes(xlsx_bytes(data))
    raw = read_extract(feed, path)
    assert raw.frame["TenancyRef"].tolist() == ["T1", "T2", "T3"]


def test_bomb_in_a_feed_fails_only_that_feed(hub: Home, kit, tmp_path: Path) -> None:
    xfeed = hub.feeds / "E09000019" / "tenancy.yaml"
    xfeed.parent.mkdir(parents=True)
    xfeed.write_text(kit.TENANCY_YAML.format(encoding="utf-8", delimiter=",")
                     .replace("E09000007", "E09000019").replace("format: csv", "format: xlsx"))
    (hub.landing / "E09000019" / "tenancy").mkdir(parents=True)
    (hub.landing / "E09000019" / "tenancy" / "tenancy_20261102.xlsx").write_bytes(BOMB)
    _camden_extract(hub, kit)
    outcomes = {f: pipeline.ingest_feed(hub, f, RUN)["status"] for f in pipeline.discover_feeds(hub)}
    assert outcomes == {"E09000007/tenancy": "ingested", "E09000019/tenancy": "failed"}
    from anonymise import at_rest

    state = at_rest.read_json(hub.runs / RUN / "feeds" / "E09000019__tenancy.json", hub)  # encrypted at rest
    assert "XFD1048576" in state["error"] and "tenancy_20261102.xlsx" in state["error"]


def _abort(*_args, **_kwargs):
    os.abort()  # what the XLSX reader did on the bomb: SIGABRT, which no except clause catches


def test_an_abort_inside_a_reader_fails_only_its_feed(hub: Home, kit, monkeypatch) -> None:
    import ingest.read

    _camden_extract(hub, kit)
    with monkeypatch.context() as patch:
        patch.setattr(ingest.read, "read_csv", _abort)
        outcome = pipeline.ingest_feed(hub, "E09000007/tenancy", RUN)  # this process survives
    assert outcome["status"] == "failed"
    assert "SIGABRT" in outcome["error"] and "tenancy_20261101.csv" in outcome["error"]
    assert not hub.pseudonymised.exists() or not _files(hub.pseudonymised)
    assert pipeline.ingest_feed(hub, "E09000007/tenancy", RUN)["status"] == "ingested"


def test_reader_memory_and_time_limits(hub: Home, kit, monkeypatch) -> None:
    import ingest.read

    _camden_extract(hub, kit)
    hub.settings_file.write_text("ingest: {reader_memory_mb: 256, reader_timeout_seconds: 2}\n")
    monkeypatch.setattr(ingest.read, "read_csv", lambda *a: bytearray(3 << 30))
    outcome = pipeline.ingest_feed(hub, "E09000007/tenancy", RUN)
    assert outcome["status"] == "failed" and "ran out of memory" in outcome["error"]
    monkeypatch.setattr(ingest.read, "read_csv", lambda *a: time.sleep(60))
    started = time.perf_counter()
    outcome = pipeline.ingest_feed(hub, "E09000007/tenancy", RUN)
    assert outcome["status"] == "failed" and "longer than 2 s" in outcome["error"]
    assert time.perf_counter() - started < 30


# -- item 8: control characters -----------------------------------------------------------------------


def test_control_characters_are_quarantined_with_a_reason(tmp_path: Path, kit) -> None:
    from ingest.extract import ingest_extract

    feed = _feed(kit, tmp_path)
    rows = [
        ["T\x001", "Ann", "Jones", "01/02/1980", "", "1 High St", "London", "E1 6AN", "01/01/2020", ""],
        ["T2", "Bob", "Sm\x1b[2Jith", "01/02/1980", "", "1 High St", "London", "E1 6AN", "01/01/2020", ""],
        ["T\u202e3", "Cy", "Brown", "01/02/1980", "", "1 High St", "London", "E1 6AN", "01/01/2020", ""],
        ["T\t4", "Di", "Green", "01/02/1980", "", "1 High\x85St", "London", "E1 6AN", "01/01/2020", ""],
        ["T5", "Ed", "White", "01/02/1980", "", "Flat 1\n2 High St", "London", "E1 6AN", "01/01/2020", ""],
    ]
    path = tmp_path / "t.csv"
    path.write_text(kit.csv_text(rows), encoding="utf-8")
    result = ingest_extract(feed, path, today=kit.TODAY)
    reasons = dict(zip(result.quarantined["row_number"], result.quarantined["reasons"]))
    assert "record_id: control character" in reasons[1]
    assert "surname: control character" in reasons[2]
    assert "record_id: control character" in reasons[3]
    assert "record_id: control character" in reasons[4] and "address_lines: control character" in reasons[4]
    assert result.accepted["record_id"].tolist() == ["T5"]  # a line break inside an address is text
    assert result.rows_in == len(result.accepted) + len(result.quarantined)


def test_nul_in_a_parquet_extract_is_quarantined_not_fatal(tmp_path: Path, kit) -> None:
    from ingest.extract import ingest_extract

    feed = _feed(kit, tmp_path, {"format: csv": "format: parquet"})
    frame = pd.DataFrame([r for r in kit.GOOD_ROWS], columns=kit.HEADER)
    frame.loc[1, "TenancyRef"] = "T\x002"
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    result = ingest_extract(feed, path, today=kit.TODAY)
    assert result.quarantined["reasons"].tolist() == ["record_id: control character"]
    assert result.accepted["record_id"].tolist() == ["T1", "T3"]


# -- item 9: a failed feed leaves nothing behind --------------------------------------------------------


def test_failure_after_every_file_was_written_leaves_nothing(hub: Home, kit, monkeypatch) -> None:
    import orchestrate.feed_pipeline

    extract = _camden_extract(hub, kit, rows=[*kit.GOOD_ROWS, ["", "No", "Id", "01/01/1980", "", "x", "", "", "", ""]])
    before = _files(hub.root)

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(orchestrate.feed_pipeline, "write_manifest", disk_full)
        outcome = pipeline.ingest_feed(hub, "E09000007/tenancy", RUN)
    assert outcome["status"] == "failed" and "No space left" in outcome["error"]
    left = {p for p in _files(hub.root) - before
            if not p.name.startswith("datakey.") and "datakeys" not in p.parts and "runs" not in p.parts}
    assert left == set(), left  # no store file, vault entry, quarantine, manifest or temporary file
    # (data keys, made on first use, are key material under the KEK, not data the feed left behind)
    assert extract.exists()  # not archived either
    assert pipeline.ingest_feed(hub, "E09000007/tenancy", RUN)["status"] == "ingested"


def test_browser_download_name_is_ingested_whole_with_its_vault_entry(hub: Home, kit) -> None:
    """Attack (issue 10, item 9): 'tenancy_20261102 (1).csv' failed after writing its store file."""
    from anonymise.keys import load_keyring
    from anonymise.vault import Vault

    _camden_extract(hub, kit, name="tenancy_20261102 (1).csv")
    outcome = pipeline.ingest_feed(hub, "E09000007/tenancy", RUN)
    assert outcome["status"] == "ingested", outcome.get("error")
    assert outcome["extract_id"].startswith("tenancy_20261102_1-")
    record = Vault(hub, load_keyring(hub)).reidentify("E09000007", "T1", actor="test", reason="test")
    assert record["extract_id"] == outcome["extract_id"]


def test_staged_commit_rolls_back_when_a_rename_fails(tmp_path: Path) -> None:
    from councilmatch.fileio import atomic_write

    old = atomic_write(tmp_path / "a.enc", b"old")
    blocker = tmp_path / "b.enc"
    blocker.mkdir()  # renaming a file over a directory fails
    (blocker / "x").write_text("x")
    with pytest.raises(OSError):
        with staged():
            atomic_write(tmp_path / "a.enc", b"new")
            atomic_write(blocker, b"b")
            assert old.read_bytes() == b"old"  # nothing visible before the commit
    assert old.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.enc", "b.enc"]  # no temporary or backup file


# -- item 10: size limits -------------------------------------------------------------------------------


def test_per_feed_size_limits_give_clear_errors(tmp_path: Path, kit) -> None:
    many = [[f"T{i}", "Ann", "Jones", "01/02/1980", "", "1 High St", "London", "E1 6AN", "01/01/2020", ""]
            for i in range(50)]
    path = tmp_path / "t.csv"
    path.write_text(kit.csv_text(many))
    cases = {
        "limits: {max_rows: 10}": "limits.max_rows",
        "limits: {max_columns: 5}": "limits.max_columns",
        "limits: {max_line_kb: 1}": None,
    }
    for extra, key in cases.items():
        feed = _feed(kit, tmp_path, extra=extra + "\n")
        if key is None:
            read_extract(feed, path)  # lines of ~70 bytes are within 1 KB
        else:
            with pytest.raises(ExtractError, match=key.replace(".", r"\.")) as err:
                read_extract(feed, path)
            assert str(path) in str(err.value)
    one_line = tmp_path / "one_line.csv"
    one_line.write_bytes(b"TenancyRef,Surname\nT1," + b"x" * 2_000_000 + b"\n")
    with pytest.raises(ExtractError, match=r"line 2 is 2,000,003 bytes long.*limits\.max_line_kb"):
        read_extract(_feed(kit, tmp_path, extra="limits: {max_line_kb: 1024}\n"), one_line)
    big = tmp_path / "big.csv"
    big.write_bytes(kit.csv_text(many).encode() + b"\n" * (1 << 20))
    with pytest.raises(ExtractError, match=r"limits\.max_file_mb"):
        read_extract(_feed(kit, tmp_path, extra="limits: {max_file_mb: 1}\n"), big)


def test_parquet_limits_read_from_the_footer(tmp_path: Path, kit) -> None:
    frame = pd.DataFrame([r for r in kit.GOOD_ROWS] * 10, columns=kit.HEADER)
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    feed = _feed(kit, tmp_path, {"format: csv": "format: parquet"}, extra="limits: {max_rows: 5}\n")
    with pytest.raises(ExtractError, match=r"30 rows.*limits\.max_rows"):
        read_extract(feed, path)


def test_limits_are_validated_with_the_feed(tmp_path: Path, kit) -> None:
    for extra, key in (("limits: {max_rows: 0}\n", "limits.max_rows"), ("limits: {max_bytes: 5}\n", "limits.max_bytes")):
        with pytest.raises(FeedDefinitionError, match=key.replace(".", r"\.")):
            _feed(kit, tmp_path, extra=extra)


# -- item 14: clear errors, never a traceback ------------------------------------------------------------


def test_utf16_extract_in_a_cp1252_feed_is_a_clear_error(tmp_path: Path, kit) -> None:
    feed = _feed(kit, tmp_path, {"encoding: utf-8": "encoding: cp1252"})
    text = kit.csv_text(kit.GOOD_ROWS)
    for name, data in (("bom.csv", text.encode("utf-16")), ("le.csv", text.encode("utf-16-le"))):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ExtractError, match="UTF-16") as err:
            read_extract(feed, path)
        assert str(path) in str(err.value) and "cp1252" in str(err.value)
    utf16 = _feed(kit, tmp_path, {"encoding: utf-8": "encoding: utf-16"})
    path = tmp_path / "bom.csv"
    assert read_extract(utf16, path).frame["TenancyRef"].tolist() == ["T1", "T2", "T3"]


def test_header_field_over_the_csv_field_limit_is_a_clear_error(tmp_path: Path, kit) -> None:
    path = tmp_path / "wide_header.csv"
    path.write_bytes(b"TenancyRef,\"" + b"x" * 300_000 + b"\"\nT1,y\n")
    with pytest.raises(ExtractError, match="cannot read the header row as CSV") as err:
        read_extract(_feed(kit, tmp_path), path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("encoding", ["rot13", "rot_13", "hex", "base64", "zlib", "utf-7", "klingon"])
def test_unknown_or_non_text_encoding_is_refused_when_the_feed_is_validated(tmp_path: Path, kit,
                                                                            encoding: str) -> None:
    path = tmp_path / "feed.yaml"
    path.write_text(kit.TENANCY_YAML.format(encoding=encoding, delimiter=","))
    with pytest.raises(FeedDefinitionError) as err:
        load_feed(path)
    assert f"{path}:5: encoding: unknown encoding {encoding!r}" in str(err.value)


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf-8-sig", "cp1252", "windows-1252", "latin-1", "utf-16"])
def test_text_encodings_are_accepted(tmp_path: Path, kit, encoding: str) -> None:
    path = tmp_path / "feed.yaml"
    path.write_text(kit.TENANCY_YAML.format(encoding=encoding, delimiter=","))
    assert load_feed(path).encoding == encoding
