"""An incremental night raises exactly the flags a full re-run raises on the same data.

Several feeds send new extracts over several nights (changed rows, deleted rows, new
records, rows put back, a night with no extract at all). Each night, after ingest, the
home is copied: the copy re-links its whole pool (``full=True``) and the original links
incrementally. Both score with the same saved model (the copy has the same store/models,
trained on night 1, TF tables included), so the comparison is like for like; the flags
files must be equal to the last bit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anonymise import at_rest
from anonymise.minimise import record_refs, ref_key
from councilmatch.home import Home
import matching.pool as pool
import matching.run as run
from matching.run import collect_flags, link_shard, run_dir
from orchestrate import pipeline

pytestmark = pytest.mark.slow


# --- one night, both ways (extracts are re-sent by the ``resent_feed`` fixture: tests/e2e/conftest.py) ------------------------------------------------------------------------


def _ingest(home: Home, run_id: str) -> None:
    for feed_id in pipeline.discover_feeds(home):
        outcome = pipeline.ingest_feed(home, feed_id, run_id)
        assert outcome["status"] in ("ingested", "no_new_extract", "unchanged"), outcome


def _link(home: Home, run_id: str, full: bool) -> tuple[pd.DataFrame, dict]:
    tasks = pipeline.plan_link(home, run_id, full=full)
    candidates = sum(link_shard(home, run_id, **t)["candidates"] for t in tasks)
    planned = at_rest.read_json(run_dir(home, run_id) / "plan.json", home)
    return collect_flags(home, run_id), {**planned, "tasks": len(tasks), "candidates": candidates}


def _night(home: Home, tmp: Path, run_id: str) -> dict:
    _ingest(home, run_id)
    full_home = Home.resolve(tmp / f"full-{run_id}")
    shutil.copytree(home.root, full_home.root)
    incremental, inc_plan = _link(home, run_id, full=False)
    full, full_plan = _link(full_home, run_id, full=True)
    return {"incremental": incremental, "full": full, "inc": inc_plan, "full_plan": full_plan}


def _refused(home: Home, files: list) -> dict:
    raise AssertionError(f"the pool read whole: {sorted({p.parent.parent.name for p in files})}")


READ_INPUTS = run.read_inputs


def _refs(flags: pd.DataFrame) -> set[str]:
    return set(flags["flag_id"])


@pytest.fixture(scope="module", params=["whole", "bounded"])
def nights(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, generated_home,
           resent_feed) -> dict:
    """``whole``: the pool fits (the plan reads it, shards link from it). ``bounded``: a pool over
    ``training_max_records``, as a big estate's: the plan reads the extracts' kept record indexes
    and only the records near the changes, and every shard of a match type without a household
    reads its changed records' neighbourhood (``matching.pool``), every full shard its own
    records: no task reads a whole data set."""
    mp = pytest.MonkeyPatch()
    mp.delenv("COUNCILMATCH_KEK", raising=False)
    tmp = tmp_path_factory.mktemp("incremental")
    home, originals = generated_home(tmp, 800, 3)
    if request.param == "bounded":
        # (settings.yaml refuses a cap this low: the model is copied past its validation)
        settings = pipeline.load_settings(home)
        capped = settings.model_copy(update={"models": settings.models.model_copy(
            update={"training_max_records": 1000})})
        mp.setattr(pipeline, "load_settings", lambda home: capped)
        mp.setattr(run, "SHARD_SUBSET_MIN_RECORDS", 0)
        mp.setattr(run, "HOUSEHOLD_SUBSET_MIN_RECORDS", 0)
        mp.setattr(run, "INCREMENTAL_ROWS_PER_SHARD", 5)  # a match type's changes split over shards
        mp.setattr(run, "read_inputs", _refused)
    used: dict[str, int] = {}
    for name in ("kept_record_index", "neighbourhood"):  # which readers the nights used
        real = getattr(pool, name)
        mp.setattr(pool, name, lambda *a, _real=real, _name=name, **k: used.update({_name: used.get(_name, 0) + 1})
                   or _real(*a, **k))
    feeds = {fid: resent_feed(home, fid, next((originals / fid).glob("*.csv")))
             for fid in ("E09000007/tenancy", "E09000007/electoral_register", "central/deceased",
                         "E09000007/council_tax", "E09000007/payroll")}
    out: dict = {}

    # night 1: everything is new; the models are trained and saved
    _ingest(home, "20261101T020000")
    first, plan1 = _link(home, "20261101T020000", full=False)
    out["20261101T020000"] = {"incremental": first, "full": first, "inc": plan1, "full_plan": plan1}
    flagged = pd.concat([first[["left_council", "left_dataset", "left_record_id"]].set_axis(["c", "d", "r"], axis=1),
                         first[["right_council", "right_dataset", "right_record_id"]].set_axis(["c", "d", "r"], axis=1)])

    def flagged_ids(feed_id: str) -> list[str]:
        """The clear ids (as the feed sends them) of its night-1 records that were flagged; the
        store and the flags hold keyed references of them (anonymise.minimise)."""
        council, dataset = feed_id.split("/")
        refs = set(flagged[(flagged.c == council) & (flagged.d == dataset)]["r"])
        ids = pd.Series([r[0] for r in feeds[feed_id].original])
        keyed = record_refs(ref_key(home), pd.Series([council] * len(ids)), ids)
        return sorted(set(ids[keyed.isin(refs).to_numpy()]))

    rng = np.random.default_rng(7)

    # night 2: tenancy loses a flagged record, gains a copy of one under a new id, three surnames
    # change; electors are deleted and others move into flagged households; a death is withdrawn
    ten = feeds["E09000007/tenancy"]
    gone_tenancy = flagged_ids(ten.feed_id)[0]
    copy_of = next(r for r in ten.rows if r[0] == flagged_ids(ten.feed_id)[-1])
    ten.rows = [r for r in ten.rows if r[0] != gone_tenancy] + [["TEN9000001", *copy_of[1:]]]
    surname = ten.col("Surname")
    for i in rng.choice(len(ten.rows) - 1, 3, replace=False):
        ten.rows[i][surname] = ten.rows[i][surname] + "-Smythe"
    er = feeds["E09000007/electoral_register"]
    where = [er.col(c) for c in ("Address 1", "Address 2", "Post Code", "UPRN")]
    hh = flagged_ids(er.feed_id)
    assert len(hh) >= 3, "the generated home has households with another adult"
    er.rows = [r for r in er.rows if r[0] not in hh[:2]]
    target = next(r for r in er.rows if r[0] == hh[-1])
    for i in rng.choice(len(er.rows), 4, replace=False):
        if er.rows[i][0] not in hh:
            for c in where:
                er.rows[i][c] = target[c]
    dec = feeds["central/deceased"]
    dec.rows = [r for r in dec.rows if r[0] != flagged_ids(dec.feed_id)[0]]
    for f in (ten, er, dec):
        f.send("20261102")
    out["20261102T020000"] = _night(home, tmp, "20261102T020000")

    # night 3: the tenancy comes back; a flagged payroll forename changes; discounts flip
    ten.rows = [list(r) for r in ten.original]
    pay = feeds["E09000007/payroll"]
    forename = pay.col("Forenames")
    for r in pay.rows:
        if r[0] in flagged_ids(pay.feed_id)[:1]:
            r[forename] = "Zebedee"
    ct = feeds["E09000007/council_tax"]
    spd = ct.col("Single Person Discount")
    flagged_ct = set(flagged_ids(ct.feed_id))
    for r in ct.rows:
        if r[0] in flagged_ct:
            r[spd] = "N"
    for i in rng.choice(len(ct.rows), 15, replace=False):
        if ct.rows[i][0] not in flagged_ct:
            ct.rows[i][spd] = "Y"
    for f in (ten, pay, ct):
        f.send("20261103")
    out["20261103T020000"] = _night(home, tmp, "20261103T020000")

    # night 4: no new extract at all
    out["20261104T020000"] = _night(home, tmp, "20261104T020000")

    # night 5: the electoral register is sent as it was on night 1
    er.rows = [list(r) for r in er.original]
    er.send("20261105")
    out["20261105T020000"] = _night(home, tmp, "20261105T020000")
    out["20261105T020000"]["kept_indexes"] = _kept_indexes(home)
    out["reading"] = (request.param, used)
    mp.undo()
    return out


def _kept_indexes(home: Home) -> dict[str, int]:
    """Every stored extract's kept record index against its rows hashed the long way."""
    from anonymise.pseudonymised import kept_index, read_pseudonymised
    from anonymise.record_index import index_frame, ref_keys, row_hashes

    counts = {"extracts": 0, "kept": 0, "mismatched": 0}
    for path in sorted(home.pseudonymised.glob("*/*/*.parquet")):
        counts["extracts"] += 1
        kept = kept_index(path, home)
        if kept is None:
            continue
        stored = read_pseudonymised(path, home)
        hashed = index_frame(ref_keys(stored["council"], stored["dataset"], stored["record_id"]), row_hashes(stored))
        counts["kept"] += 1
        counts["mismatched"] += not kept.equals(hashed)
    return counts


NIGHTS = ["20261102T020000", "20261103T020000", "20261104T020000", "20261105T020000"]


@pytest.mark.parametrize("night", NIGHTS)
def test_incremental_night_equals_a_full_rerun(nights: dict, night: str) -> None:
    inc, full = nights[night]["incremental"], nights[night]["full"]
    assert len(full) > 0
    pd.testing.assert_frame_equal(inc, full, check_exact=True)


@pytest.mark.parametrize("night", NIGHTS)
def test_incremental_night_reuses_the_model_and_links_less(nights: dict, night: str) -> None:
    plan, full_plan = nights[night]["inc"], nights[night]["full_plan"]
    for mt, entry in plan["types"].items():
        assert entry["mode"] == "incremental", (mt, entry)
        assert entry["retrained"] is None
        assert entry["model_id"] == full_plan["types"][mt]["model_id"]  # like for like
        assert full_plan["types"][mt]["mode"] == "full"
    assert plan["candidates"] < full_plan["candidates"] / 4


def test_a_pool_over_the_cap_links_its_nights_from_indexes_and_neighbourhoods(nights: dict) -> None:
    """The bounded nights really took the bounded readers (and read no whole pool: ``_refused``),
    the others the pool read whole."""
    reading, used = nights["reading"]
    if reading == "bounded":
        assert used.get("kept_record_index", 0) >= 3 and used.get("neighbourhood", 0) >= 3, used
    else:
        assert used == {}, used


def test_nights_add_and_retract_flags(nights: dict) -> None:
    """The data changes really reach the flags: some are retracted, some new, in both kinds of
    match type (pair-local and household-judged)."""
    ids = {n: _refs(v["incremental"]) for n, v in nights.items() if n in NIGHTS or n == "20261101T020000"}
    order = sorted(ids)
    retracted = set().union(*(ids[a] - ids[b] for a, b in zip(order, order[1:])))
    added = set().union(*(ids[b] - ids[a] for a, b in zip(order, order[1:])))
    assert retracted and added
    types = pd.concat([nights[n]["incremental"] for n in ids]).drop_duplicates("flag_id").set_index("flag_id")
    assert "spd_other_adult" in set(types.loc[list(retracted | added), "match_type"])
    assert {"tenancy_two_boroughs", "blue_badge_deceased"} & set(types.loc[list(retracted), "match_type"])


def test_a_night_without_new_extracts_links_nothing(nights: dict) -> None:
    quiet = nights["20261104T020000"]
    assert quiet["inc"]["tasks"] == 0 and quiet["inc"]["candidates"] == 0
    pd.testing.assert_frame_equal(
        quiet["incremental"].drop(columns=["run_id", "last_seen"]),
        nights["20261103T020000"]["incremental"].drop(columns=["run_id", "last_seen"]))


def test_every_extract_keeps_the_record_index_of_its_rows(nights: dict) -> None:
    """Re-sent extracts take their unchanged rows' index from the feed's last extract
    (anonymise.reuse.skipped_index): after five nights, every stored extract's kept index is still
    exactly its rows hashed, so the nights' dirty records are the true ones."""
    counts = nights["20261105T020000"]["kept_indexes"]
    assert counts["kept"] == counts["extracts"] > 20, counts
    assert counts["mismatched"] == 0, counts
