"""A re-sent extract skips its unchanged raw rows, and ends up exactly as a from-scratch ingest.

Night 1 ingests a generated home. Night 2 re-sends some feeds: one row changed, one deleted, a
new bad row (a formula cell), a new good row, the feed's bad rows of night 1 still there; another
feed re-sent as it was. The home is copied before night 2; the copy ingests night 2 with nothing
remembered (no raw-row digests, no pseudonymised rows to reuse), the original skips the rows it
accepted last night. Store, vault, quarantine, manifest counts, data-quality profile and flags must
be equal, and the original must really have skipped the unchanged rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from anonymise import reuse
from anonymise.keys import load_keyring
from anonymise.manifest import read_manifests
from anonymise.pseudonymised import read_pseudonymised
from anonymise.quarantine import read_quarantine
from anonymise.vault import Vault
from councilmatch.home import Home
from ingest.extract import RowMemory
from matching.run import collect_flags, link_shard
from orchestrate import pipeline

pytestmark = pytest.mark.slow

RESENT = ("E09000007/electoral_register", "E09000007/tenancy", "E09000007/council_tax")
NIGHT1, NIGHT2 = "20261101T020000", "20261102T020000"


def _night(home: Home, run_id: str) -> dict[str, dict]:
    outcomes = {f: pipeline.ingest_feed(home, f, run_id) for f in pipeline.discover_feeds(home)}
    tasks = pipeline.plan_link(home, run_id, full=False)
    for t in tasks:
        link_shard(home, run_id, **t)
    return {"outcomes": outcomes, "flags": collect_flags(home, run_id)}


def _latest(home: Home, feed_id: str) -> dict:
    return max(read_manifests(home, feed_id), key=lambda m: (m.get("ingested_at", ""), m["extract_id"]))


def _from_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing remembered: every row validated, standardised and pseudonymised afresh."""
    monkeypatch.setattr(reuse, "load_previous", lambda *a, **k: None)
    monkeypatch.setattr(reuse, "row_memory", lambda home, c, d, keyring, previous:
                        RowMemory(keyring.subkey(reuse.RAW_DIGEST_PURPOSE)))


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, generated_home, resent_feed) -> dict:
    mp = pytest.MonkeyPatch()
    mp.delenv("COUNCILMATCH_KEK", raising=False)
    tmp = tmp_path_factory.mktemp("resend")
    home, originals = generated_home(tmp, 800, 4)
    Feed = resent_feed
    _night(home, NIGHT1)

    er = Feed(home, RESENT[0], next((originals / RESENT[0]).glob("*.csv")))
    surname = er.col("Surname", "Last Name", "Last_Name", "Family Name")
    er.rows[5][surname] = er.rows[5][surname] + "-Smythe"          # one row changed
    deleted = er.rows.pop(9)[0]                                     # one row deleted
    bad = list(er.rows[20])
    bad[0], bad[surname] = "NEWBAD0001", "=HYPERLINK(\"x\")"       # a new bad row
    good = list(er.rows[30])
    good[0] = "NEWGOOD0001"                                         # a new good row (a copy under a new id)
    er.rows += [bad, good]
    er.send("20261102")
    ten = Feed(home, RESENT[1], next((originals / RESENT[1]).glob("*.csv")))
    ten.send("20261102")                                            # re-sent as it was
    ct = Feed(home, RESENT[2], next((originals / RESENT[2]).glob("*.csv")))
    ct.rows[3][ct.col("Single Person Discount")] = "Y" if ct.rows[3][ct.col("Single Person Discount")] != "Y" else "N"
    ct.send("20261102")

    scratch = Home.resolve(tmp / "scratch")
    shutil.copytree(home.root, scratch.root)
    skipped = _night(home, NIGHT2)
    _from_scratch(mp)
    full = _night(scratch, NIGHT2)
    mp.undo()
    return {"home": home, "scratch": scratch, "skipped": skipped, "full": full, "deleted": deleted}


def test_unchanged_rows_were_skipped(homes: dict) -> None:
    for feed_id in RESENT:
        out = homes["skipped"]["outcomes"][feed_id]
        assert out["status"] == "ingested"
        # all but the changed/new rows (and last night's bad rows, which are validated again)
        assert out["rows_skipped"] >= out["accepted"] - 3, out
        assert homes["full"]["outcomes"][feed_id]["rows_skipped"] == 0


def test_counts_and_profile_equal_a_from_scratch_ingest(homes: dict) -> None:
    for feed_id in RESENT:
        a, b = _latest(homes["home"], feed_id), _latest(homes["scratch"], feed_id)
        for key in ("extract_id", "rows_in", "accepted", "quarantined", "quarantine_reasons", "set_missing"):
            assert a[key] == b[key], (feed_id, key)
        assert a["rows_in"] == a["accepted"] + a["quarantined"]
        assert a["quality"] == b["quality"], feed_id


def test_store_vault_and_quarantine_equal_a_from_scratch_ingest(homes: dict) -> None:
    home, scratch = homes["home"], homes["scratch"]
    keyring = load_keyring(home)
    for feed_id in RESENT:
        council, dataset = feed_id.split("/")
        a, b = _latest(home, feed_id), _latest(scratch, feed_id)
        pd.testing.assert_frame_equal(read_pseudonymised(Path(a["pseudonymised_path"]), home),
                                      read_pseudonymised(Path(b["pseudonymised_path"]), scratch))
        pd.testing.assert_frame_equal(read_quarantine(home, keyring, council, dataset, a["extract_id"]),
                                      read_quarantine(scratch, keyring, council, dataset, b["extract_id"]))
        pd.testing.assert_frame_equal(Vault(home, keyring).read_extract(council, dataset, a["extract_id"]),
                                      Vault(scratch, keyring).read_extract(council, dataset, b["extract_id"]))
        # the index (keyed hashes carried over for skipped rows): re-identification finds every record
        assert Vault(home, keyring).read_index(council, dataset, a["extract_id"]).equals(
            Vault(scratch, keyring).read_index(council, dataset, b["extract_id"]))
    quarantined = read_quarantine(home, keyring, *RESENT[0].split("/"), _latest(home, RESENT[0])["extract_id"])
    assert "NEWBAD0001" in set(quarantined["record_id"])
    assert len(quarantined) >= 2  # last night's bad rows are quarantined again beside the new one
    vaulted = Vault(home, keyring).read_extract(*RESENT[0].split("/"), _latest(home, RESENT[0])["extract_id"])
    assert homes["deleted"] not in set(vaulted["record_id"]) and "NEWGOOD0001" in set(vaulted["record_id"])
    skipped_id = vaulted["record_id"].iloc[0]
    record = Vault(home, keyring).reidentify(*RESENT[0].split("/")[:1], skipped_id, actor="test", reason="test")
    assert record["extract_id"] == _latest(home, RESENT[0])["extract_id"]


def test_flags_equal_a_from_scratch_ingest(homes: dict) -> None:
    a, b = homes["skipped"]["flags"], homes["full"]["flags"]
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b, check_exact=True)
