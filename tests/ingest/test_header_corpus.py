"""`feeds add` proposals on a corpus of realistic council layouts (tests/ingest/data/header_corpus.yaml).

Every expected field must be proposed correctly and *surely*, or asked about (proposed for the
officer to check, or a required field left for the prompt); a sure proposal must never be wrong,
and a column that holds no canonical field must never be surely proposed. The sample values are
hand-written here, independently of the synthetic generator.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from councilmatch.contracts import DATASETS
from ingest.propose import propose_feed

CORPUS = yaml.safe_load((Path(__file__).parent / "data" / "header_corpus.yaml").read_text(encoding="utf-8"))
ROWS = 12

VALUES: dict[str, list[str]] = {
    "forename": ["Ann", "John Paul", "Zoë", "Mohammed", "Siobhán", "Kwame", "Li", "Mary-Jane", "Oluwaseun", "Grace",
                 "Tomasz", "Priya"],
    "surname": ["Jones", "O'Brien", "Smith", "Okafor", "Nguyen", "Patel", "Kowalski", "Da Silva", "Ahmed", "Murphy",
                "Williams", "Begum"],
    "surname2": ["Taylor", "", "Brown", "", "", "Evans", "", "Walker", "", "", "Hughes", ""],
    "fullname": ["Ann Jones", "Peter Smith", "Li Wei", "Sam Okafor", "Jo Brown", "Raj Patel", "Kim Lee", "Tom Hall",
                 "Amy Ward", "Ben Cole", "Eve Long", "Max Bell"],
    "title": ["Mr", "Mrs", "Ms", "Miss", "Dr", "Mr", "Mrs", "Mx", "Mr", "Ms", "Mrs", "Mr"],
    "nino": ["AB123456C", "JG103759A", "CE 12 34 56 D", "NE098765B", "PA445566A", "HT112233C", "JX998877D",
             "KL135791B", "MW246802A", "SR102938C", "YZ564738D", "TE837261A"],
    "addr1": ["1 High Street", "Flat 2, 7 Acacia Avenue", "12 St John's Rd", "45 Mare Street", "3 Church Lane",
              "Flat 14 Brunel House", "88 Kingsland Road", "2a Park Rd", "101 Holloway Road", "6 Elm Grove",
              "27 Station Approach", "9 Queens Crescent"],
    "addr2": ["Camden Town", "Acacia Avenue", "Hackney", "Islington", "Dalston", "Clapham", "Stoke Newington",
              "Kentish Town", "Highbury", "Brixton", "Peckham", "Bow"],
    "town": ["London"] * 12,
    "full_address": ["1 High Street, London", "Flat 2, 7 Acacia Avenue, Hackney", "12 St John's Rd, London",
                     "45 Mare Street, Hackney", "3 Church Lane, London", "Flat 14 Brunel House, Bow",
                     "88 Kingsland Road, Dalston", "2a Park Rd, London", "101 Holloway Road, Islington",
                     "6 Elm Grove, Peckham", "27 Station Approach, London", "9 Queens Crescent, Kentish Town"],
    "house_no": ["1", "7", "12", "45", "3", "14", "88", "2a", "101", "6", "27", "9"],
    "flat": ["", "Flat 2", "", "", "", "Flat 14", "", "", "Flat B", "", "", ""],
    "street": ["High Street", "Acacia Avenue", "St John's Rd", "Mare Street", "Church Lane", "Brunel Road",
               "Kingsland Road", "Park Rd", "Holloway Road", "Elm Grove", "Station Approach", "Queens Crescent"],
    "postcode": ["NW1 0NE", "E8 1AA", "N1 9GU", "sw1a1aa", "E1 6AN", "SE15 5DQ", "N16 7UX", "NW5 2HX", "N7 6PA",
                 "SW9 8LF", "E3 4PH", "NW3 4QG"],
    "uprn": ["5023741", "100023336956", "10008233751", "5300019", "100021196745", "10091753338", "200003484111",
             "5142289", "100022779923", "10033540874", "6032887", "100023012244"],
    "email": ["ann.jones@example.org", "jp@example.com", "zoe@mail.example", "m.ahmed@example.co.uk", "s@example.net",
              "kwame99@example.org", "li@example.com", "mj@example.org", "o.l@example.com", "grace@example.org",
              "tk@example.com", "priya@example.co.uk"],
    "phone": ["07700 900123", "020 7946 0018", "+44 7700 900456", "07700900789", "02079460991", "07700 900 111",
              "(020) 7946 0222", "07700900333", "+447700900444", "020 7946 0555", "07700 900666", "07700900777"],
    "sortcode": ["12-34-56", "20-00-00", "40-11-62", "60-83-71", "30-94-57", "09-01-28", "11-22-33", "77-66-55",
                 "16-00-15", "23-14-70", "08-99-12", "56-00-29"],
    "account": ["12345678", "31926819", "00123456", "55779911", "41234567", "70012345", "90817263", "10203040",
                "66554433", "12121212", "80706050", "34563456"],
    "amount": ["£1,234.50", "87.20", "1432.00", "£98.75", "2,001.10", "455.00", "12.34", "£10,500.00", "640.25",
               "77.00", "1.50", "300.00"],
    "yn": ["Y", "N", "N", "Y", "N", "N", "Y", "N", "N", "N", "Y", "N"],
    "small_int": ["1", "2", "3", "2", "1", "4", "2", "3", "1", "2", "5", "2"],
    "band": ["A", "B", "C", "D", "B", "C", "E", "F", "A", "D", "G", "H"],
    "tenure": ["Secure", "Introductory", "Secure", "Flexible", "Secure", "Secure", "Introductory", "Secure",
               "Flexible", "Secure", "Secure", "Introductory"],
    "status": ["Active", "Ended", "Active", "Active", "Suspended", "Active", "Ended", "Active", "Active", "Active",
               "Ended", "Active"],
    "ward": ["Camden Town", "Kilburn", "Hampstead", "Dalston", "Hoxton East", "Clissold", "Highbury", "Brixton Hill",
             "Peckham", "Bow West", "Mile End", "Holborn"],
    "officer": ["J Smith", "A Patel", "K Lee", "J Smith", "A Patel", "K Lee", "M Brown", "M Brown", "J Smith",
                "A Patel", "K Lee", "M Brown"],
    "notes": ["Overcrowded", "Medical priority", "Homeless duty", "Under-occupying", "Decant", "Medical priority",
              "Overcrowded", "Care leaver", "Homeless duty", "Overcrowded", "Decant", "Under-occupying"],
    "franchise": ["", "E", "", "G", "", "", "K", "", "", "F", "", ""],
    "polling": ["AA1", "AA2", "AB1", "AB2", "AC1", "AC1", "AA1", "AB1", "AD3", "AA2", "AB2", "AC2"],
    "job": ["Teaching Assistant", "Social Worker", "Refuse Operative", "Finance Officer", "Librarian", "Planner",
            "Housing Officer", "Cleaner", "Surveyor", "Caretaker", "Lawyer", "Admin Officer"],
    "department": ["Housing", "Finance", "Education", "Environment", "Adults", "Children", "Housing", "Finance",
                   "Education", "Environment", "Adults", "Children"],
    "discount_type": ["Single Person", "None", "Student", "Single Person", "None", "Disabled", "None",
                      "Single Person", "Empty", "None", "Single Person", "None"],
    "eligibility": ["PIP", "Walking", "Blind", "PIP", "War Pension", "Walking", "Child under 3", "PIP", "Arms",
                    "Walking", "Blind", "PIP"],
    "pass_type": ["Older Person", "Disabled", "Older Person", "Older Person", "Disabled", "Older Person",
                  "Older Person", "Disabled", "Older Person", "Older Person", "Disabled", "Older Person"],
    "place": ["Whittington Hospital", "Home address", "Royal Free Hospital", "St Joseph's Hospice", "Home address",
              "Homerton Hospital", "UCLH", "Home address", "North Middlesex", "Care home", "Home address",
              "King's College Hospital"],
}
#: (first date, days between rows): dates of birth over 64 years, periods in order, recent deaths and use
DATE_RANGES = {"dob": (date(1932, 3, 5), 2113), "start": (date(2006, 1, 9), 601), "end": (date(2025, 2, 3), 47),
               "death": (date(2025, 6, 14), 31), "used": (date(2026, 9, 1), 5)}


def _values(kind: str) -> list[str]:
    if kind.startswith("id:"):
        return [f"{kind[3:]}{40017 + 37 * i:06d}" for i in range(ROWS)]
    if ":" in kind:
        which, fmt = kind.split(":", 1)
        first, step = DATE_RANGES[which]
        return [(first + timedelta(days=step * i)).strftime(fmt) for i in range(ROWS)]
    return VALUES[kind][:ROWS]


def _write_sample(entry: dict, path: Path) -> None:
    header = [c[0] for c in entry["columns"]]
    cols = [_values(c[2]) for c in entry["columns"]]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=entry["delimiter"], lineterminator="\n")
        w.writerow(header)
        w.writerows(zip(*cols))


def _expected(entry: dict) -> dict[str, str | list[str]]:
    out: dict[str, list[str]] = {}
    for header, fld, _ in entry["columns"]:
        if fld:
            out.setdefault(fld, []).append(header)
    return {f: (c[0] if len(c) == 1 and f != "address_lines" else c) for f, c in out.items()}


def _as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def test_corpus_is_large_and_covers_every_data_set() -> None:
    assert len(CORPUS) >= 30
    assert len({tuple(c[0] for c in e["columns"]) for e in CORPUS}) == len(CORPUS)  # distinct header sets
    assert {e["dataset"] for e in CORPUS} == set(DATASETS)


def _judge(entry: dict, tmp_path: Path) -> dict[str, list[str]]:
    sample = tmp_path / "sample.csv"
    _write_sample(entry, sample)
    proposal = propose_feed("E09000007", entry["dataset"], sample)
    spec = DATASETS[entry["dataset"]]
    required = {"record_id", *spec.required}
    expected = _expected(entry)
    verdict: dict[str, list[str]] = {"sure_right": [], "asked": [], "silently_wrong": [], "missed": []}
    for fld, p in proposal.fields.items():
        right = fld in expected and p.columns == _as_list(expected[fld])
        if p.sure:
            verdict["sure_right" if right else "silently_wrong"].append(
                fld if right else f"{fld} <- {p.columns} (expected {expected.get(fld)})")
        else:
            verdict["asked"].append(fld)
    for fld in expected:
        if fld not in proposal.fields:
            verdict["asked" if fld in required else "missed"].append(fld)
    assert (proposal.delimiter, proposal.encoding) == (entry["delimiter"], "utf-8")
    return verdict


@pytest.mark.parametrize("entry", CORPUS, ids=[e["name"] for e in CORPUS])
def test_each_layout_is_proposed_right_or_asked_never_silently_wrong(entry: dict, tmp_path: Path) -> None:
    verdict = _judge(entry, tmp_path)
    assert verdict["silently_wrong"] == [], verdict
    assert verdict["missed"] == [], verdict


def test_most_of_the_corpus_is_proposed_surely(tmp_path: Path) -> None:
    """Asking about everything would also never be wrong: at least 90% of the expected fields are sure and right."""
    right = total = 0
    asked = []
    for i, entry in enumerate(CORPUS):
        folder = tmp_path / str(i)
        folder.mkdir()
        verdict = _judge(entry, folder)
        right += len(verdict["sure_right"])
        total += len(_expected(entry))
        asked += [f"{entry['name']}: {f}" for f in verdict["asked"]]
    assert right / total >= 0.9, (right, total, asked)
