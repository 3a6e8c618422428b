"""Encryption at rest (anonymise.at_rest), attacked as a thief holding the files but not the KEK."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anonymise import at_rest
from anonymise.errors import AnonymiseError, KeyringError, TamperedError, WrongKEKError
from anonymise.keys import init_keys, rotate_keys
from councilmatch.home import Home



def new_kek() -> str:
    import base64
    import os

    return base64.b64encode(os.urandom(32)).decode()


def _table() -> pa.Table:
    return pa.table({"t_dob": pa.array([1234567890123, -987654321, 42], pa.int64()),
                     "period_start": pa.array(pd.to_datetime(["2021-03-04", "2022-05-06", None])),
                     "amount": [34567.89, 12.5, None], "record_id": ["ref:aa", "ref:bb", "ref:cc"],
                     "bf_surname": pa.array([b"\x01" * 8, b"\x02" * 8, b"\x00" * 8], pa.binary()),
                     "ed_surname": pa.array([b"\x03" * 8, b"\x04" * 8, b"\x00" * 8], pa.binary())})


def test_parquet_round_trip_with_columns_and_filters(home: Home) -> None:
    path = home.store / "x" / "t.parquet"
    at_rest.write_table(path, _table())
    assert at_rest.is_encrypted_parquet(path)
    assert at_rest.read_table(path).equals(_table())
    got = at_rest.read_table(path, columns=["record_id"], filters=[("t_dob", ">", 0)])
    assert got.column("record_id").to_pylist() == ["ref:aa", "ref:cc"]
    assert not list(path.parent.glob(".*.tmp")), "no temporary file is left behind"


def test_a_thief_cannot_open_the_parquet_without_keys(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    path = home.store / "t.parquet"
    at_rest.write_table(path, _table())
    raw = path.read_bytes()
    assert raw[:4] == b"PARE" and raw[-4:] == b"PARE", "the footer (schema, statistics) is encrypted too"
    for needle in (b"34567.89", b"2021-03-04", b"period_start", b"ref:aa", (1234567890123).to_bytes(8, "little")):
        assert needle not in raw
    with pytest.raises(OSError):  # plain pyarrow, no keys
        pq.read_table(path)
    with pytest.raises(OSError):
        pq.read_metadata(path)
    # the keys/ folder copied too, but another KEK: the data key does not unwrap
    monkeypatch.setenv("COUNCILMATCH_KEK", new_kek())
    with pytest.raises(WrongKEKError):
        at_rest.read_table(path)
    # no KEK at all
    monkeypatch.delenv("COUNCILMATCH_KEK")
    with pytest.raises(KeyringError):
        at_rest.read_table(path)


def test_tokens_and_condition_fields_need_the_keyring_not_only_the_store_key(home: Home) -> None:
    """The insider who holds the at-rest data key but not the keyring reads references and the
    salted Bloom filters, not a deterministic token or neighbourhood, a date or an amount.

    Attacked two ways: the hub's own reader without the keyring is refused, and a KMS that answers
    every key request with the at-rest data key (the one key this insider has) cannot open them."""
    path = home.store / "c.parquet"
    at_rest.write_table(path, _table())
    assert at_rest.read_table(path, columns=["bf_surname", "record_id"], keyring=False).num_rows == 3
    for column in ("t_dob", "ed_surname", "period_start", "amount"):
        with pytest.raises(at_rest.AtRestError, match="needs the keyring"):
            at_rest.read_table(path, columns=[column], keyring=False)
    assert at_rest.read_table(path).equals(_table()), "the link step, holding the keyring, reads everything"

    kid = at_rest.active_key_id(home)
    store_key = at_rest.data_key(home, kid)

    class StoreKeyForEverything(at_rest.HubKms):
        def _key(self, master_key_identifier: str) -> bytes:
            return store_key

    import pyarrow.parquet.encryption as pe

    factory = pe.CryptoFactory(lambda config: StoreKeyForEverything(config))
    props = factory.file_decryption_properties(at_rest._kms_config(home, at_rest.require_kek(home)),
                                               pe.DecryptionConfiguration())
    assert pq.read_table(path, columns=["bf_surname"], decryption_properties=props).num_rows == 3
    for column in ("t_dob", "ed_surname", "amount"):
        with pytest.raises(Exception):
            pq.read_table(path, columns=[column], decryption_properties=props)


def test_a_file_from_another_home_does_not_decrypt(home: Home, tmp_path) -> None:
    other = Home(tmp_path / "other")
    other.ensure()
    init_keys(other)  # same KEK (the test's), different data keys
    path = other.store / "t.parquet"
    at_rest.write_table(path, _table())
    stolen = home.store / "t.parquet"
    shutil.copy(path, stolen)
    with pytest.raises((OSError, AnonymiseError)):
        at_rest.read_table(stolen)


def test_plain_parquet_is_refused(home: Home) -> None:
    path = home.store / "planted.parquet"
    pq.write_table(_table(), path)
    with pytest.raises(AnonymiseError, match="not an encrypted councilmatch file"):
        at_rest.read_table(path)


def test_json_envelope_round_trip_tamper_and_swap(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = home.store / "runs" / "r1" / "a.json", home.store / "runs" / "r1" / "b.json"
    at_rest.write_json(a, {"amount": 34567.89, "date": "2021-03-04"})
    at_rest.write_json(b, {"other": 1})
    raw = a.read_bytes()
    assert b"34567" not in raw and b"2021-03-04" not in raw
    with pytest.raises(ValueError):
        json.loads(raw)
    assert at_rest.read_json(a) == {"amount": 34567.89, "date": "2021-03-04"}
    flipped = bytearray(raw)
    flipped[-5] ^= 1
    a.write_bytes(bytes(flipped))
    with pytest.raises(TamperedError):
        at_rest.read_json(a)
    a.write_bytes(b.read_bytes())  # b's (valid) envelope put in a's place
    with pytest.raises(TamperedError, match="moved or swapped"):
        at_rest.read_json(a)
    monkeypatch.setenv("COUNCILMATCH_KEK", new_kek())
    with pytest.raises(WrongKEKError):
        at_rest.read_json(b)


def test_data_keys_are_wrapped_under_the_kek_and_follow_rotation(home: Home) -> None:
    at_rest.write_json(home.store / "one.json", {"x": 1})
    assert (home.keys / "datakeys" / "at-rest.k1.enc").exists()
    from anonymise.crypto import read_header

    assert read_header((home.keys / "datakeys" / "at-rest.k1.enc").read_bytes())["kind"] == "at_rest_datakey"
    rotate_keys(home)
    at_rest.write_json(home.store / "two.json", {"x": 2})
    assert (home.keys / "datakeys" / "at-rest.k2.enc").exists()
    assert at_rest.read_json(home.store / "one.json") == {"x": 1}  # older files stay readable
    assert read_header((home.store / "two.json").read_bytes())["key_id"] == "k2"


def test_the_models_term_frequency_tables_are_sealed_under_the_keyring(home: Home) -> None:
    """A token's frequency is what names people: the saved TF tables' token and frequency
    columns are among those the store key alone cannot open."""
    from types import SimpleNamespace

    from councilmatch.contracts import KEYRING_SEALED, TF_COLUMNS
    from matching.incremental import tf_frame

    frame = tf_frame(SimpleNamespace(linkage=None, person=None))
    assert set(TF_COLUMNS) <= set(frame.columns) and set(TF_COLUMNS) <= KEYRING_SEALED
    path = home.store / "models" / "m.tf.parquet"
    at_rest.write_frame(path, frame.astype({"model": str, "comparison": str, "column": str}))
    assert at_rest.read_table(path, columns=["model"], keyring=False).num_rows == 0
    for column in TF_COLUMNS:
        with pytest.raises(at_rest.AtRestError, match="needs the keyring"):
            at_rest.read_table(path, columns=[column], keyring=False)
