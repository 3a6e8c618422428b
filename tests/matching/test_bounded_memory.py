"""Bounded memory of link shard tasks: a shard reads only the records its pairs can touch."""

import numpy as np
import pandas as pd
import pytest

import matching.pool as pool
import matching.run as run
from matching.flags import read_parquet_at_rest
from matching.run import link_shard, plan, shard_path

RUN = "20260101T000000"


def _shard_flags(home, task, monkeypatch, min_records):
    monkeypatch.setattr(run, "SHARD_SUBSET_MIN_RECORDS", min_records)
    monkeypatch.setattr(run, "HOUSEHOLD_SUBSET_MIN_RECORDS", min_records)
    run._LAST_INPUTS.clear()
    run._LAST_LINK_INPUTS.clear()
    out = link_shard(home, RUN, **task)
    flags = read_parquet_at_rest(shard_path(home, RUN, task["match_type"], task["shard"]), home)
    return out, flags.sort_values("flag_id").reset_index(drop=True)


@pytest.mark.parametrize("shards", [3, 8])
def test_a_shard_reading_only_its_records_raises_the_same_flags(tenancy_home, monkeypatch, shards):
    home, _ = tenancy_home
    tasks = [t for t in plan(home, RUN, shards, full=True) if t["match_type"] == "tenancy_two_boroughs"]
    assert len(tasks) == shards
    total_flags, read_share = 0, []
    for task in tasks:
        whole, a = _shard_flags(home, task, monkeypatch, 10**12)  # never the subset: the whole data set
        part, b = _shard_flags(home, task, monkeypatch, 0)  # always the subset
        pd.testing.assert_frame_equal(a, b)
        assert part["candidates"] == whole["candidates"] and part["flags"] == whole["flags"] == len(a)
        assert part["records_read"] < whole["records_read"]
        read_share.append(part["records_read"] / whole["records_read"])
        total_flags += len(a)
    assert total_flags > 0
    # five blocking rules: a shard holds about 1 - (1 - 1/shards)^5 of the records, fewer with more shards
    assert max(read_share) < (0.95 if shards == 3 else 0.65), read_share


def test_an_incremental_shard_reads_only_the_records_near_its_changes_and_raises_the_same_flags(tmp_path,
                                                                                                   monkeypatch):
    """An incremental shard of a big match type reads its changed records and those sharing a
    blocking key with them (``pool.neighbourhood``), not the data sets: the same pairs, scores and
    flags as a whole read, deduplicating (tenancies) and linking two data sets (waiting list)."""
    import json

    from anonymise import at_rest
    from councilmatch.home import Home
    from matching.run import collect_flags, run_dir

    helpers = _conftest()
    home = Home.resolve(tmp_path / "home")
    frame, _ = helpers.tenancy_population(900, 80, seed=4)
    waiting = frame.iloc[::3].assign(dataset="waiting_list", record_id=lambda f: "W" + f["record_id"])
    helpers.write_extract(home, pd.concat([frame, waiting], ignore_index=True))
    for task in plan(home, RUN, 2, full=True, retrain=True):
        link_shard(home, RUN, **task)
    collect_flags(home, RUN)
    # night 2: records deleted, records re-entered in another council (new pairs), benign changes
    councils = sorted(frame["council"].unique())
    again = frame.iloc[40:70].assign(record_id=lambda f: f["record_id"] + "-B",
                                     council=lambda f: f["council"].map(dict(zip(councils, councils[1:] + councils[:1]))))
    tonight = pd.concat([frame.drop(index=frame.index[100:110]), again, waiting.iloc[5:]], ignore_index=True)
    tonight.loc[200:230, "period_start"] = pd.Timestamp("2022-02-02")
    helpers.write_extract(home, tonight, "20260102T000000-x")
    night2 = "20260102T020000"
    tasks = plan(home, night2, 3)
    modes = at_rest.read_json(run_dir(home, night2) / "plan.json", home)["types"]
    linked = {t["match_type"] for t in tasks}
    assert {"tenancy_two_boroughs", "waiting_list_tenancy"} <= linked, (linked, json.dumps(modes)[:500])
    assert all(modes[t]["mode"] == "incremental" for t in linked)
    flags = 0
    for task in tasks:
        monkeypatch.setattr(run, "SHARD_SUBSET_MIN_RECORDS", 10**12)
        run._LAST_INPUTS.clear()
        run._LAST_LINK_INPUTS.clear()
        whole = link_shard(home, night2, **task)
        a = read_parquet_at_rest(shard_path(home, night2, task["match_type"], task["shard"]), home)
        monkeypatch.setattr(run, "SHARD_SUBSET_MIN_RECORDS", 0)
        run._LAST_INPUTS.clear()
        run._LAST_LINK_INPUTS.clear()
        near = link_shard(home, night2, **task)
        b = read_parquet_at_rest(shard_path(home, night2, task["match_type"], task["shard"]), home)
        pd.testing.assert_frame_equal(a, b)  # the same flags, in the same order
        assert near["mode"] == whole["mode"] == "incremental"
        assert near["candidates"] == whole["candidates"] and near["flags"] == whole["flags"]
        if whole["candidates"]:
            assert near["records_read"] < whole["records_read"], (task, near, whole)
        flags += len(a)
    assert flags > 0
    # a process that holds the data sets read whole (councilmatch run forks shards from the plan)
    # links from them
    run._LAST_INPUTS.clear()
    run._LAST_LINK_INPUTS.clear()
    run._run_inputs(home, night2)
    assert link_shard(home, night2, **tasks[0])["records_read"] == whole_records(home, tasks[0]["match_type"])


def whole_records(home, match_type):
    from matching.matchtype import load_matchtypes

    mt = load_matchtypes(home)[match_type]
    data = run.load_inputs(home)
    return sum(len(data[ds]) for ds in dict.fromkeys([mt.left, mt.right]))


def test_a_household_shard_reads_its_records_and_their_right_candidates_and_raises_the_same_flags(
        tmp_path, monkeypatch, make_frame, put_extract):
    """A full shard of the single person discount reads the council-tax records with a key in the
    shard and every register entry sharing a key with one of them (a household is judged among
    all of them, whatever shard their pair falls in): the flags of a whole read, from fewer records."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("spd_tests", Path(__file__).with_name("test_spd_household.py"))
    spd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(spd)
    from anonymise import at_rest

    home, expected = spd._household_home(tmp_path, make_frame, put_extract)
    # a third of the register entries without a UPRN: they share an account's address keys, not
    # its UPRN key, so a shard holding the account by its UPRN must still read them
    path = next(p for p in run.newest_extracts(home) if p.parent.parent.name == "electoral_register")
    register = at_rest.read_frame(path, home=home)
    register.loc[register.index % 3 == 0, "t_uprn"] = 0
    at_rest.write_frame(path, register, home)
    tasks = [t for t in plan(home, RUN, 4, full=True) if t["match_type"] == "spd_other_adult"]
    assert len(tasks) == 4
    found, read_share = set(), []
    for task in tasks:
        whole, a = _shard_flags(home, task, monkeypatch, 10**12)
        part, b = _shard_flags(home, task, monkeypatch, 0)
        pd.testing.assert_frame_equal(a, b)
        assert part["candidates"] == whole["candidates"] and part["flags"] == whole["flags"]
        read_share.append(part["records_read"] / whole["records_read"])
        found |= set(zip(a.left_record_id, a.right_record_id))
    assert found and found >= expected - {("CT_INFORMAL", "ER_INFORMAL")}, expected - found
    assert max(read_share) < 0.9, read_share
    # and each shard holds every register entry sharing any key with one of its accounts (the
    # flags alone may not show a lost one: it must also move an account's judgement)
    from matching.blocking import blocking_key
    from matching.comparisons import Side
    from matching.matchtype import load_matchtypes

    mt = load_matchtypes(home)["spd_other_adult"]
    whole = run.load_inputs(home)
    files = run.newest_extracts(home)
    for task in tasks:
        data = pool.shard_inputs(home, files, mt, task["shard"], task["shards"])
        left, right = Side(data[mt.left]), Side(whole[mt.right])
        wanted = np.zeros(right.n, dtype=bool)
        for rule in mt.linkage.blocking:
            lk, lp = blocking_key(left, rule)
            rk, rp = blocking_key(right, rule)
            wanted |= rp & np.isin(rk, lk[lp])
        assert set(whole[mt.right]["record_id"][wanted]) <= set(data[mt.right]["record_id"])


def test_a_shard_subset_still_refuses_an_unknown_key_id(tenancy_home, monkeypatch, make_frame, put_extract):
    home, _ = tenancy_home
    tasks = [t for t in plan(home, RUN, 2, full=True) if t["match_type"] == "tenancy_two_boroughs"]
    monkeypatch.setattr(pool, "known_key_ids", lambda home: ("some-other-key",))
    monkeypatch.setattr(run, "SHARD_SUBSET_MIN_RECORDS", 0)
    with pytest.raises(run.InputError, match="not in this home's keyring"):
        link_shard(home, RUN, **tasks[0])


# ---------------------------------------------------------------------------
# The plan task: training on a sample of a pool over the cap
# ---------------------------------------------------------------------------

def _conftest():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("matching_conftest_helpers", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pairs(flags):
    return {tuple(sorted([(r.left_council, r.left_record_id), (r.right_council, r.right_record_id)]))
            for r in flags.itertuples()}


def _night(home, run_id, settings, shards=2):
    from matching.run import collect_flags

    for task in plan(home, run_id, shards, full=True, retrain=True, settings=settings):
        link_shard(home, run_id, **task)
    return collect_flags(home, run_id)


def _home_over_the_cap(tmp_path, monkeypatch):
    """2,000 tenancies with 160 planted pairs, and models settings capping training at half of them."""
    from councilmatch.home import Home
    from councilmatch.settings import Models

    helpers = _conftest()
    home = Home.resolve(tmp_path / "home")
    frame, truth = helpers.tenancy_population(2000, 160, seed=5)
    helpers.write_extract(home, frame)
    monkeypatch.setattr(run, "TRAINING_MIN_RECORDS_PER_DATASET", 100)
    return home, frame, truth, Models().model_copy(update={"training_max_records": len(frame) // 2})


def test_a_pool_over_the_cap_trains_on_a_sample_and_still_finds_the_pairs(tmp_path, monkeypatch):
    from anonymise import at_rest
    from matching import incremental as inc
    from matching.run import run_dir

    home, frame, truth, capped = _home_over_the_cap(tmp_path, monkeypatch)
    read = []
    with monkeypatch.context() as m:
        m.setattr(run, "read_inputs", lambda *a, **k: read.append(1) or READ_INPUTS(*a, **k))
        plan(home, "20260101T000000", 2, full=True, retrain=True, settings=capped)
    assert read == [], "the plan of a full night over the cap read the whole pool into one frame"
    flags = _night(home, "20260101T000000", capped)
    model = at_rest.read_json(home.runs / "20260101T000000" / "model" / "tenancy_two_boroughs.json", home)
    assert 0.4 * len(frame) < model["records"] < 0.6 * len(frame), model["records"]
    # the record index (what the next night's changes are found by) still covers every record
    index = at_rest.read_frame(run_dir(home, "20260101T000000") / "records.parquet", home=home)
    full = inc.record_index(READ_INPUTS(home, run.newest_extracts(home)))
    pd.testing.assert_frame_equal(index.sort_values("ref").reset_index(drop=True),
                                  full.sort_values("ref").reset_index(drop=True))
    # and the model trained on the sample still finds the planted pairs across the whole pool
    found = _pairs(flags)
    assert len(found & truth) >= 0.9 * len(truth), (len(found & truth), len(truth))
    assert len(found - truth) <= 5
    # the sample is by record reference: the same records (and model) night after night
    _night(home, "20260102T000000", capped)
    again = at_rest.read_json(home.runs / "20260102T000000" / "model" / "tenancy_two_boroughs.json", home)
    assert again["records"] == model["records"] and again["lambda"] == model["lambda"]


def test_a_pool_under_the_cap_trains_on_every_record(tenancy_home):
    from anonymise import at_rest

    home, _ = tenancy_home
    _night(home, "20260101T000000", None)
    model = at_rest.read_json(home.runs / "20260101T000000" / "model" / "tenancy_two_boroughs.json", home)
    assert model["records"] == len(run.load_inputs(home)["tenancy"])


READ_INPUTS = run.read_inputs


def test_a_full_night_over_the_cap_after_an_earlier_night_reads_no_whole_pool(tmp_path, monkeypatch):
    """With a previous night on record (changed records to find), a --full night of a big pool
    still reads extract by extract: the bounded path for big estates."""
    helpers = _conftest()
    home, frame, _, capped = _home_over_the_cap(tmp_path, monkeypatch)
    first = _night(home, "20260101T000000", capped)
    changed = frame.copy()
    changed.loc[:50, "period_start"] = pd.Timestamp("2022-02-02")
    helpers.write_extract(home, changed, "20260102T000000-x")
    read = []
    with monkeypatch.context() as m:
        m.setattr(run, "read_inputs", lambda *a, **k: read.append(1) or READ_INPUTS(*a, **k))
        plan(home, "20260102T020000", 2, full=True, settings=capped)
    assert read == []
    again = _night(home, "20260102T020000", capped)
    assert set(again["flag_id"]) == set(first["flag_id"])  # only periods changed: the same pairs


def test_sample_fractions_scale_the_pool_to_the_cap_and_keep_small_data_sets_whole(monkeypatch):
    import numpy as np

    monkeypatch.setattr(run, "TRAINING_MIN_RECORDS_PER_DATASET", 50_000)
    f = run._sample_fractions({"tenancy": 6_000_000, "payroll": 3_000_000, "deceased": 20_000}, 1_000_000)
    assert f["deceased"] == 1.0  # under the per-data-set minimum: whole
    assert f["tenancy"] == f["payroll"] == pytest.approx(1_000_000 / 9_020_000)
    kept = 6_000_000 * f["tenancy"] + 3_000_000 * f["payroll"] + 20_000
    assert kept <= 1_000_000 + 50_000
    assert run._sample_fractions({"tenancy": 900_000}, 1_000_000) == {"tenancy": 1.0}
    # the sample by reference is about the fraction, and the same references each time
    refs = np.random.default_rng(0).integers(-2**63, 2**63 - 1, 200_000, dtype=np.int64)
    keep = run._in_sample(refs, 0.25)
    assert abs(keep.mean() - 0.25) < 0.01 and (run._in_sample(refs, 0.25) == keep).all()
    assert run._in_sample(refs, 1.0).all()


def test_an_incremental_night_over_the_cap_reads_no_whole_pool(tmp_path, monkeypatch):
    """An incremental night over the cap finds its changed records from the extracts' kept record
    indexes and measures drift on their neighbourhood: it reads no whole pool. A model due tonight
    trains on the scan's sample, the same records (by reference) the first night trained on."""
    from anonymise import at_rest

    helpers = _conftest()
    home, frame, _, capped = _home_over_the_cap(tmp_path, monkeypatch)
    _night(home, "20260101T000000", capped)
    first = at_rest.read_json(home.runs / "20260101T000000" / "model" / "tenancy_two_boroughs.json", home)
    changed = frame.copy()
    changed.loc[:50, "period_start"] = pd.Timestamp("2022-02-02")
    helpers.write_extract(home, changed, "20260102T000000-x")
    for run_id, retrain, scans in (("20260102T020000", False, []), ("20260102T030000", True, [1])):
        read, scanned = [], []
        with monkeypatch.context() as m:
            m.setattr(run, "read_inputs", lambda *a, **k: read.append(1) or READ_INPUTS(*a, **k))
            m.setattr(run, "_scan_pool", lambda *a, **k: scanned.append(1) or SCAN_POOL(*a, **k))
            tasks = plan(home, run_id, 2, retrain=retrain, settings=capped)
        assert read == [] and scanned == scans, (run_id, read, scanned)
        assert tasks, "the changed records are linked"
    again = at_rest.read_json(home.runs / "20260102T030000" / "model" / "tenancy_two_boroughs.json", home)
    assert again["records"] == first["records"] and again["lambda"] == first["lambda"]
    reused = at_rest.read_json(home.runs / "20260102T020000" / "model" / "tenancy_two_boroughs.json", home)
    assert reused["reuse"]["mode"] == "incremental" and reused["reuse"]["drift"]["new_candidate_pairs"] > 0, reused["reuse"]


SCAN_POOL = run._scan_pool


def test_training_sides_are_views_of_the_pool_and_released_frames_refuse_their_bytes():
    """A match type trained on the sample reads its records' arrays from the pool's side (one copy
    in memory, the same values), and a frame whose encodings went to the pool cannot silently
    become all-missing filters."""
    import numpy as np

    from matching.comparisons import Side
    from matching.inputs import LinkInputs, pool_inputs, share_with_pool
    from matching.matchtype import MatchType

    helpers = _conftest()
    frame, _ = helpers.tenancy_population(300, 20, seed=3)
    councils = frame["council"].unique()
    data = {"tenancy": frame[frame["council"] == councils[0]].reset_index(drop=True),
            "waiting_list": frame[frame["council"] == councils[1]].assign(dataset="waiting_list")
            .reset_index(drop=True)}
    mt = MatchType.model_construct(id="t", left="tenancy", right="waiting_list", scope="any")
    fresh = LinkInputs(mt, {k: v.copy() for k, v in data.items()})
    pool = pool_inputs(data)
    viewed = LinkInputs(mt, data, pool)
    for side, ref in ((viewed.left, fresh.left), (viewed.right, fresh.right)):
        assert np.shares_memory(side.token("t_surname"), pool.left.token("t_surname"))
        assert (side.token("t_surname") == ref.token("t_surname")).all()
        assert (side.bloom("bf_surname")[0] == ref.bloom("bf_surname")[0]).all()
    share_with_pool(pool, data)
    assert "bf_surname" not in data["tenancy"].columns
    assert (LinkInputs(mt, data, pool).left.bloom("bf_address")[0] == fresh.left.bloom("bf_address")[0]).all()
    with pytest.raises(RuntimeError, match="released"):
        Side(data["tenancy"]).bloom("bf_surname")


def test_scanned_matrices_equal_the_bytes_path():
    """The scan's encodings go from Arrow straight into matrices: the same rows as the bytes path,
    missing values all-zero, a sliced or multi-chunk column read at its own offset, and a column
    of another type (an older or hostile file) through the checked path."""
    import numpy as np
    import pyarrow as pa

    from matching.comparisons import bloom_matrix, bloom_matrix_from_arrow

    rng = np.random.default_rng(5)
    values = [bytes(rng.integers(0, 256, 8, dtype=np.uint8)) if i % 7 else None for i in range(50)]
    fixed = pa.array(values, pa.binary(8))
    expect = bloom_matrix(pd.Series(values, dtype=object), 50, 8)
    assert (expect[0] == 0).all() and expect[1].any()
    assert (bloom_matrix_from_arrow(fixed, 8) == expect).all()
    assert (bloom_matrix_from_arrow(fixed.slice(13, 20), 8) == expect[13:33]).all()
    chunked = pa.chunked_array([fixed.slice(0, 9), fixed.slice(9)])
    assert (bloom_matrix_from_arrow(chunked, 8) == expect).all()
    assert (bloom_matrix_from_arrow(fixed.filter(pa.array([i % 3 == 0 for i in range(50)])), 8)
            == expect[::3]).all()
    loose = pa.array([v if i != 4 else b"short" for i, v in enumerate(values)], pa.binary())
    got = bloom_matrix_from_arrow(loose, 8)
    assert (got[4] == 0).all() and (np.delete(got, 4, 0) == np.delete(expect, 4, 0)).all()
    assert bloom_matrix_from_arrow(pa.chunked_array([], pa.binary(8)), 8).shape == (0, 8)


def test_the_scan_on_several_threads_gives_what_one_thread_gives(tmp_path, monkeypatch):
    """The pool is scanned extract by extract on threads, in batches: the record index, key id,
    sample and matrices must not depend on the thread count or the batch size."""
    import numpy as np

    from councilmatch.contracts import ENCODED_BYTES

    helpers = _conftest()
    home, frame, _truth, _capped = _home_over_the_cap(tmp_path, monkeypatch)
    extra, _ = helpers.tenancy_population(700, 40, seed=9)
    helpers.write_extract(home, extra.assign(council="E09000099"))
    files = run.newest_extracts(home)
    assert len(files) >= 2
    fractions = {f.parent.parent.name: 0.5 for f in files}
    one = run._scan_pool(home, files, fractions, threads=1)
    monkeypatch.setattr(run, "SCAN_READ_BATCH", 300)  # several batches an extract, finishing out of order
    many = run._scan_pool(home, files, fractions, threads=3)
    assert one.key_id == many.key_id != ""
    pd.testing.assert_frame_equal(one.index, many.index)
    assert one.sample.keys() == many.sample.keys()
    for ds in one.sample:
        pd.testing.assert_frame_equal(one.sample[ds], many.sample[ds])
        assert 0 < len(one.sample[ds]) < len(frame) + len(extra)
    for column in ENCODED_BYTES:
        for ds in one.matrices[column]:
            assert (np.concatenate(one.matrices[column][ds]) == np.concatenate(many.matrices[column][ds])).all()
    assert len(many.index) == len(frame) + len(extra)


def test_row_hashes_from_arrow_encodings_equal_the_frame_s(tmp_path):
    """The scan hashes the encodings straight from Arrow: each row's hash must be the one the
    whole frame (encodings as bytes, some missing) gives, or every record would look changed."""
    from anonymise import at_rest
    from anonymise.pseudonymised import from_table
    from councilmatch.contracts import ENCODED_BYTES
    from councilmatch.home import Home
    from matching import incremental as inc

    helpers = _conftest()
    home = Home.resolve(tmp_path / "home")
    frame, _ = helpers.tenancy_population(300, 20, seed=3)
    encoded = [c for c in ENCODED_BYTES if c in frame.columns]
    assert len(encoded) >= 3
    for i, c in enumerate(encoded):
        frame.loc[frame.index[i::7], c] = None  # missing values, row by row
    helpers.write_extract(home, frame)
    for path in run.newest_extracts(home):
        table = at_rest.read_table(path, home=home)
        whole = inc.row_hashes(from_table(table))
        split = inc.row_hashes(from_table(table.drop_columns(encoded)), table)
        assert (whole == split).all()
        assert len(set(whole.tolist())) == len(whole)
        changed = table.set_column(table.column_names.index(encoded[0]), encoded[0],
                                   table.column(encoded[0]).take(list(range(1, len(table))) + [0]))
        moved = inc.row_hashes(from_table(changed.drop_columns(encoded)), changed)
        assert (moved != whole).mean() > 0.5  # the encodings count in the hash


def test_the_plan_caps_malloc_arenas_only_for_a_pool_sampled_to_under_half(tmp_path, monkeypatch):
    """Threads sharing arenas wait on each other's allocations: worth it where the pool is many
    times the training sample (the 10M plan: 2.2 -> 2.0 GiB), not for one that nearly fits."""
    from councilmatch.home import Home
    from councilmatch.memory import ARENAS

    calls = []
    monkeypatch.setattr(run, "return_freed_memory", lambda **kw: calls.append(kw.get("arenas")) or True)
    home = Home.resolve(tmp_path / "h")
    for fractions in ({"tenancy": 0.1, "payroll": 1.0}, {"tenancy": 0.9}, {}):
        run._scan_pool(home, [], fractions)
    assert calls == [ARENAS, None, None]


def test_training_keeps_its_freed_pages_unless_the_pool_is_many_times_the_sample(tmp_path, monkeypatch):
    """Kept pages save the 1M plan seconds of page faults; where the pool is many times the
    training sample (the 10M plan, within a few MiB of its 2 GiB bound) the plan gives them back."""
    home, _frame, _truth, capped = _home_over_the_cap(tmp_path, monkeypatch)
    kept = []
    monkeypatch.setattr(run, "reuse_freed_pages", lambda: kept.append(1) or True)
    plan(home, "20260101T000000", 2, full=True, retrain=True, settings=capped)  # half the pool
    assert kept == [1]
    quarter = capped.model_copy(update={"training_max_records": capped.training_max_records // 2})
    plan(home, "20260102T000000", 2, full=True, retrain=True, settings=quarter)
    assert kept == [1], "a plan sampling a quarter of its pool kept its freed pages"


def test_the_scanned_sample_is_held_once_as_the_training_pool(tmp_path, monkeypatch):
    """The scan concatenates the sample once: each data set's frame is a view of the pool's rows,
    and the pool built on it equals the one concatenated from separate frames (values, dtypes),
    with no second copy of a token."""
    import numpy as np

    from matching.inputs import pool_inputs

    helpers = _conftest()
    home, frame, _truth, _capped = _home_over_the_cap(tmp_path, monkeypatch)
    other, _ = helpers.tenancy_population(600, 30, seed=9)
    helpers.write_extract(home, other.assign(dataset="waiting_list"))
    files = run.newest_extracts(home)
    scan = run._scan_pool(home, files, {"tenancy": 0.5, "waiting_list": 0.5})
    assert list(scan.sample) == ["tenancy", "waiting_list"] and scan.whole is not None
    for ds, part in scan.sample.items():
        assert np.shares_memory(part["t_surname"].to_numpy(), scan.whole["t_surname"].to_numpy()), ds
    separate = {ds: part.copy() for ds, part in scan.sample.items()}
    pd.testing.assert_frame_equal(pool_inputs(scan.sample, scan.whole).left_frame, pool_inputs(separate).left_frame)
    token = pool_inputs(scan.sample, scan.whole).left.token("t_surname")
    assert np.shares_memory(token, scan.whole["t_surname"].to_numpy()) and not token.flags.writeable
    with pytest.raises(ValueError, match="holds"):
        pool_inputs(scan.sample, scan.whole.iloc[:-1])


def test_the_pool_read_for_linking_keeps_encodings_in_arrow_and_links_the_same(tmp_path):
    """``read_inputs`` keeps the encodings as Arrow columns (no Python bytes object per cell):
    the Bloom matrices, content hashes and every comparison level must be those of the bytes frame."""
    import numpy as np

    from councilmatch.home import Home
    from anonymise.pseudonymised import read_pseudonymised
    from anonymise.record_index import row_hashes
    from councilmatch.contracts import ENCODED_BYTES
    from matching.comparisons import Pairs, Side, address, date_of_birth, name
    from matching.model import comparison_vectors

    helpers = _conftest()
    home = Home.resolve(tmp_path / "home")
    frame, _truth = helpers.tenancy_population(500, 60, seed=8)
    helpers.write_extract(home, frame)
    files = run.newest_extracts(home)
    pooled = run.read_inputs(home, files)["tenancy"]
    as_bytes = pd.concat([read_pseudonymised(p, home) for p in files], ignore_index=True)
    assert isinstance(pooled["bf_surname"].dtype, pd.ArrowDtype)
    assert isinstance(as_bytes["bf_surname"].iloc[0], bytes)
    assert (row_hashes(pooled) == row_hashes(as_bytes)).all()
    arrow_side, bytes_side = Side(pooled), Side(as_bytes)
    for column in ENCODED_BYTES:
        assert (arrow_side.bloom(column)[0] == bytes_side.bloom(column)[0]).all(), column
    rng = np.random.default_rng(2)
    li, ri = rng.integers(0, len(pooled), 3_000), rng.integers(0, len(pooled), 3_000)
    comps = [name("forename", initial=True), name("surname"), date_of_birth(), address()]
    got = comparison_vectors(comps, Pairs(Side(pooled), Side(pooled), li, ri))
    assert (got == comparison_vectors(comps, Pairs(Side(as_bytes), Side(as_bytes), li, ri))).all()


def test_a_data_sets_extracts_are_joined_as_arrow_into_the_frame_pandas_would_make(tmp_path):
    """``read_inputs`` joins a data set's files as Arrow tables and converts once (each column
    freed as converted, each encoding made one buffer): the frame must be the per-file frames
    joined by pandas, also where one file stores a date column in another unit, and where two
    files cannot be made one type."""
    import pyarrow as pa

    from anonymise import at_rest
    from anonymise.pseudonymised import from_table
    from councilmatch.contracts import ENCODED_BYTES
    from councilmatch.home import Home

    helpers = _conftest()
    home = Home.resolve(tmp_path / "home")
    frame, _truth = helpers.tenancy_population(300, 40, seed=4)
    councils = frame["council"].unique()
    assert len(councils) > 1
    helpers.write_extract(home, frame)
    files = run.newest_extracts(home)
    path = files[-1]
    table = at_rest.read_table(path, home=home)
    at_rest.write_table(path, table.set_column(table.schema.get_field_index("period_start"), "period_start",
                                               table.column("period_start").cast(pa.timestamp("ms"))), home)

    def per_file() -> pd.DataFrame:
        return pd.concat([from_table(at_rest.read_table(p, home=home), arrow_encodings=True) for p in files],
                         ignore_index=True)

    pooled = run.read_inputs(home, files)["tenancy"]
    pd.testing.assert_frame_equal(pooled, per_file())
    # each encoding one buffer (a take from a chunked column joins its chunks first, every time)
    encodings = [c for c in ENCODED_BYTES if c in pooled.columns]
    assert encodings and all(pooled[c].array._pa_array.num_chunks == 1 for c in encodings)  # noqa: SLF001
    assert pooled["period_start"].notna().sum() > 0 and str(pooled["period_start"].dtype) == "datetime64[ns]"

    # a column that no Arrow type holds for both files: joined as frames, still the same frame
    table = at_rest.read_table(path, home=home)
    at_rest.write_table(path, table.set_column(table.schema.get_field_index("t_surname"), "t_surname",
                                               table.column("t_surname").cast(pa.string())), home)
    pd.testing.assert_frame_equal(run.read_inputs(home, files)["tenancy"], per_file())
