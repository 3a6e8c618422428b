"""Small hand-made people, canonical frames and raw extracts for the anonymise tests."""

from __future__ import annotations

import base64
import os
import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from faker import Faker

from councilmatch.home import Home

CAMDEN, HACKNEY = "E09000007", "E09000012"

PAYROLL_YAML = """\
council: {council}
dataset: payroll
version: 1
format: csv
date_format: "%d/%m/%Y"
columns:
  record_id: Employee No
  forenames: Forenames
  surname: Surname
  dob: Date of Birth
  nino: NI Number
  address_lines: [Address 1, Town]
  postcode: Postcode
  email: Email
  phone: Phone
  bank_sort_code: Sort Code
  bank_account: Account
  period_start: Start Date
mandatory: [record_id, surname, dob, nino]
"""
PAYROLL_HEADER = ["Employee No", "Forenames", "Surname", "Date of Birth", "NI Number", "Address 1", "Town",
                  "Postcode", "Email", "Phone", "Sort Code", "Account", "Start Date"]


@dataclass
class Person:
    forenames: str
    surname: str
    dob: pd.Timestamp
    nino: str
    street: str
    postcode: str
    email: str
    phone: str
    sort_code: str
    account: str


def make_people(n: int, seed: int = 7) -> list[Person]:
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    letters = "ABCEGHJKLMNPRSTWXYZ"
    people = []
    for _ in range(n):
        first, last = fake.first_name(), fake.last_name()
        people.append(Person(
            forenames=first + (" " + fake.first_name() if rng.random() < 0.3 else ""),
            surname=last,
            dob=pd.Timestamp(fake.date_of_birth(minimum_age=18, maximum_age=90)),
            nino=rng.choice(letters) + rng.choice(letters) + f"{rng.randrange(10**6):06d}" + rng.choice("ABCD"),
            street=f"{rng.randrange(1, 300)} {fake.street_name()}",
            postcode=fake.postcode(),
            email=f"{first}.{last}{rng.randrange(100)}@example.org".lower(),
            phone="07700" + f"{rng.randrange(10**6):06d}",
            sort_code=f"{rng.randrange(10**6):06d}",
            account=f"{rng.randrange(10**7, 10**8):08d}",
        ))
    return people


def canonical_frame(people: list[Person], council: str = CAMDEN, dataset: str = "payroll",
                    prefix: str = "P") -> pd.DataFrame:
    """A standardised canonical frame, as ingest produces it (upper-case names, etc.)."""
    up = lambda s: s.upper().replace("'", "").replace("-", " ")  # noqa: E731
    return pd.DataFrame({
        "council": council, "dataset": dataset,
        "record_id": [f"{prefix}{i}" for i in range(len(people))],
        "forenames": [up(p.forenames) for p in people],
        "first_name": [up(p.forenames).split()[0] for p in people],
        "middle_names": [" ".join(up(p.forenames).split()[1:]) or None for p in people],
        "surname": [up(p.surname) for p in people],
        "previous_surname": None,
        "dob": pd.to_datetime([p.dob for p in people]),
        "nino": [p.nino for p in people],
        "address_lines": [up(p.street) + " LONDON" for p in people],
        "postcode": [p.postcode for p in people],
        "uprn": None,
        "email": [p.email for p in people],
        "phone": [p.phone for p in people],
        "bank_sort_code": [p.sort_code for p in people],
        "bank_account": [p.account for p in people],
        "period_start": pd.Timestamp("2024-04-01"),
        "period_end": pd.NaT, "date_of_death": pd.NaT, "last_used": pd.NaT,
        "discount": pd.Series([pd.NA] * len(people), dtype="boolean"),
        "amount": 1000.0,
    })


def write_payroll(home: Home, council: str, people: list[Person], name: str = "payroll_20261125.csv",
                  prefix: str = "E", extra_rows: list[list[str]] | None = None) -> tuple[Path, Path]:
    """A raw payroll CSV in landing/ and its feed YAML in feeds/; returns (feed, extract)."""
    feed = home.feeds / council / "payroll.yaml"
    feed.parent.mkdir(parents=True, exist_ok=True)
    feed.write_text(PAYROLL_YAML.format(council=council))
    rows = [[f"{prefix}{i}", p.forenames, p.surname, p.dob.strftime("%d/%m/%Y"), p.nino, p.street, "London",
             p.postcode, p.email, p.phone, p.sort_code, p.account, "01/04/2024"] for i, p in enumerate(people)]
    rows += extra_rows or []
    frame = pd.DataFrame(rows, columns=PAYROLL_HEADER)
    extract = home.landing / council / "payroll" / name
    extract.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(extract, index=False)
    return feed, extract


def new_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def _kek_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test gets its own KEK from the environment and no Airflow lookup."""
    kek = new_kek()
    monkeypatch.setenv("COUNCILMATCH_KEK", kek)
    monkeypatch.delenv("AIRFLOW_CONN_COUNCILMATCH_KEK", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    return kek


@pytest.fixture
def home(tmp_path: Path) -> Home:
    from anonymise.keys import init_keys

    h = Home(tmp_path / "home").ensure()
    init_keys(h)
    return h


@pytest.fixture
def keyring(home: Home):
    from anonymise.keys import load_keyring

    return load_keyring(home)


@pytest.fixture(scope="session")
def people() -> list[Person]:
    return make_people(40)


@pytest.fixture(scope="session")
def helpers():
    """The helpers above (test modules cannot import conftest under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(
        make_people=make_people, canonical_frame=canonical_frame, write_payroll=write_payroll,
        new_kek=new_kek, CAMDEN=CAMDEN, HACKNEY=HACKNEY,
    )
