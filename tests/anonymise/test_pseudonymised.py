"""Pseudonymised store: atomic Parquet with fixed-size binary blooms and key id metadata."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anonymise import at_rest
from anonymise.errors import SchemaError, UnknownKeyError
from anonymise.keys import load_keyring, rotate_keys
from anonymise.minimise import minimise
from anonymise.pseudonymised import check_key_ids, file_metadata, read_pseudonymised, write_pseudonymised
from anonymise.tokens import pseudonymise
from councilmatch.contracts import BLOOM_BYTES, TOKEN_COLUMNS
from matching.minimisation import store_policy


@pytest.fixture
def frame(people, helpers, keyring):
    return pseudonymise(helpers.canonical_frame(people[:12]), keyring, "payroll_1-abc")


def test_write_read_round_trip(home, frame, helpers) -> None:
    path = write_pseudonymised(home, frame, store_policy(home))
    assert path == home.pseudonymised_path("payroll", helpers.CAMDEN, "payroll_1-abc")
    with pytest.raises(OSError):  # encrypted at rest: no schema without the keys
        pq.read_schema(path)
    schema = at_rest.read_table(path, home=home).schema
    for c, n in BLOOM_BYTES.items():
        assert schema.field(c).type == pa.binary(n)
    for c in TOKEN_COLUMNS:
        assert schema.field(c).type == pa.int64()
    meta = file_metadata(path)
    assert meta["key_id"] == "k1" and meta["schema_version"] == "1" and meta["rows"] == 12
    stored = minimise(frame, home, store_policy(home))  # the store keeps the minimised frame (test_minimise.py)
    pd.testing.assert_frame_equal(read_pseudonymised(path), stored)
    assert not list(path.parent.glob(".*.tmp"))  # no temporary left behind
    mtime_bytes = path.read_bytes()
    write_pseudonymised(home, frame, store_policy(home))  # idempotent
    pd.testing.assert_frame_equal(read_pseudonymised(path), stored)
    assert len(list(path.parent.iterdir())) == 1 and len(mtime_bytes) > 0


def test_contract_violations_are_refused(home, frame) -> None:
    with pytest.raises(SchemaError, match="extra \\['surname'\\]"):
        write_pseudonymised(home, frame.assign(surname="SMITH"), store_policy(home))
    with pytest.raises(SchemaError, match="missing \\['t_nino'\\]"):
        write_pseudonymised(home, frame.drop(columns=["t_nino"]), store_policy(home))
    with pytest.raises(SchemaError, match="one council"):
        mixed = frame.copy()
        mixed.loc[0, "council"] = "E09000012"
        write_pseudonymised(home, mixed, store_policy(home))
    with pytest.raises(SchemaError, match="int64"):
        write_pseudonymised(home, frame.assign(t_nino=frame["t_nino"].astype(str)), store_policy(home))
    short = frame.copy()
    short["bf_surname"] = [b"\x01" * 10] * len(short)
    with pytest.raises(SchemaError, match="does not fit"):
        write_pseudonymised(home, short, store_policy(home))
    assert not home.pseudonymised.exists() or not list(home.pseudonymised.rglob("*.parquet"))


def test_check_key_ids(home, frame, people, helpers) -> None:
    ring = load_keyring(home)
    assert check_key_ids([frame, frame], ring) == "k1"
    rotate_keys(home)
    ring2 = load_keyring(home)
    newer = pseudonymise(helpers.canonical_frame(people[:3]), ring2, "x2")
    with pytest.raises(UnknownKeyError, match="mixes key ids \\['k1', 'k2'\\]"):
        check_key_ids([frame, newer], ring2)
    with pytest.raises(UnknownKeyError, match="does not hold"):
        check_key_ids([frame.assign(key_id="k7")], ring2)
