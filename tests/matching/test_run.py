import json

import pandas as pd
import pytest

from matching.run import InputError, collect_flags, link_shard, load_inputs, plan


def _run(home, run_id, shards, full=False):
    for task in plan(home, run_id, shards, full=full):
        link_shard(home, run_id, **task)
    return collect_flags(home, run_id)


def _pairs(flags):
    return {tuple(sorted([(r.left_council, r.left_record_id), (r.right_council, r.right_record_id)]))
            for r in flags.itertuples()}


def test_flags_find_planted_tenancies_and_shards_do_not_matter(tenancy_home):
    home, truth = tenancy_home
    one = _run(home, "20260101T000000", 1)
    four = _run(home, "20260101T000001", 4, full=True)  # a full re-link, not an incremental one
    assert len(one) > 0
    cols = ["flag_id", "match_probability", "evidence", "evidence_hash", "left_record_id", "right_record_id"]
    a = one[cols].sort_values("flag_id").reset_index(drop=True)
    b = four[cols].sort_values("flag_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    found = _pairs(one)
    assert len(found & truth) >= 0.95 * len(truth)
    assert len(found - truth) <= 2
    # the model was trained once and saved with m, u and weights per level
    from anonymise import at_rest

    model = at_rest.read_json(home.runs / "20260101T000000" / "model" / "tenancy_two_boroughs.json", home)
    assert 0 < model["lambda"] < 1
    dob = next(c for c in model["comparisons"] if c["name"] == "dob")
    assert dob["levels"][0]["weight"] > 5 > dob["levels"][-1]["weight"]
    # left is the smaller (council, record_id); every flag is cross-council
    assert ((one.left_council + one.left_record_id) < (one.right_council + one.right_record_id)).all()
    assert (one.left_council != one.right_council).all()
    assert one.flag_id.str.fullmatch(r"[0-9a-f]{20}").all()


def test_flag_ids_stable_and_first_seen_kept_across_runs(tenancy_home):
    home, _ = tenancy_home
    first = _run(home, "20260101T020000", 2).set_index("flag_id")
    second = _run(home, "20260102T020000", 3).set_index("flag_id")
    assert set(first.index) == set(second.index)
    assert (second["first_seen"] == "2026-01-01").all()
    assert (second["last_seen"] == "2026-01-02").all()
    assert (first["last_seen"] == "2026-01-01").all()
    # re-running a run is idempotent
    again = _run(home, "20260102T020000", 3).set_index("flag_id")
    pd.testing.assert_frame_equal(again.sort_index(), second.sort_index())
    assert home.flags_path("20260102T020000").exists()


def test_suppressed_flags_stay_closed_until_evidence_changes(tenancy_home):
    home, _ = tenancy_home
    flags = _run(home, "20260103T000000", 2)
    closed = flags.iloc[:3][["flag_id", "evidence_hash"]]
    changed = flags.iloc[3:4][["flag_id"]].assign(evidence_hash="0000000000000000")
    decided = pd.concat([closed, changed])  # as the review store answers: the raised rows decided with this evidence
    again = collect_flags(home, "20260103T000000", suppress=lambda raised: raised.merge(decided))
    assert not set(closed.flag_id) & set(again.flag_id)
    assert flags.iloc[3].flag_id in set(again.flag_id)  # evidence differs: raised again
    assert len(again) == len(flags) - 3


def test_a_new_yaml_match_type_needs_no_code(tenancy_home, make_frame, put_extract):
    home, _ = tenancy_home
    home.matchtypes.mkdir(parents=True, exist_ok=True)
    (home.matchtypes / "same_council_tenancies.yaml").write_text("""\
id: tenancy_same_borough_twice
title: Two tenancies in one borough
reason: The same person holds two tenancies in the same borough.
left: tenancy
right: tenancy
scope: same_council
link: same_person
conditions: [periods_overlap]
priority: 1
linkage:
  blocking: [[t_dob, t_surname], [t_nino]]
  comparisons:
    - {use: name, field: forename}
    - {use: name, field: surname}
    - {use: date_of_birth}
""")
    extra = make_frame([{"forename": "ZED", "surname": "QUUX", "dob": "1970-01-02", "council": "E09000001",
                     "record_id": f"Z{i}", "period_start": "2020-01-01"} for i in range(2)])
    put_extract(home, extra, "20260101T000000-y")  # newer extract of the same feed
    flags = _run(home, "20260104T000000", 2)
    new = flags[flags.match_type == "tenancy_same_borough_twice"]
    assert set(new.left_record_id) | set(new.right_record_id) == {"Z0", "Z1"}


def test_mixed_key_ids_are_refused(tenancy_home, make_frame, put_extract):
    home, _ = tenancy_home
    other = make_frame([{"forename": "A", "surname": "B", "dob": "1970-01-01", "council": "E09000009"}])
    other["key_id"] = "k2"
    put_extract(home, other)
    with pytest.raises(InputError, match="different keys"):
        load_inputs(home)


def test_single_person_discount_with_another_adult(tmp_path, make_frame, put_extract):
    from councilmatch.home import Home

    home = Home.resolve(tmp_path)
    council = "E09000007"
    ct, er = [], []
    for h in range(120):
        addr, pc = f"{h + 1} ELM ROAD", f"NW1 {h % 9}AB"
        holder = {"forename": f"PERSONA{h}", "surname": f"FAMILY{h % 40}", "dob": f"19{50 + h % 40}-02-03",
                  "address": addr, "postcode": pc, "council": council}
        ct.append({**holder, "record_id": f"CT{h}", "discount": h % 3 != 0, "period_start": "2022-04-01"})
        er.append({**holder, "record_id": f"ER{h}a", "period_start": "2021-01-01"})
        if h % 4 == 0:  # another adult at the address
            er.append({"forename": f"OTHER{h}", "surname": f"FAMILY{h % 40}", "dob": f"19{60 + h % 30}-07-08",
                       "address": addr, "postcode": pc, "council": council, "record_id": f"ER{h}b",
                       "period_start": "2021-01-01"})
    put_extract(home, pd.concat([make_frame(ct, "council_tax"), make_frame(er, "electoral_register")]))
    flags = _run(home, "20260105T000000", 2)
    spd = flags[flags.match_type == "spd_other_adult"]
    expected = {(f"CT{h}", f"ER{h}b") for h in range(120) if h % 4 == 0 and h % 3 != 0}
    assert set(zip(spd.left_record_id, spd.right_record_id)) == expected
    ev = json.loads(spd.iloc[0].evidence)
    assert ev["address"]["level"] == "exact" and ev["forename"]["level"] != "exact"


def test_a_shard_task_reads_only_its_match_types_data_sets(tenancy_home, make_frame, put_extract):
    import matching.run as run

    home, _ = tenancy_home
    other = make_frame([{"forename": "ZED", "surname": "QUUX", "dob": "1970-01-02", "record_id": f"P{i}"}
                        for i in range(3)], dataset="payroll", council="E09000001")
    put_extract(home, other)
    tasks = plan(home, "20260105T000000", 2)
    run._LAST_INPUTS.clear()
    task = next(t for t in tasks if t["match_type"] == "tenancy_two_boroughs")
    link_shard(home, "20260105T000000", **task)
    (loaded,) = run._LAST_INPUTS.values()
    assert set(loaded) == {"tenancy"}
