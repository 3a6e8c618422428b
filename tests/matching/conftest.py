"""Small pseudonymised frames built by hand: tokens are keyed hashes, Bloom filters keyed bigrams.

Independent of anonymise.tokens on purpose, so the linkage tests pin the
linkage and not the pseudonymiser.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from councilmatch.contracts import BLOOM_BYTES, EDIT_BYTES, NON_IDENTIFYING, TOKEN_COLUMNS

KEY = b"test-key"


def token(purpose: str, value) -> int:
    if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
        return 0
    d = hmac.digest(KEY + purpose.encode(), str(value).encode(), "sha256")
    return int.from_bytes(d[:8], "big", signed=True) or 1


def bloom(value, column: str) -> bytes:
    """The project's keyed Bloom filter encoding (anonymise.encodings) of one value."""
    from anonymise.encodings import bloom_encode
    from anonymise.tokens import BLOOM_SETTINGS

    settings = BLOOM_SETTINGS[column]
    if not value:
        return bytes(settings.nbytes)
    return bloom_encode(pd.Series([value]), KEY + column.encode(), settings)[0].tobytes()


def edits(value, column: str) -> bytes:
    """The project's keyed one-edit neighbourhood (anonymise.encodings) of one value."""
    from anonymise.encodings import edit_neighbourhoods

    nbytes = EDIT_BYTES[column]
    if not value:
        return bytes(nbytes)
    return edit_neighbourhoods(pd.Series([value]), KEY + column.encode(), nbytes // 4)[0].tobytes()


def nicknames(value, nickname_of, column: str = "nk_forename"):
    """A keyed nickname neighbourhood (anonymise.encodings.neighbourhoods) of one forename, with
    the full name the record says it is a nickname of (the project's list is not consulted)."""
    from anonymise.encodings import neighbourhoods

    if not value:
        return bytes(64)
    around = [value] + ([nickname_of] if nickname_of and nickname_of != value else [])
    return neighbourhoods(pd.Series([value]), KEY + column.encode(), 16, lambda _w: around)[0].tobytes()


def _phon(s):
    return s[:1] + "".join(c for c in s[1:] if c not in "AEIOUHWY")[:3] if s else None


def _derived(column: str, surname: str | None) -> str | None:
    """A surname-derived value exactly as anonymise.variants makes it."""
    from anonymise.variants import VARIANTS

    value = VARIANTS[column].derive(pd.DataFrame({"surname": pd.Series([surname], dtype="string")})).iloc[0]
    return None if pd.isna(value) else str(value)


def pseudo(records: list[dict], dataset: str = "tenancy", council: str = "E09000001") -> pd.DataFrame:
    """Records with clear keys (forename, surname, dob 'YYYY-MM-DD', nino, address, postcode,
    uprn, prev_surname, nickname, plus period_start/...) -> a pseudonymised frame."""
    rows = []
    for i, r in enumerate(records):
        dob = r.get("dob")
        fn, sn = r.get("forename"), r.get("surname")
        pc = r.get("postcode")
        addr = r.get("address")
        row = {
            "council": r.get("council", council), "dataset": r.get("dataset", dataset),
            "record_id": str(r.get("record_id", f"R{i:05d}")), "extract_id": "x1", "key_id": "k1",
            "t_nino": token("nino", r.get("nino")),
            "t_dob": token("dob", dob),
            "t_dob_unordered": token("dob_unordered", dob and dob[:4] + "".join(sorted([dob[5:7], dob[8:10]]))),
            "t_yob": token("yob", dob and dob[:4]),
            "t_yob_jan1": token("yob", dob[:4] if dob and dob[5:] == "01-01" else None),
            "t_dob_ym": token("dob_ym", dob and dob[:7]),
            "t_dob_md": token("dob_md", dob and dob[5:]),
            "t_dob_yd": token("dob_yd", dob and dob[:4] + dob[8:]),
            "t_forename": token("name", fn), "t_surname": token("name", sn),
            "t_prev_surname": token("name", r.get("prev_surname")),
            "t_surname_first": token("name", _derived("t_surname_first", sn)),
            "t_surname_last": token("name", _derived("t_surname_last", sn)),
            "t_forename_canon": token("forename_canon", r.get("nickname_of", fn)),
            "t_forename_phon": token("name_phonetic", _phon(fn)),
            "t_surname_phon": token("name_phonetic", _phon(sn)),
            "t_initial": token("name", fn and fn[0]),
            "t_name_sorted": token("name_sorted", fn and sn and " ".join(sorted([fn, sn]))),
            "t_postcode": token("postcode", pc),
            "t_pc_sector": token("postcode_sector", pc and pc[:-2]),
            "t_pc_district": token("postcode_district", pc and pc.split(" ")[0]),
            "t_premise": token("premise", addr and pc and addr.split(" ")[0] + pc),
            "t_address": token("address", addr and f"{addr} {pc}"),
            "t_uprn": token("uprn", r.get("uprn")),
            "t_email": 0, "t_phone": 0, "t_bank": token("bank", r.get("bank")),
            "bf_forenames": bloom(fn, "bf_forenames"),
            "bf_surname": bloom(sn, "bf_surname"),
            "bf_address": bloom(addr and f"{addr} {pc}", "bf_address"),
            "ed_nino": edits(r.get("nino"), "ed_nino"),
            "nk_forename": nicknames(fn, r.get("nickname_of")),
        }
        for f in NON_IDENTIFYING:
            row[f] = r.get(f)
        rows.append(row)
    frame = pd.DataFrame(rows)
    for c in TOKEN_COLUMNS:
        frame[c] = frame[c].astype("int64")
    for c in ("period_start", "period_end", "date_of_death", "last_used"):
        frame[c] = pd.to_datetime(frame[c])
    return frame


@pytest.fixture
def make_frame():
    return pseudo


FORENAMES = ["JOHN", "MARY", "AHMED", "FATIMA", "OLIVER", "AMELIA", "GEORGE", "ISLA", "NOAH", "AVA",
             "MOHAMMED", "LEO", "OSCAR", "FREYA", "HARRY", "ZARA", "CHLOE", "JACK", "PRIYA", "KWAME"]
SURNAMES = ["SMITH", "JONES", "KHAN", "PATEL", "TAYLOR", "BROWN", "WILLIAMS", "OKAFOR", "NOWAK", "EVANS",
            "WALKER", "WRIGHT", "HUGHES", "GREEN", "HALL", "WOOD", "MURPHY", "ALI", "CLARKE", "LEWIS"] + \
           [f"SUR{c1}{c2}NAME" for c1 in "ABCDEFGH" for c2 in "KLMNPRST"]


def _typo(s: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(1, max(len(s) - 1, 2)))
    return s[:i] + s[i + 1:] if len(s) > 4 else s


def tenancy_population(n_people: int = 600, n_double: int = 40, seed: int = 1) -> tuple[pd.DataFrame, set]:
    """Tenancies in three councils; ``n_double`` people hold two (in different councils), some
    with a typo or missing field on the second. Returns (frame, true (left, right) record id pairs)."""
    rng = np.random.default_rng(seed)
    councils = ["E09000001", "E09000002", "E09000003"]
    people = []
    for p in range(n_people):
        people.append({
            "forename": FORENAMES[rng.integers(len(FORENAMES))],
            "surname": SURNAMES[rng.integers(len(SURNAMES))],
            "dob": f"{rng.integers(1940, 2000)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}",
            "nino": f"AB{p:06d}C" if rng.random() < 0.5 else None,
            "address": f"{rng.integers(1, 200)} {SURNAMES[rng.integers(20)]} ROAD",
            "postcode": f"E{rng.integers(1, 20)} {rng.integers(1, 9)}{'ABCD'[rng.integers(4)]}{'XYZ'[rng.integers(3)]}",
        })
    records, truth = [], set()
    for p, person in enumerate(people):
        c = int(rng.integers(3))
        records.append({**person, "council": councils[c], "record_id": f"T{p:05d}",
                        "period_start": "2020-01-01", "period_end": None})
        if p < n_double:
            second = dict(person)
            kind = p % 4
            if kind == 1:
                second["surname"] = _typo(second["surname"], rng)
            elif kind == 2:
                second["nino"] = None
                second["address"] = f"{rng.integers(1, 200)} OTHER STREET"
                second["postcode"] = "N1 1AA"
            elif kind == 3:
                d = second["dob"]
                second["dob"] = d[:5] + d[8:10] + "-" + d[5:7] if int(d[8:10]) <= 12 else d
            records.append({**second, "council": councils[(c + 1) % 3], "record_id": f"U{p:05d}",
                            "period_start": "2021-06-01", "period_end": None})
            truth.add(tuple(sorted([(councils[c], f"T{p:05d}"), (councils[(c + 1) % 3], f"U{p:05d}")])))
    return pseudo(records, "tenancy"), truth


@pytest.fixture(autouse=True)
def _kek_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is encrypted at rest: every test gets its own KEK from the environment."""
    import base64
    import os

    monkeypatch.setenv("COUNCILMATCH_KEK", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.delenv("AIRFLOW_CONN_COUNCILMATCH_KEK", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)


def write_extract(home, frame: pd.DataFrame, extract_id: str = "20260101T000000-x") -> None:
    """Hand-made frames go into the (encrypted) store as they are: these tests pin the linkage."""
    from anonymise import at_rest
    from anonymise.keys import ensure_keyring

    ensure_keyring(home)
    for (ds, council), part in frame.groupby(["dataset", "council"]):
        path = home.pseudonymised_path(ds, council, extract_id)
        at_rest.write_frame(path, part.assign(extract_id=extract_id), home)


@pytest.fixture
def tenancy_home(tmp_path):
    from councilmatch.home import Home

    home = Home.resolve(tmp_path / "home")
    frame, truth = tenancy_population()
    write_extract(home, frame)
    return home, truth


@pytest.fixture
def put_extract():
    return write_extract
