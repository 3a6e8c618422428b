"""The independent noise model does what it says, and the Splink baseline scores correctly."""

from __future__ import annotations

import re

import jellyfish
import numpy as np
import pandas as pd
import pytest

from evaluation import perturb as pt


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- single-string perturbations ------------------------------------------------------

@pytest.mark.parametrize("kind", ["insert", "delete", "substitute", "transpose", None])
def test_typo_is_exactly_one_edit_anywhere_including_the_first_letter(kind):
    g = rng(1)
    first_letter_changed = 0
    for word in ["MARGARET", "SHAH", "OKONKWO", "JĘDRYCZKA", "LEE"] * 60:
        out = pt.typo(word, g, kind)
        assert jellyfish.damerau_levenshtein_distance(word, out) == 1, (word, out)
        first_letter_changed += out[0] != word[0]
    assert first_letter_changed > 5  # the first letter is not protected


def test_typo_transpose_and_delete_do_what_they_say():
    g = rng(2)
    for _ in range(50):
        out = pt.typo("ANNA", g, "transpose")
        assert sorted(out) == sorted("ANNA") and out != "ANNA"
        assert len(pt.typo("ANNA", g, "delete")) == 3
        assert len(pt.typo("ANNA", g, "insert")) == 5


def test_ocr_error_applies_one_listed_confusion():
    g = rng(3)
    outs = {pt.ocr_error("CLIMSON", g) for _ in range(300)}
    expected = {"DIMSON", "C1IMSON", "CL1MSON", "CIIMSON", "CLLMSON", "CLIRNSON", "CLIM5ON", "CLIMS0N"}
    assert outs <= expected and len(outs) >= 5
    assert pt.ocr_error("AAA", g) == "AAA"  # nothing to confuse


def test_respelling_rewrites_one_sound_alike_spelling():
    g = rng(4)
    outs = {pt.respell("PHILLIPS", g) for _ in range(300)}
    assert "FILLIPS" in outs and "PHILIPS" in outs and "PHYLLIPS" in outs
    for out in outs:
        assert out != "PHILLIPS"
        # one local rewrite: the unchanged prefix and suffix cover all but a few letters
        assert jellyfish.levenshtein_distance(out, "PHILLIPS") <= 3


def test_transliteration_writes_out_diacritics():
    outs = {pt.transliterate("MÜLLER", rng(s)) for s in range(20)}
    assert outs == {"MUELLER", "MULLER"}
    assert pt.transliterate("ŁUCZAK", rng(0)) == "LUCZAK"
    assert pt.transliterate("SMITH", rng(0)) == "SMITH"


def test_nicknames_come_from_the_package_and_the_extra_table():
    g = rng(5)
    assert pt.nickname("WILLIAM", g) in {"BILL", "WILL", "BILLY", "WILLY", "WILLIE", "BELA", "BELL", "WIL", "WILF"}
    assert pt.nickname("KATARZYNA", g) == "KASIA"  # not in the nicknames package
    assert "ROBERT" in {pt.nickname("BOB", g) for _ in range(50)}  # both directions
    assert pt.nickname("XQZWY", g) == "XQZWY"
    assert pt.nickname("ANNA MARIA", g).endswith(" MARIA")


def test_name_structure_perturbations():
    g = rng(6)
    assert {pt.partial_double_barrel("SMITH-JONES", g) for _ in range(100)} == {"SMITH", "JONES", "SMITH JONES"}
    assert pt.partial_double_barrel("SMITH", g) == "SMITH"
    assert pt.initial_only("ADNAN") == "A"
    assert pt.drop_middle_name("ANNA MARIA") == "ANNA"


def test_dob_errors():
    d = pd.Timestamp("1980-03-07")
    assert pt.dob_day_month_swap(d) == pd.Timestamp("1980-07-03")
    assert pt.dob_day_month_swap(pd.Timestamp("1980-03-25")) == pd.Timestamp("1980-03-25")
    assert pt.dob_jan_first(d) == pd.Timestamp("1980-01-01")
    g = rng(7)
    for _ in range(100):
        out = pt.dob_digit_error(d, g)
        a, b = d.strftime("%Y%m%d"), out.strftime("%Y%m%d")
        assert sum(x != y for x, y in zip(a, b)) == 1
        assert abs(pt.dob_year_off(d, g).year - 1980) == 1
    assert pt.dob_year_off(pd.Timestamp("1980-02-29"), g).day == 28
    assert pd.isna(pt.dob_digit_error(pd.NaT, g))


def test_postcode_typo_and_nino_typo():
    g = rng(8)
    for _ in range(100):
        out = pt.postcode_typo("SW1A 1AA", g)
        assert out == "SW1A1AA" or (len(out) == 8 and jellyfish.hamming_distance(out, "SW1A 1AA") == 1)
        n = pt.nino_typo("AB123456C", g)
        assert jellyfish.hamming_distance(n, "AB123456C") == 1 and n[:2] == "AB" and n[-1] == "C"


def test_random_ninos_are_distinct_and_valid_format():
    ninos = pt.random_ninos(5000, rng(9))
    assert len(set(ninos)) == 5000
    pattern = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$")
    assert all(pattern.match(x) for x in ninos)


# --- people, hard negatives, truth ------------------------------------------------------

def test_clean_people_are_seeded_and_skewed():
    a = pt.make_clean_people(600, 3, "de_DE")
    b = pt.make_clean_people(600, 3, "de_DE")
    pd.testing.assert_frame_equal(a, b)
    assert a["person_id"].is_unique
    assert a["dob"].value_counts().iloc[0] >= 3  # many share a birth date
    assert a["surname"].value_counts().iloc[0] >= 8  # and a surname
    mixed = pt.make_clean_people(400, 3, ["en_GB", "pl_PL", "hi_IN"])
    assert set(mixed["locale"]) == {"en_GB", "pl_PL", "hi_IN"}
    assert not mixed.loc[mixed["locale"] == "pl_PL", "surname"].map(str.isascii).all()  # Polish letters kept
    assert not mixed["forenames"].str.contains(r"[\u0900-\u097F]").any()  # Latin script only


def test_hard_negatives_differ_where_they_should():
    people = pt.make_clean_people(2000, 4, "en_GB")
    out = pt.add_hard_negatives(people, rng(4), pt.NoiseRates(twins=0.05, namesakes=0.05, family=0.05))
    assert out["person_id"].is_unique
    src = people.set_index("person_id")
    twins = out[out["kind"] == "twin"]
    assert len(twins) == 100
    for _, t in twins.iterrows():
        o = src.loc[t["like_person"]]
        assert (t["surname"], t["dob"], t["address"], t["postcode"]) == (o["surname"], o["dob"], o["address"], o["postcode"])
        assert t["forenames"].split(" ")[0] != o["forenames"].split(" ")[0]
    names = out[out["kind"] == "namesake"]
    assert len(names) > 80
    for _, t in names.iterrows():
        o = src.loc[t["like_person"]]
        assert (t["forenames"], t["surname"]) == (o["forenames"], o["surname"]) and t["dob"] != o["dob"]
    fam = out[out["kind"] == "family"]
    assert len(fam) > 80
    for _, t in fam.iterrows():
        o = src.loc[t["like_person"]]
        assert (t["surname"], t["address"]) == (o["surname"], o["address"]) and t["dob"] != o["dob"]


def test_noisy_copies_keep_identity_and_usually_differ():
    people = pt.make_clean_people(1000, 5, "en_GB")
    copies = pt.noisy_copies(people, rng(5))
    assert (copies["person_id"].to_numpy() == people["person_id"].to_numpy()).all()
    changed = (copies[["forenames", "surname", "dob", "address", "postcode"]].astype(str)
               != people[["forenames", "surname", "dob", "address", "postcode"]].astype(str)).any(axis=1)
    assert 0.3 < changed.mean() < 0.95
    none = pt.noisy_copies(people, rng(5), pt.NoiseRates().scaled(0.0))
    assert (none["forenames"].str.split(" ").str[0] == people["forenames"].str.split(" ").str[0]).all()
    single = ~people["surname"].str.contains("-")  # double-barrel dropping is structural, kept
    assert (none["surname"] == people["surname"])[single].all() and (none["dob"] == people["dob"]).all()
    assert (none["surname"] != people["surname"])[~single].any()


def test_placeholders_and_truth_pairs():
    recs = pd.DataFrame({"record_id": ["a", "b", "c", "d"], "person_id": [1, 1, 2, 1],
                         "forenames": ["X"] * 4, "dob": pd.to_datetime(["2000-01-02"] * 4)})
    assert pt.truth_pairs(recs) == {("a", "b"), ("a", "d"), ("b", "d")}
    right = pd.DataFrame({"record_id": ["r1", "r2"], "person_id": [2, 3]})
    assert pt.truth_pairs(recs, right) == {("c", "r1")}
    all_hit = pt.add_placeholders(recs, rng(0), pt.NoiseRates(placeholder_dob=1.0, placeholder_forename=1.0))
    assert (all_hit["dob"] == pt.PLACEHOLDER_DOB).all() and (all_hit["forenames"] == "UNKNOWN").all()


def test_build_sets_truth_matches_the_hidden_identity():
    sets = pt.build_sets(11, scale=0.05)
    assert {"dedupe_de", "link_uk", "dedupe_uk"} <= set(sets)
    d = sets["dedupe_de"]
    assert d.right is None and list(d.fields) == ["forenames", "surname", "dob"]
    assert d.left["record_id"].is_unique
    by_id = d.left.set_index("record_id")["person_id"]
    assert all(by_id[a] == by_id[b] and a < b for a, b in d.truth)
    assert len(d.truth) == d.left["person_id"].duplicated().sum()  # one copy per duplicated person
    link = sets["link_uk"]
    lp = link.left.set_index("record_id")["person_id"]
    rp = link.right.set_index("record_id")["person_id"]
    assert len(link.truth) == len(set(lp) & set(rp)) == round(3000 * 0.05)
    assert all(lp[a] == rp[b] for a, b in link.truth)
    assert 0.25 < link.left["nino"].notna().mean() < 0.55
    assert set(link.fields) == {"forenames", "surname", "dob", "postcode", "address", "nino"}


# --- Splink baseline -----------------------------------------------------------------------

def test_score_sweeps_thresholds_and_orients_pairs():
    from evaluation.splink_baseline import _score

    pred = pd.DataFrame({
        "record_id_l": ["b", "a", "c", "x", "y"], "record_id_r": ["a", "c", "d", "z", "w"],
        "source_dataset_l": ["s"] * 5, "match_probability": [0.95, 0.6, 0.4, 0.3, 0.2],
    })
    truth = {("a", "b"), ("c", "d"), ("q", "r")}
    res = _score(pred, truth, True, "s", 1.0)
    assert res.pairs_at_half == 2 and res.precision_at_half == 0.5 and res.recall_at_half == pytest.approx(1 / 3)
    assert res.best_threshold == 0.4 and res.best_f1 == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    # link: a pair whose left side came from the right file is flipped
    link = pd.DataFrame({"record_id_l": ["R1"], "record_id_r": ["L1"], "source_dataset_l": ["right"],
                         "match_probability": [0.9]})
    assert _score(link, {("L1", "R1")}, False, "left", 0.0).f1_at_half == 1.0


def test_splink_baseline_on_a_tiny_set():
    pytest.importorskip("splink")
    from evaluation.splink_baseline import splink_link

    people = pt.make_clean_people(400, 21, "en_GB")
    g = rng(21)
    dups = pt.noisy_copies(people.iloc[:80], g, pt.NoiseRates().scaled(0.5))
    recs = pd.concat([people, dups], ignore_index=True)
    recs.insert(0, "record_id", [f"r{i}" for i in range(len(recs))])
    truth = pt.truth_pairs(recs)
    res = splink_link(recs, None, truth, {"forenames": "name", "surname": "name", "dob": "dob",
                                          "postcode": "postcode_uk"}, max_pairs=2e4)
    assert 0.6 < res.best_f1 <= 1.0 and res.best_f1 >= res.f1_at_half
    assert res.pairs_at_half > 0 and res.seconds > 0
    with pytest.raises(ValueError, match="unknown comparison kind"):
        splink_link(recs, None, truth, {"forenames": "nickname"})


def test_missing_splink_says_to_install_the_bench_extra(monkeypatch):
    import sys

    from evaluation.splink_baseline import splink_link

    for name in ("splink", "splink.comparison_library"):
        monkeypatch.setitem(sys.modules, name, None)  # import of these now fails
    frame = pd.DataFrame({"record_id": ["a"], "surname": ["X"]})
    with pytest.raises(ImportError, match="'bench' extra"):
        splink_link(frame, None, set(), {"surname": "name"})
