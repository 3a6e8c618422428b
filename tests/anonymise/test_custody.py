"""Key custody (anonymise.custody): KEK change and re-pseudonymisation, unit level.

The end-to-end versions (CLI, a full night before and after) are in tests/e2e/test_thief.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from anonymise import at_rest
from anonymise.custody import change_kek, repseudonymise
from anonymise.errors import AnonymiseError, WrongKEKError
from anonymise.kek import KEK, decode_kek
from anonymise.keys import load_keyring, rotate_keys
from anonymise.pseudonymised import file_metadata, read_pseudonymised
from councilmatch.home import Home
from matching.minimisation import store_policy


def _kek(text: str) -> KEK:
    return KEK(decode_kek(text, "test"), "test")


def test_change_kek_rewraps_and_can_be_resumed(home: Home, helpers, monkeypatch: pytest.MonkeyPatch) -> None:
    at_rest.write_json(home.store / "runs" / "r" / "x.json", {"x": 1})
    at_rest.data_key(home, "refs", create=True)
    new = helpers.new_kek()
    with pytest.raises(AnonymiseError, match="current one"):
        change_kek(home, _kek(os.environ["COUNCILMATCH_KEK"]))
    result = change_kek(home, _kek(new))
    assert sorted(result["rewrapped"]) == ["keys/datakeys/at-rest.k1.enc", "keys/datakeys/at-rest.refs.enc",
                                           "keys/keyring.json.enc"]
    again = change_kek(home, _kek(new))  # interrupted and re-run: files under the new KEK are left alone
    assert again["rewrapped"] == []
    at_rest.clear_caches()
    with pytest.raises(WrongKEKError):
        at_rest.read_json(home.store / "runs" / "r" / "x.json")
    monkeypatch.setenv("COUNCILMATCH_KEK", new)
    assert at_rest.read_json(home.store / "runs" / "r" / "x.json") == {"x": 1}
    assert load_keyring(home).key_id == "k1"
    monkeypatch.setenv("COUNCILMATCH_KEK", helpers.new_kek())  # a KEK that opens nothing here
    with pytest.raises(WrongKEKError, match="neither"):
        change_kek(home, _kek(helpers.new_kek()))
    monkeypatch.setenv("COUNCILMATCH_KEK", new)
    assert load_keyring(home).key_id == "k1", "a refused change leaves the home as it was"


def _ingest(home: Home, helpers, people, name: str) -> dict:
    from orchestrate.pipeline import ingest_feed

    helpers.write_payroll(home, helpers.CAMDEN, people, name=name)
    out = ingest_feed(home, f"{helpers.CAMDEN}/payroll", "r1")
    assert out["status"] == "ingested", out
    return out


def test_repseudonymise_remakes_the_store_from_the_archive(home: Home, helpers, people) -> None:
    from anonymise.vault import Vault

    old = _ingest(home, helpers, people[:10], "payroll_20261101.csv")
    new = _ingest(home, helpers, people[:20], "payroll_20261125.csv")
    before = read_pseudonymised(Path(new["path"]), home)
    (home.archive / helpers.CAMDEN / "payroll" / "payroll_20261101.csv.enc").unlink()  # retention purged it
    rotate_keys(home)
    results = {r["extract_id"]: r["status"] for r in repseudonymise(home, store_policy(home))}
    assert results == {old["extract_id"]: "superseded", new["extract_id"]: "repseudonymised"}
    path = Path(new["path"])
    assert file_metadata(path, home)["key_id"] == "k2"
    after = read_pseudonymised(path, home)
    assert (after["t_nino"] != before["t_nino"]).all(), "tokens are re-made under the new key"
    assert after["record_id"].tolist() == before["record_id"].tolist(), "record references do not rotate"
    record = Vault(home, load_keyring(home)).reidentify(helpers.CAMDEN, after["record_id"].iloc[0], "inv", "test")
    assert record["surname"]
    assert repseudonymise(home, store_policy(home)) == [{"feed_id": f"{helpers.CAMDEN}/payroll", "extract_id": old["extract_id"],
                                     "status": "superseded"}]


def test_an_extract_of_an_older_encoding_is_remade_on_the_next_night(home: Home, helpers, people) -> None:
    """After an upgrade that changes how tokens or filters are made (a filter's settings, a new
    column), stored extracts of the old encoding are re-made from the archive by the next night,
    under the same key: filters of two encodings do not compare."""
    from anonymise.custody import stale_manifests
    from anonymise.manifest import read_manifests, write_manifest
    from anonymise.tokens import ENCODING
    from orchestrate.pipeline import ingest_feed

    feed = f"{helpers.CAMDEN}/payroll"
    first = _ingest(home, helpers, people[:20], "payroll_20261125.csv")
    keyring = load_keyring(home)
    assert stale_manifests(home, keyring.key_id, feed) == []
    (manifest,) = read_manifests(home, feed)
    assert manifest["encoding"] == ENCODING
    write_manifest(home, {k: v for k, v in manifest.items() if k != "encoding"})  # as the version before made it
    before = Path(first["path"]).stat().st_mtime_ns
    assert [m["extract_id"] for m in stale_manifests(home, keyring.key_id, feed)] == [first["extract_id"]]

    second = ingest_feed(home, feed, "r2")  # no new extract tonight
    assert second["status"] == "no_new_extract", second
    (manifest,) = read_manifests(home, feed)
    assert manifest["encoding"] == ENCODING and manifest["key_id"] == keyring.key_id
    assert Path(first["path"]).stat().st_mtime_ns != before, "the stored extract was written again"
    assert stale_manifests(home, keyring.key_id, feed) == []
