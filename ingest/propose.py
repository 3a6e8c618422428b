"""Proposing a feed definition from a sample extract (used by ``councilmatch feeds add``).

Sniffs the encoding and delimiter, then scores every (canonical field, column) pair on
the **header** (a table of usual council header names, after dropping words such as
"Tenant" or "Claimant" that only say whose value it is; then fuzzy matching) **and the
values** (the share of the sample's non-blank values that fit the field: NINO pattern,
UK postcode, UPRN of 12 digits or fewer, parse rate of the best date format, letters
for names, ...). Everything here is a proposal a data officer confirms; a proposal is
*sure* only when a usual header name and the values agree. Anything else (a fuzzy
header, a header without fitting values, a column found by its values alone) is
proposed for the officer to check, and ``feeds add --yes`` never accepts it silently.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import jellyfish
import numpy as np
import pandas as pd

from councilmatch.contracts import DATASETS, DATE_FIELDS
from ingest import standardise as std
from ingest import validate as val
from ingest.feed import FeedDefinition
from ingest.read import CANDIDATE_DELIMITERS, read_extract

#: Header spellings seen in council systems, compared after lower-casing and
#: dropping everything but letters and digits (and again without the words in NOISE_WORDS).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "record_id": ("recordid", "id", "ref", "reference", "refno", "referenceno", "referencenumber", "accountref",
                  "accountreference", "accountnumber", "accountno", "accno", "acctno",
                  "tenancyref", "tenancyreference", "tenancyno", "tenancynumber", "tenancyid", "tenancyaccount",
                  "rentaccount", "rentaccountno", "rentaccountnumber", "rentref",
                  "claimref", "claimreference", "claimid", "claimno", "claimnumber", "ctrref", "ctrclaimref",
                  "badgenumber", "badgeno", "badgeid", "badgeref", "passnumber", "passno", "passid", "passref",
                  "cardnumber", "cardno", "smartcardnumber", "smartcardno", "freedompassno", "freedompassnumber",
                  "employeeid", "employeenumber", "employeeno", "employeeref", "empno", "empid", "payrollnumber",
                  "payrollno", "payrollid", "payrollref", "staffnumber", "staffno", "staffid", "personnelnumber",
                  "personnelno", "assignmentnumber", "assignmentno",
                  "applicationref", "applicationnumber", "applicationno", "applicationid", "housingregisterno",
                  "housingregisternumber", "hrref", "hrno", "registrationref",
                  "electorref", "electornumber", "electorno", "electorid", "electornumberfull", "pollingno",
                  "registrationnumber", "registrationno", "caseref", "casenumber", "caseno", "caseid",
                  "ctaxaccount", "ctaxaccountno", "ctaxref", "counciltaxaccount", "counciltaxaccountno",
                  "counciltaxref", "counciltaxreference", "ctaccount", "ctaccountno", "ctref", "liabilityref",
                  "deathregistrationno", "deathregno", "entryno", "entrynumber", "registerentry", "regno",
                  "registrationid", "customerref", "customerno", "customernumber", "personref", "personid", "clientref", "clientid"),
    "forenames": ("forenames", "forename", "firstname", "firstnames", "givenname", "givennames", "christianname",
                  "christiannames", "fname", "first", "given", "forenamesinitials"),
    "surname": ("surname", "lastname", "familyname", "sname", "lname", "last", "currentsurname"),
    "previous_surname": ("previoussurname", "maidenname", "maidensurname", "formersurname", "previousname",
                         "previouslastname", "priorsurname", "birthsurname", "surnameatbirth", "othersurname",
                         "formername", "namebeforemarriage"),
    "dob": ("dob", "dateofbirth", "birthdate", "datebirth", "bornon", "birthday", "dobddmmyyyy", "dateofbirthddmmyyyy"),
    "nino": ("nino", "ninumber", "nino", "nationalinsurancenumber", "nationalinsuranceno", "nationalinsurance", "ni",
             "niref", "nireference", "insuranceno", "nationalinsnumber", "nationalins", "nationalinsno"),
    "address_lines": ("address", "addressline1", "addressline2", "addressline3", "addressline4", "addressline5",
                      "address1", "address2", "address3", "address4", "address5", "addr", "addr1", "addr2", "addr3",
                      "addr4", "addrline1", "addrline2", "addrline3", "add1", "add2", "add3", "add4", "line1", "line2",
                      "line3", "line4", "street", "streetname", "road", "town", "city", "posttown", "propertyaddress",
                      "houseno", "housenumber", "housename", "flat", "flatno", "flatnumber", "building", "buildingname",
                      "buildingnumber", "locality", "fulladdress", "addressfull", "addressline", "postaladdress",
                      "homeaddress", "supplyaddress", "premises", "premise", "premisesaddress",
                      "dwelling", "dwellingaddress", "addresslines", "subbuilding",
                      "thoroughfare", "dependentlocality", "addresstext", "residentialaddress", "lastknownaddress",
                      "usualaddress", "addressofproperty", "propaddress", "addressstreet", "addresstown", "housenamenumber",
                      "housenumbername", "housenameno", "towncity", "citytown"),
    "postcode": ("postcode", "pcode", "pc", "postalcode", "zip", "zipcode", "postcodezip", "postcd"),
    "uprn": ("uprn", "propertyref", "propertyreference", "uniquepropertyreferencenumber", "uniquepropertyref",
             "blpuuprn", "lpiuprn", "propertyuprn", "uprnno", "uprnnumber"),
    "email": ("email", "emailaddress", "mail", "emailaddr", "contactemail", "eaddress"),
    "phone": ("phone", "telephone", "tel", "phonenumber", "phoneno", "mobile", "mobilenumber", "mobileno", "telno",
              "telephonenumber", "telephoneno", "contactnumber", "contactno", "contacttel", "hometel", "homephone",
              "mobilephone", "daytimephone", "daytimetel", "landline", "tel1", "phone1", "mob", "mobno"),
    "bank_sort_code": ("sortcode", "banksortcode", "sortcd"),
    "bank_account": ("bankaccount", "bankaccountnumber", "bankaccountno", "bankacno", "bankacc", "bankaccno",
                     "accountnumberbank"),
    "period_start": ("startdate", "periodstart", "fromdate", "datefrom", "tenancystart", "tenancystartdate",
                     "tenancycommencement", "commencementdate", "commencement", "validfrom", "issuedate",
                     "dateissued", "issued", "dateofissue", "registereddate", "dateregistered", "registrationdate",
                     "liabilitystart", "liabilitystartdate", "liabilityfrom", "effectivedate", "effectivefrom",
                     "applicationdate", "dateapplied", "dateofapplication", "startofemployment",
                     "employmentstart", "employmentstartdate", "datejoined", "joindate", "dateofjoining", "hiredate",
                     "datestarted", "started", "start", "claimstart", "claimstartdate", "awardstart", "awardstartdate",
                     "benefitstart", "occupationdate", "movein", "moveindate", "dateofentry", "entrydate",
                     "dateadded", "addeddate", "startofliability", "datefromliability", "passstart",
                     "badgestart", "badgeissuedate", "passissuedate"),
    "period_end": ("enddate", "periodend", "todate", "dateto", "tenancyend", "tenancyenddate", "terminationdate",
                   "dateterminated", "validto", "validuntil", "expirydate", "expiry", "expires", "expiresdate",
                   "dateofexpiry", "expirationdate", "liabilityend", "liabilityenddate", "liabilityto", "leavingdate",
                   "dateleft", "leftdate", "employmentend", "employmentenddate", "terminated", "end", "dateended",
                   "ended", "claimend", "claimenddate", "awardend", "awardenddate", "benefitend", "moveout",
                   "moveoutdate", "removaldate", "dateremoved", "datedeleted", "deleteddate", "deletiondate", "cessationdate", "endofliability", "passexpiry",
                   "badgeexpiry", "renewaldate"),
    "date_of_death": ("dateofdeath", "dod", "deathdate", "diedon", "dateofdeceased", "datedied", "deceaseddate"),
    "last_used": ("lastused", "lastuse", "lastuseddate", "datelastused", "lasttap", "lastjourney", "lastjourneydate",
                  "lasttapdate", "lastactivity", "lastactivitydate", "lasttransaction", "lastseen"),
    "discount": ("discount", "spd", "singlepersondiscount", "spdflag", "discountflag", "singleperson",
                 "spdapplied", "discountapplied", "25discount", "discounttype", "singleoccupier",
                 "singleoccupancy", "singleoccupancydiscount"),
    "amount": ("amount", "value", "grosspay", "pay", "salary", "award", "weeklyaward", "annualamount", "charge",
               "annualsalary", "basicpay", "basicsalary", "weeklyamount", "ctrawardweekly", "reductionamount",
               "ctramount", "weeklyctr", "weeklyctraward", "ctraward", "awardamount", "annualcharge", "liability", "amountdue", "netpay", "monthlypay"),
}
#: Words that say whose value a column holds, not what it is ("Tenant Forename(s)", "Claimant DOB").
NOISE_WORDS: frozenset[str] = frozenset({
    "tenant", "tenants", "claimant", "claimants", "applicant", "applicants", "employee", "employees", "staff",
    "elector", "electors", "holder", "holders", "customer", "customers", "resident", "residents", "main", "lead",
    "primary", "person", "persons", "property", "prop", "current", "contact", "liable", "party", "council",
    "the", "s", "member", "client", "payee", "deceased", "pass", "badge", "passholder", "badgeholder", "account",
    "accountholder", "subject", "individual", "householder", "occupier", "principal", "record", "registered",
    "taxpayer", "bill", "billpayer", "of", "no", "number", "details", "detail", "official", "legal", "full",
    "home", "cardholder", "card", "holders", "claimants", "applicants", "usual", "personal", "private",
})
#: Words that say the column is about *another* person (a partner, a landlord): never that person's field.
OTHER_PERSON_WORDS: frozenset[str] = frozenset({
    "partner", "partners", "spouse", "joint", "second", "2nd", "landlord", "agent", "nok", "kin", "carer",
    "appointee", "guarantor", "employer", "manager", "informant", "emergency", "child", "children", "dependant",
    "dependent", "relative", "parent", "guardian", "other", "additional", "previous", "prev", "former", "old",
    "correspondence", "forwarding", "billing", "mailing",
})
#: Fields whose "other person"/"previous" words are part of the name itself.
_OTHER_WORDS_ALLOWED: dict[str, frozenset[str]] = {
    "previous_surname": frozenset({"previous", "prev", "former", "old", "other"}),
    "address_lines": frozenset(),
}
#: Date formats tried on sample values, most common first (day-first wins a tie).
DATE_FORMAT_CANDIDATES: tuple[str, ...] = (
    "%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y", "%Y%m%d",
    "%d %b %Y", "%d-%b-%Y", "%d %B %Y", "%d-%b-%y", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
)
FUZZY_THRESHOLD = 0.9
#: A usual header name (after dropping NOISE_WORDS) scores at least this much.
SURE_HEADER = 0.95
#: Share of non-blank sample values that must fit the field for a usual header to be sure
#: (not higher: samples are small, and one malformed NINO in three must not undo a clear header) ...
FIT_SURE = 0.6
#: ... and for a fuzzy header to be proposed at all (to be checked).
FIT_FUZZY = 0.8
#: Share of values that must fit for a column to be proposed on its values alone (to be checked).
FIT_VALUES_ONLY = 0.95
#: Fields distinctive enough to be found by their values alone.
VALUE_ONLY_FIELDS: tuple[str, ...] = ("nino", "postcode", "email")
#: Sample values looked at per column.
SAMPLE_VALUES = 500
def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _words(name: str) -> list[str]:
    """'TenantForename(s)' / 'DATE_OF_BIRTH' / 'Addr1' -> lower-case words and numbers."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    spaced = re.sub(r"([A-Za-z])([0-9])", r"\1 \2", spaced)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


@dataclass
class FieldProposal:
    """One canonical field's proposed column(s), why, and what the sample's values say."""

    field: str
    columns: list[str]
    how: str
    #: sure: a usual header name and fitting values; otherwise the officer must check it
    sure: bool
    #: share of non-blank sample values that fit the field (None: no value to judge)
    fit: float | None
    blank: float
    #: masked sample values (letters -> x/X, digits -> 9): the shape, never the value
    samples: list[str] = field(default_factory=list)
    date_format: str | None = None

    @property
    def source(self) -> str | list[str]:
        return self.columns[0] if len(self.columns) == 1 else list(self.columns)


@dataclass
class Proposal:
    encoding: str
    delimiter: str
    header: list[str]
    columns: dict[str, str | list[str]]
    #: field -> how it was matched, e.g. "header 'dob'; values fit 100%" or "fuzzy header 0.91"
    how: dict[str, str] = field(default_factory=dict)
    date_format: str = "%Y-%m-%d"
    date_formats: dict[str, str] = field(default_factory=dict)
    true_values: list[str] | None = None
    false_values: list[str] | None = None
    unmapped: list[str] = field(default_factory=list)
    #: every proposed field with its evidence
    fields: dict[str, FieldProposal] = field(default_factory=dict)

    @property
    def to_check(self) -> list[str]:
        """Proposed fields the data officer must confirm (not sure)."""
        return [f for f, p in self.fields.items() if not p.sure]


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


def _clean_sample(values: pd.Series) -> pd.Series:
    """Up to SAMPLE_VALUES non-blank values from the top of the sample (a sample may be a whole extract)."""
    v = values.head(SAMPLE_VALUES * 20).dropna().astype(str).str.strip()
    return v[v != ""].head(SAMPLE_VALUES)


def date_parse_rate(values: pd.Series) -> tuple[str | None, float]:
    """The candidate format that parses the most sample values, and the share it parses."""
    v = _clean_sample(values)
    if v.empty:
        return None, 0.0
    best, best_n = None, 0
    for fmt in DATE_FORMAT_CANDIDATES:
        n = int(pd.to_datetime(v, format=fmt, errors="coerce").notna().sum())
        if n > best_n:
            best, best_n = fmt, n
    return best, best_n / len(v)


def guess_date_format(values: pd.Series) -> str | None:
    """The candidate format that parses the most sample values (None if none parses any)."""
    return date_parse_rate(values)[0]


_NAME_VALUE = r"^[A-Za-z][A-Za-z '\-.]{0,39}$"
_BOOL_WORDS = {"Y", "N", "YES", "NO", "TRUE", "FALSE", "T", "F", "1", "0", "SPD", "DISCOUNT", "NONE", "25%", "25",
               "SINGLE", "NIL", "X", ""}


def value_fit(values: pd.Series, fld: str) -> tuple[float | None, str | None]:
    """Share of the non-blank sample values that fit ``fld`` (None when there is none), and for a
    date field the format that parses them best."""
    v = _clean_sample(values)
    if v.empty:
        return None, None
    s = v.reset_index(drop=True).astype("string[pyarrow]")
    n = len(s)

    def share(mask: pd.Series | np.ndarray) -> float:
        return float(np.count_nonzero(np.asarray(mask, dtype=bool))) / n

    if fld in DATE_FIELDS:
        fmt, rate = date_parse_rate(s)
        if fmt and fld == "dob":  # a date of birth is in the last 120 years and not in the future
            parsed = pd.to_datetime(s, format=fmt, errors="coerce")
            today = pd.Timestamp(date.today())
            rate = share((parsed > today - pd.DateOffset(years=120)) & (parsed <= today))
        return rate, fmt
    if fld == "record_id":
        return (s.nunique() / n if n > 1 else 1.0), None
    if fld in ("forenames", "surname", "previous_surname"):
        folded = std.fold_diacritics(s).str.replace("'", "", regex=False).str.replace("’", "", regex=False)
        return share(val.matches(folded, _NAME_VALUE)), None
    if fld == "nino":
        return share(~val.invalid_nino(std.standardise_nino(s)) & std.standardise_nino(s).notna()), None
    if fld == "postcode":
        pc = std.standardise_postcode(s)
        return share(pc.notna() & ~val.invalid_postcode(pc)), None
    if fld == "uprn":
        return share(val.matches(s.str.strip(), r"^[0-9]{1,12}(?:\.0+)?$")), None
    if fld == "email":
        return share(val.matches(s.str.strip(), val.EMAIL_PATTERN)), None
    if fld == "phone":
        ph = std.standardise_phone(s)
        return share(ph.notna() & ~val.invalid_phone(ph) & ~val.matches(s, "[A-Za-z@]")), None
    if fld == "bank_sort_code":
        return share(val.matches(s.str.strip(), r"^[0-9]{2}[- ]?[0-9]{2}[- ]?[0-9]{2}$")), None
    if fld == "bank_account":
        return share(val.matches(s.str.strip(), r"^[0-9]{8}$")), None
    if fld == "amount":
        _, bad = val.parse_amount(s)
        return share(~bad.to_numpy()), None
    if fld == "discount":
        distinct = set(s.str.upper().str.strip().unique())
        return (1.0 if len(distinct) <= 6 and distinct <= _BOOL_WORDS else 0.0), None
    if fld == "address_lines":  # letters, not a postcode, not a date, not an email
        pc = std.standardise_postcode(s)
        looks = val.matches(s, "[A-Za-z]{2,}") & ~val.matches(s, "@")
        return share(looks & (pc.isna() | val.invalid_postcode(pc)).to_numpy()), None
    return 1.0, None


def header_score(name: str, fld: str) -> tuple[float, str]:
    """How well a header names ``fld``: 1.0 a usual name, 0.95 a usual name once words like 'Tenant'
    are dropped (0.85 for a bare 'Ref'/'ID'), else Jaro-Winkler similarity; 0 when the header is about
    another person ('Partner NINO', 'Previous Address')."""
    words = _words(name)
    other = OTHER_PERSON_WORDS - _OTHER_WORDS_ALLOWED.get(fld, frozenset())
    if any(w in other for w in words):
        return 0.0, "another person's"
    synonyms = (*SYNONYMS.get(fld, ()), _key(fld))
    full = _key(name)
    if full in synonyms:
        return 1.0, f"usual header {name!r}"
    stripped = "".join(w for w in words if w not in NOISE_WORDS)
    if stripped and stripped in synonyms:
        generic = stripped in ("id", "ref", "reference", "refno", "no", "number", "start", "end", "value", "first", "last")
        return (0.85 if generic else SURE_HEADER), f"usual header {name!r}"
    if not full:
        return 0.0, ""
    best = max(jellyfish.jaro_winkler_similarity(k, syn) for syn in synonyms for k in {full, stripped} if k)
    return best, f"fuzzy header {best:.2f}"


def mask_value(value: str) -> str:
    """The shape of a value (letters x/X, digits 9, punctuation kept), at most 24 characters."""
    masked = re.sub(r"[0-9]", "9", re.sub(r"[A-Z]", "X", re.sub(r"[a-z]", "x", str(value))))
    masked = re.sub(r"[^\x20-\x7e]", "x", masked)
    return masked[:24] + ("…" if len(masked) > 24 else "")


def _samples(values: pd.Series, k: int = 3) -> list[str]:
    return [mask_value(v) for v in _clean_sample(values).head(k)]


def _fit_text(fit: float | None) -> str:
    return "no values" if fit is None else f"values fit {100 * fit:.0f}%"


def match_columns(frame: pd.DataFrame, header: list[str], allowed: list[str]) -> dict[str, FieldProposal]:
    """Propose a column (several for address_lines) for each allowed field, scored on header and values."""
    fits: dict[tuple[str, str], tuple[float | None, str | None]] = {}

    def fit_of(col: str, fld: str) -> tuple[float | None, str | None]:
        if (col, fld) not in fits:
            fits[col, fld] = value_fit(frame[col], fld)
        return fits[col, fld]

    candidates: list[tuple[float, str, str, float, str]] = []  # (rank, field, column, header score, why)
    for col in header:
        for fld in allowed:
            hs, why = header_score(col, fld)
            if hs < 0.85 or (why.startswith("fuzzy") and hs < FUZZY_THRESHOLD):
                continue
            fit, _ = fit_of(col, fld)
            rank = hs * (0.5 + 0.5 * (fit if fit is not None else 0.5))
            candidates.append((rank, fld, col, hs, why))
    candidates.sort(key=lambda c: (-c[0], header.index(c[2]), allowed.index(c[1])))

    chosen: dict[str, FieldProposal] = {}
    used: set[str] = set()
    address: list[tuple[str, float, str]] = []
    for _rank, fld, col, hs, why in candidates:
        if col in used:
            continue
        fit, fmt = fit_of(col, fld)
        fits_well = fit is not None and fit >= (FIT_SURE if hs >= SURE_HEADER else FIT_FUZZY)
        if fld == "address_lines":
            if fit is None or fit >= 0.5 or hs >= SURE_HEADER:
                address.append((col, hs, why))
                used.add(col)
            continue
        if fld in chosen:
            continue
        if hs < SURE_HEADER and not fits_well:
            continue  # a fuzzy header whose values do not fit: not this field ('Property Addr 2' is no UPRN)
        sure = hs >= SURE_HEADER and fits_well
        how = f"{why}; {_fit_text(fit)}" + ("" if sure else "; check it")
        chosen[fld] = FieldProposal(fld, [col], how, sure, fit, 0.0, date_format=fmt)
        used.add(col)
    if address:
        cols = [c for c in header if c in {a[0] for a in address}]  # joined in the header's order
        sure = all(hs >= SURE_HEADER for _, hs, _ in address)
        fit = max((fit_of(c, "address_lines")[0] or 0.0) for c in cols)
        how = (f"usual headers, {len(cols)} columns joined in order" if len(cols) > 1 else address[0][2]) if sure else \
            "; ".join(why for _, _, why in address) + "; check it"
        chosen["address_lines"] = FieldProposal("address_lines", cols, how, sure, fit, 0.0)
    for fld in VALUE_ONLY_FIELDS:  # distinctive values under an unusual header: proposed, to be checked
        if fld not in allowed or fld in chosen:
            continue
        best = max(((fit_of(c, fld)[0] or 0.0, c) for c in header if c not in used), default=(0.0, ""))
        if best[0] >= FIT_VALUES_ONLY:
            chosen[fld] = FieldProposal(fld, [best[1]], f"values only ({_fit_text(best[0])}); check it", False, best[0], 0.0)
            used.add(best[1])
    for p in chosen.values():
        joined = frame[p.columns].astype("string").apply(lambda c: c.str.strip()).replace("", pd.NA)
        present = joined.notna().any(axis=1)
        p.blank = float(1 - present.mean()) if len(joined) else 0.0
        p.samples = _samples(frame[p.columns[0]])
    return {f: chosen[f] for f in allowed if f in chosen}


def match_headers(header: list[str], allowed: list[str]) -> tuple[dict[str, str | list[str]], dict[str, str]]:
    """Header-only proposal (no values to read): ``match_columns`` on an empty sample."""
    frame = pd.DataFrame({h: pd.Series([], dtype="string") for h in dict.fromkeys(header)})
    chosen = match_columns(frame, header, allowed)
    return {f: p.source for f, p in chosen.items()}, {f: p.how for f, p in chosen.items()}


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
    allowed = list(dict.fromkeys(["record_id", *spec.required, *spec.optional]))
    chosen = match_columns(raw.frame, raw.header, allowed)
    columns = {f: p.source for f, p in chosen.items()}
    formats = {f: p.date_format for f, p in chosen.items() if f in DATE_FIELDS and p.date_format}
    common = max(set(formats.values()), key=list(formats.values()).count) if formats else "%Y-%m-%d"
    proposal = Proposal(
        encoding=encoding, delimiter=delimiter, header=raw.header, columns=columns,
        how={f: p.how for f, p in chosen.items()}, fields=chosen,
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


def read_sample_column(sample: Path, proposal: Proposal, council: str, dataset: str, column: str) -> pd.Series:
    """One column of the sample, read as the proposal reads it (for a column the officer typed)."""
    suffix = Path(sample).suffix.lower()
    fmt = "xlsx" if suffix in (".xlsx", ".xlsm") else "parquet" if suffix == ".parquet" else "csv"
    probe = FeedDefinition(council=council, dataset=dataset, format=fmt, encoding=proposal.encoding,
                           delimiter=proposal.delimiter)
    return read_extract(probe, Path(sample)).frame[column]


def resolve_typed_columns(answer: str, header: list[str]) -> tuple[list[str], list[str]]:
    """Comma-separated column names typed at the prompt -> (the header's own spellings, names not in it).

    Matched ignoring case and repeated spaces, like the ingest does."""
    lookup = {" ".join(h.split()).casefold(): h for h in header}
    found, unknown = [], []
    for name in (a.strip() for a in answer.split(",")):
        if not name:
            continue
        hit = lookup.get(" ".join(name.split()).casefold())
        (found if hit else unknown).append(hit or name)
    return found, unknown


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
    if feed.quarantine_invalid:
        data["quarantine_invalid"] = list(feed.quarantine_invalid)
    head = f"# Feed {feed.feed_id}: written by 'councilmatch feeds add'"
    head += f" from sample {sample_name}\n" if sample_name else "\n"
    head += "# Check it with: councilmatch feeds check " + feed.feed_id + " (bump version when you change the mapping)\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_style=None, width=120)
