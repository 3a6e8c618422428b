"""ingest_extract on a corpus of bad inputs built here: exact errors and quarantine reasons."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anonymise.manifest import read_manifests, write_manifest
from councilmatch.contracts import CANONICAL_COLUMNS
from ingest.extract import ingest_extract
from ingest.feeds import load_feed
from ingest.read import ExtractError, read_extract


@pytest.fixture
def feed(home, kit):
    return load_feed(kit.write_feed(home.root))


def _ingest(feed, path: Path, kit):
    result = ingest_extract(feed, path, today=kit.TODAY)
    assert result.rows_in == len(result.accepted) + len(result.quarantined)
    return result


def _reasons(result) -> dict[int, str]:
    return dict(zip(result.quarantined["row_number"], result.quarantined["reasons"]))


def test_good_extract_gives_the_canonical_frame(feed, landing, kit) -> None:
    path = landing / "tenancy_2026-11-25.csv"
    path.write_text(kit.csv_text(kit.GOOD_ROWS), encoding="utf-8")
    result = _ingest(feed, path, kit)
    acc = result.accepted
    assert list(acc.columns) == list(CANONICAL_COLUMNS)
    assert len(acc) == 3 and result.quarantined.empty
    first = acc.iloc[0]
    assert (first.council, first.dataset, first.record_id) == ("E09000007", "tenancy", "T1")
    assert (first.forenames, first.first_name, first.surname) == ("ZOE", "ZOE", "OBRIEN SMITH")
    assert pd.isna(first.middle_names)
    assert acc.iloc[1].middle_names == "PAUL"
    assert first.dob == pd.Timestamp("1980-02-01") and str(acc["dob"].dtype) == "datetime64[ns]"
    assert (first.nino, first.postcode, first.address_lines) == ("AB123456C", "SW1A 1AA", "12 SAINT JOHNS ROAD, LONDON".replace(",", ""))
    assert acc.iloc[2].address_lines == "FLAT 2 7 ACACIA AVENUE LONDON"
    assert pd.isna(first.period_end) and acc.iloc[1].period_end == pd.Timestamp("2021-03-01")
    assert result.extract_id.startswith("tenancy_2026-11-25-") and len(result.extract_id.split("-")[-1]) == 12
    assert result.checksum.startswith(result.extract_id[-12:])


def test_same_extract_twice_gives_the_same_result(feed, landing, kit) -> None:
    rows = [*kit.GOOD_ROWS, ["T4", "X", "Y", "99/99/1999", "", "1 Rd", "", "", "01/01/2020", ""]]
    path = landing / "e.csv"
    path.write_text(kit.csv_text(rows))
    a, b = _ingest(feed, path, kit), _ingest(feed, path, kit)
    pd.testing.assert_frame_equal(a.accepted, b.accepted)
    pd.testing.assert_frame_equal(a.quarantined, b.quarantined)
    assert {k: v for k, v in a.manifest().items() if k != "ingested_at"} == {k: v for k, v in b.manifest().items() if k != "ingested_at"}


def test_row_problems_are_quarantined_with_exact_reasons(feed, landing, kit) -> None:
    g = kit.GOOD_ROWS
    rows = [
        g[0],                                                                                   # 1 ok
        ["T2", "John", "Smith", "31/02/1980", "QQ123456C", "1 High St", "London", "XX", "01/01/2020", "01/01/2019"],  # 2
        ["T3", "Ann", "", "", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""],                     # 3 mandatory missing
        ["T1", "Ann", "Jones", "01/01/2090", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""],       # 4 duplicate id, future dob
        ["T5", "=HYPERLINK(\"http://x\")", "Jones", "01/01/1900", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""],  # 5
        ["T6", "Ann", "J0nes", "01/01/1980", "", "x" * 600, "", "E1 6AN", "01/01/2020", ""],   # 6 digits, huge field
        ["T7", "Ann", "???", "01/01/1980", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""],        # 7 no letters
        ["T8", "+44 7700 900123", "-Smith", "01/01/1980", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""],  # 8 not formulas
    ]
    path = landing / "e.csv"
    path.write_text(kit.csv_text(rows))
    result = _ingest(feed, path, kit)
    # nino, postcode, forenames and period_end are not mandatory in this feed: their invalid values
    # are set to missing and counted, and the row is quarantined only for what makes it unusable
    assert _reasons(result) == {
        2: "dob: not a date in format %d/%m/%Y",
        3: "surname: missing; dob: missing",
        4: "record_id: duplicate; dob: in the future",
        5: "forenames: formula-looking cell; dob: more than 120 years ago",
        6: "address_lines: longer than 500 characters; surname: contains digits",
        7: "surname: no letters",
    }
    assert result.accepted["record_id"].tolist() == ["T1", "T8"]
    t8 = result.accepted.iloc[1]
    assert pd.isna(t8.forenames) and pd.isna(t8.first_name) and t8.surname == "SMITH"
    q = result.quarantined.set_index("row_number")
    raw = json.loads(q.loc[5, "raw"])
    assert raw["First Names"] == '=HYPERLINK("http://x")' and raw["TenancyRef"] == "T5"
    assert q.loc[4, "record_id"] == "T1"
    counts = result.manifest()["quarantine_reasons"]
    assert counts["dob: not a date in format %d/%m/%Y"] == 1 and sum(counts.values()) == 10
    # counted where the row was accepted (T8); row 2's were on a row quarantined for its dob
    assert result.manifest()["set_missing"] == {"forenames: contains digits": 1, "forenames: no letters": 1}
    quality = result.quality
    assert quality["invalid_reasons"]["nino: invalid format"] == 1
    assert quality["invalid_reasons"]["period_end: before period_start"] == 1
    assert quality["fields"]["postcode"]["invalid"] == 1 and quality["fields"]["forenames"]["invalid"] == 1
    assert quality["duplicate_record_ids"] == 1


def test_quarantine_invalid_setting_quarantines_a_chosen_optional_field(home, landing, kit) -> None:
    feed_file = kit.write_feed(home.root)
    feed_file.write_text(feed_file.read_text() + "quarantine_invalid: [nino]\n")
    feed = load_feed(feed_file)
    row = ["T2", "John", "Smith", "01/02/1980", "QQ123456C", "1 High St", "London", "XX", "01/01/2020", ""]
    path = landing / "e.csv"
    path.write_text(kit.csv_text([row]))
    result = _ingest(feed, path, kit)
    assert _reasons(result) == {1: "nino: invalid format"}
    assert result.quality["set_missing"] == {}  # the row's postcode problem is on a quarantined row


def test_quarantine_invalid_must_name_a_mapped_field(home, kit) -> None:
    from ingest.feeds import FeedDefinitionError

    feed_file = kit.write_feed(home.root)
    feed_file.write_text(feed_file.read_text() + "quarantine_invalid: [email]\n")
    with pytest.raises(FeedDefinitionError, match=r"quarantine_invalid\[0\]: 'email' is not mapped in columns"):
        load_feed(feed_file)


def test_invalid_optional_values_are_set_missing_and_kept_as_sent_for_the_vault(feed, landing, kit) -> None:
    g = kit.GOOD_ROWS
    rows = [
        g[0],
        ["T2", "John", "Smith", "15/06/1975", "QQ123456C", "1 High St", "London", "NOT A PC", "01/03/2019", "31/02/2021"],
        g[2],
    ]
    path = landing / "e.csv"
    path.write_text(kit.csv_text(rows))
    result = _ingest(feed, path, kit)
    assert result.quarantined.empty and result.accepted["record_id"].tolist() == ["T1", "T2", "T3"]
    t2 = result.accepted.iloc[1]
    assert pd.isna(t2.nino) and pd.isna(t2.postcode) and pd.isna(t2.period_end)
    assert t2.surname == "SMITH" and t2.dob == pd.Timestamp("1975-06-15")
    assert result.manifest()["set_missing"] == {
        "nino: invalid format": 1, "period_end: not a date in format %d/%m/%Y": 1, "postcode: invalid format": 1,
    }
    vault = result.vault_frame()
    assert vault.iloc[1]["nino"] == "QQ123456C" and vault.iloc[1]["postcode"] == "NOT A PC"
    assert vault.iloc[0]["nino"] == "AB123456C" and vault.iloc[1]["dob"] == pd.Timestamp("1975-06-15")
    # the manifest (written outside the vault) carries counts, never the values
    assert "QQ123456C" not in json.dumps(result.manifest(), default=str)


def test_ragged_rows_are_quarantined_not_fatal(feed, landing, kit) -> None:
    body = kit.csv_text([kit.GOOD_ROWS[2]]).split("\n")[1]
    text = kit.csv_text(kit.GOOD_ROWS[:1]) + "T9,short,row\n" + ",".join(kit.GOOD_ROWS[1]) + ",extra\n" + \
        "\n" + body + "\n"
    path = landing / "e.csv"
    path.write_text(text)
    result = _ingest(feed, path, kit)
    assert _reasons(result) == {2: "row: expected 10 fields, found 3", 3: "row: expected 10 fields, found 11"}
    assert json.loads(result.quarantined.iloc[0]["raw"]) == ["T9", "short", "row"]
    assert result.accepted["record_id"].tolist() == ["T1", "T3"]
    assert result.blank_rows == 1 and result.rows_in == 4


def test_quoted_multiline_value_keeps_row_numbers(feed, landing, kit) -> None:
    rows = [kit.GOOD_ROWS[0][:5] + ["12 Main St\nSecond line"] + kit.GOOD_ROWS[0][6:],
            ["T2", "a"], kit.GOOD_ROWS[2]]
    path = landing / "e.csv"
    path.write_text(kit.csv_text([rows[0]]) + "T2,a\n" + kit.csv_text([rows[2]]).split("\n")[1] + "\n")
    result = _ingest(feed, path, kit)
    assert _reasons(result) == {2: "row: expected 10 fields, found 2"}
    assert result.accepted.iloc[0]["address_lines"] == "12 MAIN STREET SECOND LINE LONDON"


def test_bom_is_stripped_with_utf8_sig(home, landing, kit) -> None:
    feed = load_feed(kit.write_feed(home.root, encoding="utf-8-sig"))
    path = landing / "e.csv"
    path.write_bytes(kit.csv_text(kit.GOOD_ROWS).encode("utf-8-sig"))
    result = _ingest(feed, path, kit)
    assert len(result.accepted) == 3 and result.accepted.iloc[0].forenames == "ZOE"
    # a plain utf-8 feed tolerates the BOM too (Excel adds it)
    plain = load_feed(kit.write_feed(home.root))
    assert len(_ingest(plain, path, kit).accepted) == 3


def test_cp1252_extract(home, landing, kit) -> None:
    feed = load_feed(kit.write_feed(home.root, encoding="cp1252"))
    path = landing / "e.csv"
    path.write_bytes(kit.csv_text(kit.GOOD_ROWS).replace("St John's", "St John’s").encode("cp1252"))
    result = _ingest(feed, path, kit)
    assert result.accepted.iloc[0].forenames == "ZOE"
    assert result.accepted.iloc[0].address_lines == "12 SAINT JOHNS ROAD LONDON"


def test_semicolon_delimiter_feed(home, landing, kit) -> None:
    feed = load_feed(kit.write_feed(home.root, delimiter=";"))
    path = landing / "e.csv"
    path.write_text(kit.csv_text(kit.GOOD_ROWS, delimiter=";"))
    assert len(_ingest(feed, path, kit).accepted) == 3


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file (0 bytes)"),
        (b"\n\n", "no header row (file is blank)"),
        (None, "header only: no data rows"),
        ("cp1252", "not valid utf-8 at byte {pos} (line 2); is the feed's encoding cp1252?"),
        ("mixed", "not valid utf-8 at byte"),
        ("semicolons", "the header reads as one column with the feed's delimiter (comma) but contains semicolons; is the delimiter ';'?"),
        ("header", "header does not match feed E09000007/tenancy (version 3): missing column(s) 'Surname' (surname); 'Date of Birth' (dob)"),
    ],
)
def test_unusable_files_raise_extract_error_naming_the_file(feed, landing, kit, content, message) -> None:
    path = landing / "bad.csv"
    if content is None:
        content = kit.csv_text([]).encode()
    elif content == "cp1252":
        content = kit.csv_text(kit.GOOD_ROWS).encode("cp1252")
    elif content == "mixed":
        content = kit.csv_text(kit.GOOD_ROWS).encode("utf-8") + "T9,José,Núñez\n".encode("cp1252")
    elif content == "semicolons":
        content = kit.csv_text(kit.GOOD_ROWS, delimiter=";").encode()
    elif content == "header":
        header = [h for h in kit.HEADER if h not in ("Surname", "Date of Birth")]
        content = kit.csv_text([r[:2] + r[4:] for r in kit.GOOD_ROWS], header=header).encode()
    path.write_bytes(content)
    message = message.format(pos=content.find(b"\xeb"))
    with pytest.raises(ExtractError) as info:
        ingest_extract(feed, path, today=kit.TODAY)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_cp1252_feed_given_utf8_file_is_refused(home, landing, kit) -> None:
    feed = load_feed(kit.write_feed(home.root, encoding="cp1252"))
    path = landing / "e.csv"
    path.write_text(kit.csv_text(kit.GOOD_ROWS), encoding="utf-8")
    with pytest.raises(ExtractError, match="looks like utf-8 .* set encoding: utf-8"):
        ingest_extract(feed, path)


def test_optional_column_missing_is_a_warning(feed, landing, kit) -> None:
    header = [h for h in kit.HEADER if h != "NI Number"]
    path = landing / "e.csv"
    path.write_text(kit.csv_text([r[:4] + r[5:] for r in kit.GOOD_ROWS], header=header))
    result = _ingest(feed, path, kit)
    assert len(result.accepted) == 3 and result.accepted["nino"].isna().all()
    assert result.warnings == ["column 'NI Number' mapped to nino is not in the header; nino left empty"]


def test_header_names_match_ignoring_case_and_spacing(feed, landing, kit) -> None:
    header = [h.upper().replace(" ", "  ") for h in kit.HEADER]
    path = landing / "e.csv"
    path.write_text(kit.csv_text(kit.GOOD_ROWS, header=header))
    assert len(_ingest(feed, path, kit).accepted) == 3


def test_xlsx_and_parquet_read_like_csv(home, landing, kit) -> None:
    import openpyxl
    import datetime as dt

    text = kit.TENANCY_YAML.format(encoding="utf-8", delimiter=",")
    xfeed_path = home.feeds / "E09000007" / "tenancy.yaml"
    xfeed_path.parent.mkdir(parents=True, exist_ok=True)
    xfeed_path.write_text(text.replace("format: csv", "format: xlsx"))
    xfeed = load_feed(xfeed_path)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(kit.HEADER)
    ws.append(["T1", "Ann", "Jones", dt.datetime(1980, 2, 1), "JG103759A", "1 Rd", "London", "E1 6AN", "01/01/2020", None])
    ws.append([None] * 10)
    ws.append([1234.0, "Bob", "Smith", "03/04/1970", None, "2 Rd", "London", "E1 6AN", dt.date(2020, 1, 1), None])
    xpath = landing / "e.xlsx"
    wb.save(xpath)
    result = ingest_extract(xfeed, xpath, today=kit.TODAY)
    assert result.accepted["record_id"].tolist() == ["T1", "1234"]
    assert result.accepted["dob"].tolist() == [pd.Timestamp("1980-02-01"), pd.Timestamp("1970-04-03")]
    assert result.blank_rows == 1 and result.rows_in == 2

    pfeed_path = home.feeds / "E09000007" / "tenancy.yaml"
    pfeed_path.write_text(text.replace("format: csv", "format: parquet"))
    pfeed = load_feed(pfeed_path)
    table = pa.table({h: [r[i] or None for r in kit.GOOD_ROWS] for i, h in enumerate(kit.HEADER)})
    table = table.set_column(3, "Date of Birth", pa.array([dt.date(1980, 2, 1), dt.date(1975, 6, 15), dt.date(1990, 2, 28)]))
    ppath = landing / "e.parquet"
    pq.write_table(table, ppath)
    result = ingest_extract(pfeed, ppath, today=kit.TODAY)
    assert len(result.accepted) == 3 and result.accepted.iloc[2].dob == pd.Timestamp("1990-02-28")
    assert result.header_offset == -1


def test_pseudonymised_format_is_left_to_anonymise(home, landing, kit) -> None:
    path = home.feeds / "E09000007" / "tenancy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kit.TENANCY_YAML.format(encoding="utf-8", delimiter=",").replace("format: csv", "format: pseudonymised"))
    p = landing / "e.parquet"
    p.write_bytes(b"x")
    with pytest.raises(ExtractError, match="handled by the anonymise stage"):
        read_extract(load_feed(path), p)


def test_manifest_has_counts_but_no_identifier(feed, landing, kit, home, monkeypatch) -> None:
    import base64
    import os

    from anonymise.keys import init_keys

    monkeypatch.setenv("COUNCILMATCH_KEK", base64.b64encode(os.urandom(32)).decode())
    init_keys(home)  # manifests are encrypted at rest under the home's keys
    path = landing / "e.csv"
    path.write_text(kit.csv_text([*kit.GOOD_ROWS, ["T4", "Ann", "Jones", "bad", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""]]))
    result = _ingest(feed, path, kit)
    m = result.manifest()
    assert (m["rows_in"], m["accepted"], m["quarantined"]) == (4, 3, 1)
    assert m["quarantine_reasons"] == {"dob: not a date in format %d/%m/%Y": 1}
    assert m["feed_version"] == 3 and m["extract_file"] == "e.csv" and m["checksum"] == result.checksum
    text = json.dumps(m)
    for value in ("ZOE", "Zoë", "OBRIEN", "AB123456C", "SW1A", "1980", "Jones", "JONES"):
        assert value not in text
    written = write_manifest(home, m)
    assert written == home.manifests / "E09000007" / "tenancy" / f"{result.extract_id}.json"
    from anonymise import at_rest

    assert read_manifests(home, "E09000007/tenancy") == [at_rest.read_json(written, home)]
    assert b"rows_in" not in written.read_bytes()  # encrypted at rest
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]


def test_mapped_column_twice_in_header_is_an_error(feed, landing, kit) -> None:
    header = [*kit.HEADER, "surname "]
    path = landing / "e.csv"
    path.write_text(kit.csv_text([r + ["x"] for r in kit.GOOD_ROWS], header=header))
    with pytest.raises(ExtractError, match="column\\(s\\) 'Surname' appear more than once in the header"):
        ingest_extract(feed, path)


def test_multi_megabyte_field_and_crlf_line_ends(feed, landing, kit) -> None:
    rows = [*kit.GOOD_ROWS, ["T4", "Ann", "Jones", "01/01/1980", "", "x" * 3_000_000, "", "E1 6AN", "01/01/2020", ""]]
    path = landing / "e.csv"
    path.write_bytes(kit.csv_text(rows).replace("\n", "\r\n").encode())
    result = _ingest(feed, path, kit)
    assert _reasons(result) == {4: "address_lines: longer than 500 characters"}
    assert result.accepted["record_id"].tolist() == ["T1", "T2", "T3"]
    assert result.accepted.iloc[2]["period_start"] == pd.Timestamp("2021-05-05")


def test_batches_give_the_same_result_as_one_pass(feed, landing, kit, monkeypatch) -> None:
    import ingest.extract as extract_mod

    rows = [*kit.GOOD_ROWS, ["T1", "Ann", "Jones", "01/01/1980", "", "1 Rd", "", "E1 6AN", "01/01/2020", ""],
            ["T5", "Bob", "Smith", "bad", "", "2 Rd", "", "E1 6AN", "01/01/2020", ""],
            ["T6", "Cy", "Brown", "02/02/1982", "", "3 Rd", "", "E1 6AN", "01/01/2020", ""]]
    path = landing / "e.csv"
    path.write_text(kit.csv_text(rows))
    whole = _ingest(feed, path, kit)
    monkeypatch.setattr(extract_mod, "BATCH_ROWS", 2)
    batched = _ingest(feed, path, kit)
    pd.testing.assert_frame_equal(whole.accepted, batched.accepted)
    pd.testing.assert_frame_equal(whole.quarantined, batched.quarantined)
    assert _reasons(batched) == {4: "record_id: duplicate", 5: "dob: not a date in format %d/%m/%Y"}


def test_only_ragged_rows_gives_an_empty_canonical_frame(feed, landing, kit) -> None:
    path = landing / "e.csv"
    path.write_text(kit.csv_text([]) + "a,b\nc\n")
    result = _ingest(feed, path, kit)
    assert result.accepted.empty and list(result.accepted.columns) == list(CANONICAL_COLUMNS)
    assert _reasons(result) == {1: "row: expected 10 fields, found 2", 2: "row: expected 10 fields, found 1"}


def test_optional_dob_and_previous_surname_problems_do_not_hide_the_record(home, landing) -> None:
    """Council tax: dob is optional there; a digit in a previous surname or an impossible optional date
    of birth is set to missing, while the same problem in a mandatory field still quarantines."""
    from ingest.feed import FeedDefinition

    feed = FeedDefinition(
        council="E09000007", dataset="electoral_register", date_format="%d/%m/%Y",
        columns={"record_id": "Ref", "forenames": "First", "surname": "Last", "previous_surname": "Prev",
                 "dob": "DOB", "address_lines": "Addr", "postcode": "PC"},
        mandatory=["record_id", "forenames", "surname", "address_lines", "postcode"],
    )
    path = landing / "er.csv"
    path.write_text("Ref,First,Last,Prev,DOB,Addr,PC\n"
                    "E1,Ann,Jones,Sm1th,31/02/1980,1 High St,E1 6AN\n"
                    "E2,Bob,K1ng,,01/01/1970,2 High St,E1 6AN\n"
                    "E3,Cy,Lee,,01/01/2099,3 High St,E1 6AN\n")
    result = ingest_extract(feed, path, today=dt.date(2026, 11, 25))
    assert _reasons(result) == {2: "surname: contains digits"}
    acc = result.accepted.set_index("record_id")
    assert pd.isna(acc.loc["E1", "previous_surname"]) and pd.isna(acc.loc["E1", "dob"]) and pd.isna(acc.loc["E3", "dob"])
    assert result.quality["set_missing"] == {
        "dob: in the future": 1, "dob: not a date in format %d/%m/%Y": 1, "previous_surname: contains digits": 1,
    }
    vault = result.vault_frame().set_index("record_id")
    assert (vault.loc["E1", "previous_surname"], vault.loc["E1", "dob"]) == ("Sm1th", "31/02/1980")
    assert vault.loc["E3", "dob"] == "01/01/2099"
