"""How each council's extract looks: column names, dates, encoding, delimiter, format.

Real boroughs run different systems, so every council gets a house style (its
column naming and date habits) and every (council, data set) pair a file flavour.
The choice depends only on the council's position and the data set, never on the
seed, so a council's feed definition is stable across runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from councilmatch.contracts import DATASETS
from councilmatch.councils import CENTRAL
from ingest.feed import FeedDefinition
from synthetic.places import COUNCIL_ORDER

DATASET_ORDER: tuple[str, ...] = tuple(d for d in DATASETS if d != "deceased")

_COLUMN_NAMES: dict[str, tuple[str, str, str, str]] = {
    "forenames": ("Forenames", "first_names", "FORENAME", "FirstNames"),
    "surname": ("Surname", "last_name", "SURNAME", "LastName"),
    "previous_surname": ("Previous Surname", "former_surname", "PREV_SURNAME", "MaidenName"),
    "dob": ("Date of Birth", "dob", "DOB", "BirthDate"),
    "nino": ("NI Number", "ni_number", "NINO", "NationalInsuranceNo"),
    "postcode": ("Post Code", "postcode", "PCODE", "PostCode"),
    "uprn": ("UPRN", "uprn", "UPRN", "PropertyUPRN"),
    "email": ("Email", "email_address", "EMAIL", "EmailAddress"),
    "phone": ("Telephone", "phone", "TEL_NO", "PhoneNumber"),
    "bank_sort_code": ("Sort Code", "sort_code", "SORT_CODE", "SortCode"),
    "bank_account": ("Bank Account Number", "bank_account_no", "BANK_ACC_NO", "BankAccountNumber"),
    "period_start": ("Start Date", "start_date", "DATE_FROM", "StartDate"),
    "period_end": ("End Date", "end_date", "DATE_TO", "EndDate"),
    "discount": ("Single Person Discount", "spd", "SPD_FLAG", "SinglePersonDiscount"),
    "amount": ("Amount", "amount", "AMOUNT", "Amount"),
    "last_used": ("Last Used", "last_used", "LAST_USED", "LastUsedDate"),
    "date_of_death": ("Date of Death", "date_of_death", "DOD", "DateOfDeath"),
}
_ADDRESS_COLUMNS: tuple[str | list[str], ...] = (["Address 1", "Address 2", "Town"], "address", ["ADDR1", "ADDR2", "ADDR3"], "FullAddress")
_RECORD_ID: dict[str, tuple[str, str, str, str]] = {
    "council_tax": ("Account Ref", "account_no", "CTAX_ACCOUNT", "AccountNumber"),
    "electoral_register": ("Elector Number", "elector_no", "ELECTOR_NO", "ElectorNumber"),
    "tenancy": ("Tenancy Ref", "tenancy_ref", "TENANCY_REF", "TenancyReference"),
    "waiting_list": ("Application No", "application_id", "APPLICATION_NO", "ApplicationNumber"),
    "payroll": ("Employee No", "employee_id", "EMP_NO", "EmployeeNumber"),
    "blue_badge": ("Badge Number", "badge_no", "BADGE_NO", "BadgeNumber"),
    "concessionary_travel": ("Pass Number", "pass_no", "PASS_NO", "PassNumber"),
    "council_tax_reduction": ("Claim Ref", "claim_id", "CLAIM_REF", "ClaimReference"),
}
#: Short record-id prefixes per data set.
RECORD_PREFIX: dict[str, str] = {
    "council_tax": "CT", "electoral_register": "ER", "tenancy": "TEN", "waiting_list": "HWL",
    "payroll": "EMP", "blue_badge": "BB", "concessionary_travel": "FP",
    "council_tax_reduction": "CTR", "deceased": "DR",
}
_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%b-%Y", "%d.%m.%Y")
_ENCODINGS = ("utf-8", "utf-8-sig", "cp1252")
_DELIMITERS = (",", ";", "|", "\t")
_BOOLEANS = ((["Y"], ["N"]), (["1"], ["0"]), (["YES"], ["NO"]), (["T"], ["F"]))
#: Special file formats: (council position, data set) -> format. Kept to small data sets for xlsx.
_SPECIAL_FORMATS: dict[tuple[int, str], str] = {
    (0, "blue_badge"): "xlsx", (1, "payroll"): "parquet",
    (6, "council_tax_reduction"): "parquet",
}
#: One payroll system exports US dates.
_US_DATES: set[tuple[int, str]] = {(1, "council_tax_reduction"), (3, "payroll")}


@dataclass(frozen=True)
class FeedStyle:
    """A feed definition plus the habits of the system that writes the extract."""

    feed: FeedDefinition
    upper_names: bool       # names written in capitals
    abbreviate_streets: bool  # "Rd", "St", "Ave"
    true_token: str
    false_token: str
    phone_style: int        # 0 "07700900123", 1 "07700 900123", 2 "+44 7700 900123"

    @property
    def extension(self) -> str:
        return {"csv": "csv", "xlsx": "xlsx", "parquet": "parquet"}[self.feed.format]


def _optional_fields(i: int, dataset: str) -> list[str]:
    keep = []
    for f in DATASETS[dataset].optional:
        if f == "nino" and i % 3 == 2:
            continue
        if f == "uprn" and i % 2 == 1:
            continue
        if f in ("email", "phone") and i % 2 == 0:
            continue
        if f == "dob" and ((dataset == "electoral_register" and i % 3 != 0) or (dataset == "council_tax" and i % 2 == 1)):
            continue
        if f in ("previous_surname", "last_used") and i % 2 == 1:
            continue
        keep.append(f)
    return keep


def feed_style(council_idx: int, dataset: str) -> FeedStyle:
    """The feed of the council at position ``council_idx`` (in BOROUGH_ORDER) for ``dataset``."""
    if dataset == "deceased":
        return _central_style()
    i, j = council_idx, DATASET_ORDER.index(dataset)
    s = i % 4
    spec = DATASETS[dataset]
    fields = list(spec.required) + [f for f in _optional_fields(i, dataset) if f not in spec.required]
    columns: dict[str, str | list[str]] = {"record_id": _RECORD_ID[dataset][s]}
    for f in fields:
        columns[f] = _ADDRESS_COLUMNS[s] if f == "address_lines" else _COLUMN_NAMES[f][s]
    fmt = _SPECIAL_FORMATS.get((i, dataset), "csv")
    house_format = _DATE_FORMATS[(i + (2 if dataset in ("payroll", "waiting_list") else 0)) % 4]
    date_format = "%m/%d/%Y" if (i, dataset) in _US_DATES else house_format
    date_formats = {"dob": "%Y-%m-%d"} if (dataset == "tenancy" and i % 3 == 0 and date_format != "%Y-%m-%d") else {}
    true_values, false_values = _BOOLEANS[s] if dataset == "council_tax" else (["Y", "YES", "1", "TRUE", "T"], ["N", "NO", "0", "FALSE", "F"])
    feed = FeedDefinition(
        council=COUNCIL_ORDER[i], dataset=dataset, version=1, format=fmt,
        encoding=_ENCODINGS[(i + j) % 3] if fmt == "csv" else "utf-8",
        delimiter=_DELIMITERS[(i + 2 * j) % 4] if fmt == "csv" else ",",
        date_format=date_format, date_formats=date_formats,
        true_values=list(true_values), false_values=list(false_values),
        columns=columns, mandatory=["record_id", *spec.required],
    )
    return FeedStyle(feed, upper_names=(s == 2), abbreviate_streets=(i % 3 == 1),
                     true_token=true_values[0], false_token=false_values[0], phone_style=i % 3)


def _central_style() -> FeedStyle:
    spec = DATASETS["deceased"]
    columns: dict[str, str | list[str]] = {
        "record_id": "REGISTRATION_ID", "forenames": "FORENAMES", "surname": "SURNAME",
        "previous_surname": "MAIDEN_SURNAME", "dob": "DATE_OF_BIRTH", "nino": "NINO",
        "date_of_death": "DATE_OF_DEATH", "address_lines": ["ADDRESS_LINE_1", "ADDRESS_LINE_2", "ADDRESS_LINE_3"],
        "postcode": "POSTCODE", "uprn": "UPRN",
    }
    feed = FeedDefinition(council=CENTRAL, dataset="deceased", format="csv", encoding="utf-8", delimiter="|",
                          date_format="%Y%m%d", columns=columns, mandatory=["record_id", *spec.required])
    return FeedStyle(feed, upper_names=True, abbreviate_streets=False, true_token="Y", false_token="N", phone_style=0)


def record_id_format(council_idx: int, dataset: str) -> tuple[str, int]:
    """(prefix, zero-pad width) for record ids: councils number their records differently."""
    if dataset == "deceased":
        return "DR", 9
    p = RECORD_PREFIX[dataset]
    return [(p, 7), (f"{p}-", 0), (f"{COUNCIL_ORDER[council_idx][-2:]}/{p}/", 6), ("", 0)][council_idx % 4]
