"""Vault (audited re-identification), encrypted quarantine and raw-extract disposal."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from anonymise.errors import AnonymiseError, TamperedError
from anonymise.keys import load_keyring, rotate_keys
from anonymise.quarantine import dispose_raw_extract, read_archived, read_quarantine, write_quarantine
from anonymise.vault import RecordNotFound, Vault


@pytest.fixture
def canonical(people, helpers):
    return helpers.canonical_frame(people[:10], council=helpers.CAMDEN)


def test_store_and_reidentify_with_audit(home, keyring, canonical, helpers) -> None:
    vault = Vault(home, keyring)
    path = vault.store(helpers.CAMDEN, "x1", canonical)
    assert path.is_relative_to(home.vault / helpers.CAMDEN)
    raw = path.read_bytes()
    for value in (canonical.loc[3, "surname"], canonical.loc[3, "nino"], canonical.loc[3, "email"]):
        assert value.encode() not in raw
    record = vault.reidentify(helpers.CAMDEN, "P3", actor="alice", reason="case 17")
    assert record["surname"] == canonical.loc[3, "surname"]
    assert record["nino"] == canonical.loc[3, "nino"]
    assert record["dob"] == canonical.loc[3, "dob"].strftime("%Y-%m-%d")
    assert record["uprn"] is None and record["extract_id"] == "x1"
    lines = (home.vault / "audit.log").read_text().splitlines()
    entry = json.loads(lines[-1])
    assert entry["actor"] == "alice" and entry["council"] == helpers.CAMDEN and entry["outcome"] == "returned"
    assert "P3" not in lines[-1] and canonical.loc[3, "surname"] not in lines[-1]
    assert entry["record_hash"] and entry["time"]


def test_reidentify_returns_newest_and_store_is_idempotent(home, keyring, canonical, helpers) -> None:
    vault = Vault(home, keyring)
    first = vault.store(helpers.CAMDEN, "x1", canonical)
    blob = first.read_bytes()
    assert vault.store(helpers.CAMDEN, "x1", canonical) == first and first.read_bytes() == blob
    moved = canonical.copy()
    moved.loc[3, "postcode"] = "N1 9GU"
    vault.store(helpers.CAMDEN, "x2", moved)
    assert vault.reidentify(helpers.CAMDEN, "P3", "bob", "check")["postcode"] == "N1 9GU"


def test_unknown_record_is_audited_and_raises(home, keyring, canonical, helpers) -> None:
    vault = Vault(home, keyring)
    vault.store(helpers.CAMDEN, "x1", canonical)
    with pytest.raises(RecordNotFound):
        vault.reidentify(helpers.CAMDEN, "NOPE", "carol", "typo")
    with pytest.raises(RecordNotFound):  # another council cannot read Camden's record
        vault.reidentify(helpers.HACKNEY, "P3", "carol", "curious")
    entries = [json.loads(x) for x in (home.vault / "audit.log").read_text().splitlines()]
    assert [e["outcome"] for e in entries] == ["RecordNotFound", "RecordNotFound"]
    with pytest.raises(AnonymiseError, match="actor and a reason"):
        vault.reidentify(helpers.CAMDEN, "P3", "", "")


def test_tampered_vault_ciphertext_is_detected(home, keyring, canonical, helpers) -> None:
    vault = Vault(home, keyring)
    path = vault.store(helpers.CAMDEN, "x1", canonical)
    blob = bytearray(path.read_bytes())
    blob[-40] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(TamperedError, match="authentication failed"):
        vault.reidentify(helpers.CAMDEN, "P3", "alice", "case")
    assert json.loads((home.vault / "audit.log").read_text().splitlines()[-1])["outcome"] == "TamperedError"


def test_tampered_header_is_detected(home, keyring, canonical, helpers) -> None:
    vault = Vault(home, keyring)
    path = vault.store(helpers.CAMDEN, "x1", canonical)
    path.write_bytes(path.read_bytes().replace(b'"extract_id":"x1"', b'"extract_id":"x9"'))
    with pytest.raises(TamperedError):
        vault.reidentify(helpers.CAMDEN, "P3", "alice", "case")


def test_rotation_keeps_old_vault_data_readable(home, keyring, canonical, helpers) -> None:
    Vault(home, keyring).store(helpers.CAMDEN, "x1", canonical)
    rotate_keys(home)
    ring2 = load_keyring(home)
    vault2 = Vault(home, ring2)
    assert vault2.reidentify(helpers.CAMDEN, "P2", "alice", "after rotation")["surname"] == canonical.loc[2, "surname"]
    later = canonical.copy()
    later["record_id"] = [f"Q{i}" for i in range(len(later))]
    vault2.store(helpers.CAMDEN, "x2", later)
    assert (home.vault / helpers.CAMDEN / "datakey.k2.enc").exists()
    assert vault2.reidentify(helpers.CAMDEN, "Q2", "alice", "new key")["surname"] == canonical.loc[2, "surname"]
    assert vault2.reidentify(helpers.CAMDEN, "P2", "alice", "old key")["extract_id"] == "x1"


def test_path_traversal_refused(home, keyring, canonical) -> None:
    with pytest.raises(AnonymiseError, match="not a safe name"):
        Vault(home, keyring).store("../x", "x1", canonical.assign(council="../x"))


def test_quarantine_round_trip_and_tamper(home, keyring, helpers) -> None:
    q = pd.DataFrame({"row_number": [2, 5], "record_id": ["T9", None],
                      "reasons": ["dob: not a date", "nino: invalid format"],
                      "raw": ['{"Surname":"Zebedee","NI":"XX"}', '{"Surname":"Quill","dob":3}']})
    path = write_quarantine(home, keyring, helpers.CAMDEN, "tenancy", "x1", q)
    assert path == home.quarantine / helpers.CAMDEN / "tenancy" / "x1.enc"
    assert b"Zebedee" not in path.read_bytes()
    back = read_quarantine(home, keyring, helpers.CAMDEN, "tenancy", "x1")
    pd.testing.assert_frame_equal(back, q)
    mixed = pd.DataFrame({"raw": [1, "two", 3.5]})  # raw cells of mixed types are kept as text
    write_quarantine(home, keyring, helpers.CAMDEN, "tenancy", "x2", mixed)
    assert list(read_quarantine(home, keyring, helpers.CAMDEN, "tenancy", "x2")["raw"]) == ["1", "two", "3.5"]
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(TamperedError):
        read_quarantine(home, keyring, helpers.CAMDEN, "tenancy", "x1")


@pytest.mark.parametrize("policy", ["archive", "delete", "keep"])
def test_dispose_raw_extract(home, keyring, helpers, policy) -> None:
    raw = home.landing / helpers.CAMDEN / "tenancy" / "tenancy_20261125.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("Ref,Surname\nT1,Zebedee\n")
    result = dispose_raw_extract(home, keyring, raw, policy)
    if policy == "keep":
        assert result == raw and raw.exists()
    elif policy == "delete":
        assert result is None and not raw.exists()
    else:
        assert not raw.exists()
        assert result == home.archive / helpers.CAMDEN / "tenancy" / "tenancy_20261125.csv.enc"
        assert b"Zebedee" not in result.read_bytes()
        assert read_archived(home, keyring, result) == b"Ref,Surname\nT1,Zebedee\n"
        assert dispose_raw_extract(home, keyring, raw, policy) == result  # re-run: already archived


def test_dispose_unknown_policy(home, keyring, tmp_path) -> None:
    with pytest.raises(AnonymiseError, match="unknown raw-extract retention policy"):
        dispose_raw_extract(home, keyring, tmp_path / "x.csv", "shred")  # type: ignore[arg-type]


def test_retired_key_makes_its_vault_data_unreadable(home, keyring, canonical, helpers) -> None:
    from anonymise.errors import KeyringError
    from anonymise.keys import retire_key

    Vault(home, keyring).store(helpers.CAMDEN, "x1", canonical)
    with pytest.raises(KeyringError, match="active key"):
        retire_key(home, "k1")
    rotate_keys(home)
    assert retire_key(home, "k1") == ("k2",)
    with pytest.raises(RecordNotFound):  # its index is skipped: the data is gone for good
        Vault(home, load_keyring(home)).reidentify(helpers.CAMDEN, "P3", "alice", "after retention")


def test_cli_vault_reidentify(home, keyring, canonical, helpers) -> None:
    from typer.testing import CliRunner

    from orchestrate.cli import app

    Vault(home, keyring).store(helpers.CAMDEN, "x1", canonical)
    args = ["vault", "reidentify", "--council", helpers.CAMDEN, "--actor", "alice", "--reason", "case 9",
            "--home", str(home.root)]
    ok = CliRunner().invoke(app, args + ["--record-id", "P4"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["surname"] == canonical.loc[4, "surname"]
    missing = CliRunner().invoke(app, args + ["--record-id", "NOPE"])
    assert missing.exit_code == 1 and "no vaulted record" in missing.output


def test_references_made_once_per_ingest_are_checked_against_their_rows(home, keyring, canonical, helpers) -> None:
    """Ingest hands the vault the store's references (made when the extract was minimised)
    instead of making them again: the index is the same, and references out of row order or of
    another length are refused, never filed against the wrong records."""
    import pyarrow as pa

    from anonymise.minimise import record_refs, ref_key

    refs = record_refs(ref_key(home), canonical["council"], canonical["record_id"]).tolist()
    vault, dataset = Vault(home, keyring), str(canonical["dataset"].iloc[0])
    vault.store(helpers.CAMDEN, "x1", canonical)
    made = vault.read_index(helpers.CAMDEN, dataset, "x1")
    vault.store(helpers.CAMDEN, "x2", canonical, refs=pa.array(refs, pa.string()))
    given = vault.read_index(helpers.CAMDEN, dataset, "x2")
    assert given.equals(made) and given.column("ref").to_pylist() == refs
    assert vault.reidentify(helpers.CAMDEN, "P3", actor="alice", reason="case 17")["extract_id"] == "x2"
    for wrong in (refs[::-1], refs[:-1]):
        with pytest.raises(AnonymiseError):
            vault.store(helpers.CAMDEN, "x3", canonical, refs=pa.array(wrong, pa.string()))
