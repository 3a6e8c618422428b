"""Bounded memory of link shard tasks: a shard reads only the records its pairs can touch."""

import pandas as pd
import pytest

import matching.run as run
from matching.flags import read_parquet_at_rest
from matching.run import link_shard, plan, shard_path

RUN = "20260101T000000"


def _shard_flags(home, task, monkeypatch, min_records):
    monkeypatch.setattr(run, "SHARD_SUBSET_MIN_RECORDS", min_records)
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


def test_a_shard_subset_still_refuses_an_unknown_key_id(tenancy_home, monkeypatch, make_frame, put_extract):
    home, _ = tenancy_home
    tasks = [t for t in plan(home, RUN, 2, full=True) if t["match_type"] == "tenancy_two_boroughs"]
    monkeypatch.setattr(run, "_known_key_ids", lambda home: ("some-other-key",))
    monkeypatch.setattr(run, "SHARD_SUBSET_MIN_RECORDS", 0)
    with pytest.raises(run.InputError, match="not in this home's keyring"):
        link_shard(home, RUN, **tasks[0])
