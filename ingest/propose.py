"""Proposing a feed definition from a sample extract (used by ``councilmatch feeds add``).

Sniffs the encoding and delimiter, matches header names to canonical fields
(a synonyms table first, then fuzzy matching), and guesses date formats from
the sample's values. Everything here is a proposal a data officer confirms.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import jellyfish
import pandas as pd

from councilmatch.contracts import DATASETS, DATE_FIELDS
from ingest.feed import FeedDefinition
from ingest.read import CANDIDATE_DELIMITERS, read_extract

#: Header spellings seen in council systems, compared after lower-casing and
#: dropping everything but letters and digits.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "record_id": ("recordid", "id", "ref", "reference", "accountref", "accountnumber", "accountno",
                  "tenancyref", "tenancyreference", "claimref", "claimreference", "badgenumber", "badgeno",
                  "passnumber", "passno", "employeeid", "employeenumber", "payrollnumber", "staffnumber",
                  "applicationref", "applicationnumber", "applicationno", "applicationid", "electorref", "electornumber",
                  "electorno", "registrationnumber", "caseref", "claimid", "claimno", "ctaxaccount", "ctaxaccountno",
                  "ctaxref", "empno", "employeeno", "staffno", "tenancyno", "badgeid", "passid"),
    "forenames": ("forenames", "forename", "firstname", "firstnames", "givenname", "givennames", "christianname"),
    "surname": ("surname", "lastname", "familyname"),
    "previous_surname": ("previoussurname", "maidenname", "formersurname", "previousname", "birthsurname"),
    "dob": ("dob", "dateofbirth", "birthdate", "datebirth", "bornon"),
    "nino": ("nino", "ninumber", "nationalinsurancenumber", "nationalinsuranceno", "nino", "nationalinsurance", "nino"),
    "address_lines": ("address", "addressline1", "addressline2", "addressline3", "addressline4", "address1", "address2",
                      "address3", "address4", "addr1", "addr2", "addr3", "street", "town", "city", "propertyaddress",
                      "houseno", "housenumber", "flat", "building", "locality", "fulladdress", "addressfull",
                      "addressline", "postaladdress", "homeaddress"),
    "postcode": ("postcode", "pcode", "pc", "postalcode", "zip", "zipcode"),
    "uprn": ("uprn", "propertyref", "uniquepropertyreferencenumber"),
    "email": ("email", "emailaddress", "mail"),
    "phone": ("phone", "telephone", "tel", "phonenumber", "mobile", "mobilenumber", "telno", "contactnumber"),
    "bank_sort_code": ("sortcode", "banksortcode"),
    "bank_account": ("accountnumber", "bankaccount", "bankaccountnumber", "bankaccountno"),
    "period_start": ("startdate", "periodstart", "fromdate", "datefrom", "tenancystart", "tenancystartdate",
                     "validfrom", "issuedate", "dateissued", "registereddate", "liabilitystart", "effectivedate",
                     "applicationdate", "dateapplied", "startofemployment", "employmentstart"),
    "period_end": ("enddate", "periodend", "todate", "dateto", "tenancyend", "tenancyenddate", "validto",
                   "validuntil", "expirydate", "expiry", "liabilityend", "leavingdate", "employmentend"),
    "date_of_death": ("dateofdeath", "dod", "deathdate", "diedon"),
    "last_used": ("lastused", "lastuse", "lastuseddate", "datelastused", "lasttap", "lastjourney"),
    "discount": ("discount", "spd", "singlepersondiscount", "spdflag", "discountflag"),
    "amount": ("amount", "value", "grosspay", "pay", "salary", "award", "weeklyaward", "annualamount", "charge"),
}
#: Date formats tried on sample values, most common first (day-first wins a tie).
DATE_FORMAT_CANDIDATES: tuple[str, ...] = (
    "%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y", "%Y%m%d",
    "%d %b %Y", "%d-%b-%Y", "%d %B %Y", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
)
FUZZY_THRESHOLD = 0.9


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class Proposal:
    encoding: str
    delimiter: str
    header: list[str]
    columns: dict[str, str | list[str]]
    #: field -> (how it was matched: "synonym" | "fuzzy 0.93")
    how: dict[str, str] = field(default_factory=dict)
    date_format: str = "%Y-%m-%d"
    date_formats: dict[str, str] = field(default_factory=dict)
    true_values: list[str] | None = None
    false_values: list[str] | None = None
    unmapped: list[str] = field(default_factory=list)


def sniff_encoding(data: bytes) -> str:
    """utf-8-sig with a BOM, utf-8 if it decodes, else cp1252 (latin-1 if cp1252 cannot)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and exc.reason.startswith("unexpected end"):
            return "utf-8"  # a multi-byte character cut by our sample size
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(CANDIDATE_DELIMITERS)).delimiter
    except csv.Error:
        head = lines[0] if lines else ""
        return max(CANDIDATE_DELIMITERS, key=head.count)


def guess_date_format(values: pd.Series) -> str | None:
    """The candidate format that parses the most sample values (None if none parses any)."""
    v = values.dropna().astype(str).str.strip()
    v = v[v != ""].head(500)
    if v.empty:
        return None
    best, best_n = None, 0
    for fmt in DATE_FORMAT_CANDIDATES:
        n = int(pd.to_datetime(v, format=fmt, errors="coerce").notna().sum())
        if n > best_n:
            best, best_n = fmt, n
    return best


def match_headers(header: list[str], allowed: list[str]) -> tuple[dict[str, str | list[str]], dict[str, str]]:
    """Map header names to allowed canonical fields: synonyms first, then Jaro-Winkler >= 0.9."""
    columns: dict[str, str | list[str]] = {}
    how: dict[str, str] = {}
    used: set[str] = set()
    for h in header:  # exact synonyms; address lines may collect several columns
        k = _key(h)
        for fld in allowed:
            if k in SYNONYMS.get(fld, ()) or k == _key(fld):
                if fld == "address_lines":
                    prev = columns.get(fld, [])
                    columns[fld] = [*prev, h] if isinstance(prev, list) else [prev, h]
                elif fld in columns:
                    continue
                else:
                    columns[fld] = h
                how[fld] = "synonym"
                used.add(h)
                break
    for h in header:  # fuzzy for what is left
        if h in used:
            continue
        k = _key(h)
        scored = [
            (max(jellyfish.jaro_winkler_similarity(k, syn) for syn in (*SYNONYMS.get(f, ()), _key(f))), f)
            for f in allowed if f not in columns
        ]
        if scored:
            score, fld = max(scored)
            if score >= FUZZY_THRESHOLD:
                columns[fld] = [h] if fld == "address_lines" else h
                how[fld] = f"fuzzy {score:.2f}"
                used.add(h)
    if isinstance(columns.get("address_lines"), list) and len(columns["address_lines"]) == 1:
        columns["address_lines"] = columns["address_lines"][0]
    return columns, how


def propose_feed(council: str, dataset: str, sample: Path) -> Proposal:
    """Read a sample extract's header and values and propose a mapping."""
    sample = Path(sample)
    suffix = sample.suffix.lower()
    fmt = "xlsx" if suffix in (".xlsx", ".xlsm") else "parquet" if suffix == ".parquet" else "csv"
    encoding, delimiter = "utf-8", ","
    if fmt == "csv":
        data = sample.read_bytes()[: 1 << 20]
        encoding = sniff_encoding(data)
        delimiter = sniff_delimiter(data.decode(encoding, errors="ignore"))
    probe = FeedDefinition(council=council, dataset=dataset, format=fmt, encoding=encoding, delimiter=delimiter)
    raw = read_extract(probe, sample)
    spec = DATASETS[dataset]
    allowed = ["record_id", *spec.required, *spec.optional]
    columns, how = match_headers(raw.header, allowed)
    formats = {}
    for fld in DATE_FIELDS:
        src = columns.get(fld)
        if isinstance(src, str):
            guessed = guess_date_format(raw.frame[src])
            if guessed:
                formats[fld] = guessed
    common = max(set(formats.values()), key=list(formats.values()).count) if formats else "%Y-%m-%d"
    proposal = Proposal(
        encoding=encoding, delimiter=delimiter, header=raw.header, columns=columns, how=how,
        date_format=common, date_formats={f: v for f, v in formats.items() if v != common},
        unmapped=[h for h in raw.header if h not in _mapped_names(columns)],
    )
    if isinstance(columns.get("discount"), str):
        seen = set(raw.frame[columns["discount"]].dropna().str.strip().str.upper().unique()[:20])
        default = FeedDefinition(council=council, dataset=dataset)
        truthy = {"Y", "YES", "1", "TRUE", "T", "SPD", "DISCOUNT"}
        if seen - {v.upper() for v in default.true_values} - {v.upper() for v in default.false_values}:
            proposal.true_values = sorted(v for v in seen if v in truthy) or None
            proposal.false_values = sorted(v for v in seen if v not in truthy) or None
    return proposal


def _mapped_names(columns: dict[str, str | list[str]]) -> set[str]:
    out: set[str] = set()
    for v in columns.values():
        out.update([v] if isinstance(v, str) else v)
    return out


def feed_yaml(feed: FeedDefinition, sample_name: str | None = None) -> str:
    """The YAML a data officer reads and edits: fixed key order, quoted formats, a short header comment."""
    import yaml

    data: dict = {
        "council": feed.council, "dataset": feed.dataset, "version": feed.version, "format": feed.format,
    }
    if feed.format == "csv":
        data.update(encoding=feed.encoding, delimiter=feed.delimiter)
    if feed.format == "xlsx" and feed.sheet:
        data["sheet"] = feed.sheet
    data["date_format"] = feed.date_format
    if feed.date_formats:
        data["date_formats"] = dict(feed.date_formats)
    if "discount" in feed.columns:
        data["true_values"] = list(feed.true_values)
        data["false_values"] = list(feed.false_values)
    data["columns"] = dict(feed.columns)
    data["mandatory"] = list(feed.mandatory)
    head = f"# Feed {feed.feed_id}: written by 'councilmatch feeds add'"
    head += f" from sample {sample_name}\n" if sample_name else "\n"
    head += "# Check it with: councilmatch feeds check " + feed.feed_id + " (bump version when you change the mapping)\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_style=None, width=120)
