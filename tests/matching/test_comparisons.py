import numpy as np
import pandas as pd

from matching.comparisons import NULL, Pairs, Side, address, date_of_birth, exact, name, postcode


def _levels(comparison, left_records, right_records, make_frame):
    left, right = Side(make_frame(left_records)), Side(make_frame(right_records))
    n = len(left_records)
    labels = [lv.label for lv in comparison.levels]
    got = comparison.levels_of(Pairs(left, right, np.arange(n), np.arange(n)))
    return ["missing" if g == NULL else labels[g] for g in got]


def test_surname_levels(make_frame):
    left = [{"surname": "SMITH"}, {"surname": "JOHNSTONE"}, {"surname": "SMITH", "prev_surname": "JONES"},
            {"surname": "SMITH"}, {"surname": None}, {"surname": "WILLIAMS", "forename": "DAVID"}]
    right = [{"surname": "SMITH"}, {"surname": "JOHNSTON"}, {"surname": "JONES"},
             {"surname": "OKAFOR"}, {"surname": "SMITH"}, {"surname": "DAVID", "forename": "WILLIAMS"}]
    got = _levels(name("surname"), left, right, make_frame)
    assert got == ["exact", "near spelling", "previous surname", "different", "missing", "swapped"]


def test_a_forename_that_equals_the_surname_is_not_a_swap(make_frame):
    """AHMED AHMED and GEORGE AHMED: the first's forename is the second's surname, but their
    surnames agree, so nothing is swapped (and a wholly different forename stays "different",
    which the forename veto acts on). A true swap, even with a typo on one side, still is."""
    left = [{"forename": "AHMED", "surname": "AHMED"}, {"forename": "SMITH", "surname": "JOHN"},
            {"forename": "SMITH", "surname": "JOHN"}, {"forename": "MOHAMMED", "surname": "MOHAMMED"}]
    right = [{"forename": "GEORGE", "surname": "AHMED"}, {"forename": "JOHN", "surname": "SMITH"},
             {"forename": "JON", "surname": "SMITH"}, {"forename": "OLIVER", "surname": "MOHAMMED"}]
    assert _levels(name("forename"), left, right, make_frame) == ["different", "swapped", "swapped", "different"]
    assert _levels(name("surname"), left, right, make_frame)[:2] == ["exact", "swapped"]
    assert _levels(name("surname"), right, left, make_frame)[0] == "exact"


def test_two_different_initials_are_not_one_edit_apart(make_frame):
    """B and M (forenames given as initials) differ by one keystroke like JON and JOHN do, but
    they are two people's initials: "different", which the forename veto acts on. An initial
    against a spelled-out name is still "initial only"."""
    from anonymise.encodings import edit_neighbourhoods
    from councilmatch.contracts import EDIT_BYTES

    def with_edits(records: list[dict], dataset: str = "tenancy") -> pd.DataFrame:
        frame = make_frame(records, dataset)
        names = pd.Series([r["forename"] for r in records])
        rows = edit_neighbourhoods(names, b"k" * 32, EDIT_BYTES["ed_forename"] // 4)
        return frame.assign(ed_forename=[row.tobytes() for row in rows])

    left = [{"forename": "B"}, {"forename": "JON"}, {"forename": "B"}]
    right = [{"forename": "M"}, {"forename": "JOHN"}, {"forename": "BRADLEY"}]
    assert _levels(name("forename", initial=True), left, right, with_edits) == ["different", "one edit", "initial only"]


def test_multi_part_surnames(make_frame):
    left = [{"surname": "SMITH JONES"}, {"surname": "VAN DER BERG"}, {"surname": "GARCIA LOPEZ"},
            {"surname": "SMITH JONES"}, {"surname": "SMITH"}, {"surname": "DE SOUZA"}]
    right = [{"surname": "JONES"}, {"surname": "BERG"}, {"surname": "LOPEZ GARCIA"},
             {"surname": "BROWN JONES"}, {"surname": "JONES"}, {"surname": "SOUZA"}]
    got = _levels(name("surname"), left, right, make_frame)
    assert got == ["part of the surname"] * 4 + ["different", "part of the surname"]


def test_forename_nickname_and_phonetic(make_frame):
    left = [{"forename": "BILL", "nickname_of": "WILLIAM"}, {"forename": "CATHERINE"}]
    right = [{"forename": "WILLIAM"}, {"forename": "CATHRYN"}]
    got = _levels(name("forename"), left, right, make_frame)
    assert got[0] == "nickname"
    assert got[1] in ("sounds alike", "similar")


def test_dob_levels(make_frame):
    left = [{"dob": "1980-03-04"}] * 7 + [{}]
    right = [{"dob": "1980-03-04"}, {"dob": "1980-04-03"}, {"dob": "1980-11-20"}, {"dob": "1975-03-04"},
             {"dob": "1980-03-14"}, {"dob": "1980-09-04"}, {"dob": "1975-11-20"}, {"dob": "1980-03-04"}]
    assert _levels(date_of_birth(), left, right, make_frame) == [
        "exact", "transposed", "same year", "one part differs", "one part differs", "one part differs",
        "different", "missing"]


def test_a_first_of_january_birthday_is_the_year_known_not_a_different_date(make_frame):
    """A system that knows only the year of birth writes 1 January: against the other record's
    date in that year it is its own level, not "different" (which, without the year level,
    counts hard against a match), either way round; 1 January of another year is different."""
    left = [{"dob": "1956-01-01"}, {"dob": "1956-08-17"}, {"dob": "1957-01-01"}, {"dob": "1956-01-01"}]
    right = [{"dob": "1956-08-17"}, {"dob": "1956-01-01"}, {"dob": "1956-08-17"}, {"dob": "1956-01-01"}]
    for comparison in (date_of_birth(), date_of_birth(same_year=False)):
        assert _levels(comparison, left, right, make_frame) == [
            "1 January, same year", "1 January, same year", "different", "exact"]


def test_address_and_postcode_levels(make_frame):
    left = [{"address": "12 HIGH ROAD", "postcode": "E1 6AN"}, {"address": "12 HIGH ROAD", "postcode": "E1 6AN"},
            {"address": "12 HIGH ROAD", "postcode": "E1 6AN"}, {"address": "1 ACACIA AVENUE", "postcode": "N1 1AA"}]
    right = [{"address": "12 HIGH ROAD", "postcode": "E1 6AN"}, {"address": "12 HIGH ROADD", "postcode": "E1 6AN"},
             {"address": "99 LOW STREET", "postcode": "E1 6XX"}, {"address": "77 ZEBRA CLOSE", "postcode": "SE9 9ZZ"}]
    got = _levels(address(), left, right, make_frame)
    assert got[:2] == ["exact", "near"] and got[3] == "different"
    assert _levels(postcode(), left, right, make_frame) == ["exact", "exact", "same sector", "different"]


def test_exact_and_every_level_explained(make_frame):
    got = _levels(exact("t_nino", "nino"), [{"nino": "AB123456C"}, {"nino": "AB123456C"}, {}],
                  [{"nino": "AB123456C"}, {"nino": "ZZ999999Z"}, {"nino": "AB123456C"}], make_frame)
    assert got == ["exact", "different", "missing"]
    for comp in (name("forename"), name("surname"), date_of_birth(), address(), postcode(), exact("t_uprn"),
                 exact("t_nino", "nino", edits="ed_nino")):
        assert comp.levels[-1].test is None  # the last level catches everything else
        assert all(len(lv.description) > 10 for lv in comp.levels)


def test_a_mistyped_nino_is_one_edit_not_different(make_frame):
    """A digit changed, dropped or two swapped is a keying error, not another person's number."""
    left = [{"nino": "AB123456C"}] * 5
    right = [{"nino": "AB123465C"}, {"nino": "AB123457C"}, {"nino": "AB12456C"}, {"nino": "AB123456C"},
             {"nino": "AB654321C"}]
    got = _levels(exact("t_nino", "nino", edits="ed_nino"), left, right, make_frame)
    assert got == ["one edit", "one edit", "one edit", "exact", "different"]


def _encoded_side(rng: np.random.Generator, values: dict, n: int, distinct: int, within: bool) -> Side:
    """A side whose Bloom and edit columns repeat ``distinct`` of ``values``, optionally a view
    into a larger pool side, as the training sides are."""
    import pandas as pd

    pick = rng.integers(0, distinct, n + (7 if within else 0))
    frame = pd.DataFrame({c: [bytes(v) for v in m[pick]] for c, m in values.items()})
    if not within:
        return Side(frame)
    pool = Side(frame)
    return Side(frame.iloc[7:].reset_index(drop=True), within=(pool, 7))


def test_encoding_tests_once_per_distinct_pair_of_values_give_every_pair_its_answer() -> None:
    """Dice and one-edit are computed once per distinct pair of values (Pairs.per_distinct):
    each pair must still get exactly what testing it alone gives."""
    from anonymise.encodings import shares_entry

    rng = np.random.default_rng(3)
    values = {c: rng.integers(0, 256, (40, 64), dtype=np.uint8) for c in ("bf_surname", "ed_surname")}
    values["bf_surname"][0] = 0  # one value is "missing"
    values["ed_surname"][:, 40:] = 0  # padding, as short names leave
    values["ed_surname"][1:20, 0:4] = values["ed_surname"][0, 0:4]  # neighbours sharing one entry
    left = _encoded_side(rng, values, 3_000, 40, within=True)
    right = _encoded_side(rng, values, 2_000, 25, within=False)
    li, ri = rng.integers(0, left.n, 20_000), rng.integers(0, right.n, 20_000)
    pairs = Pairs(left, right, li, ri)
    lm, lp = left.bloom("bf_surname")
    rm, rp = right.bloom("bf_surname")
    common = np.bitwise_count(lm[li] & rm[ri]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where((lp[li] > 0) & (rp[ri] > 0), 2.0 * common / (lp[li] + rp[ri]), np.nan)
    np.testing.assert_allclose(pairs.dice("bf_surname"), dice.astype(np.float32), equal_nan=True)
    edit = shares_entry(left.bloom("ed_surname")[0][li], right.bloom("ed_surname")[0][ri])
    assert (pairs.share_entry("ed_surname") == edit).all()
    assert edit.any() and not edit.all() and np.isnan(dice).any()


def test_row_codes_never_merge_different_rows(monkeypatch) -> None:
    """Equal codes must mean equal bytes even when the row digest collides (forced here)."""
    from matching import comparisons

    rng = np.random.default_rng(5)
    matrix = rng.integers(0, 4, (500, 12), dtype=np.uint8)  # 12 bytes: not a multiple of 8
    monkeypatch.setattr(comparisons, "_row_digest", lambda words: np.zeros(len(words), np.uint64))
    codes = comparisons._row_codes(matrix)
    rows = {bytes(r) for r in matrix}
    assert len(set(codes.tolist())) >= len(rows)
    for code in set(codes.tolist()):
        assert len({bytes(r) for r in matrix[codes == code]}) == 1
    monkeypatch.undo()
    codes = comparisons._row_codes(matrix)
    assert len(set(codes.tolist())) == len(rows)  # the real digest: one code per distinct row


def test_pairs_over_a_few_rows_compare_the_same_on_sides_cut_down_to_those_rows() -> None:
    """Pairs.compact (an incremental night's pairs touch a few records of the pool): every level
    of every comparison must be what the whole sides give, for a plain side, one whose arrays are
    made already, one that is a view into a training pool, and a dedupe's single side."""
    import pandas as pd

    from matching.model import comparison_vectors
    from tests.matching.conftest import tenancy_population

    frame = tenancy_population(n_people=400, n_double=40, seed=3)[0]
    comps = [name("forename"), name("surname"), date_of_birth(), address(), postcode(),
             exact("t_nino", "nino")]
    rng = np.random.default_rng(7)
    n = len(frame)
    few = rng.choice(n, n // 10, replace=False)
    li, ri = rng.choice(few, 3_000), rng.integers(0, n, 3_000)
    ri[:1_000] = li[:1_000]  # some pairs of a record with itself: every level is met somewhere

    def sides():
        made = Side(frame)
        made.bloom("bf_surname"), made.value_codes("ed_nino")  # arrays the side has made already
        pool = Side(pd.concat([frame.iloc[:5], frame], ignore_index=True))
        return [(Side(frame), Side(frame)), (made, Side(frame)), (Side(frame, within=(pool, 5)), Side(frame))]

    for left, right in sides():
        whole = comparison_vectors(comps, Pairs(left, right, li, ri))
        for lside, rside in ((left, right), (Side(frame), Side(frame))):  # and sides with nothing cached
            cut = Pairs(lside, rside, li, ri).compact()
            assert cut.left.n == len(np.unique(li)) < n  # cut down on the left, not the right
            assert cut.right is rside
            assert (comparison_vectors(comps, cut) == whole).all()
    one = Side(frame)
    li2, ri2 = rng.choice(few, 2_000), rng.choice(few, 2_000)
    whole = comparison_vectors(comps, Pairs(Side(frame), Side(frame), li2, ri2))
    cut = Pairs(one, one, li2, ri2).compact()
    assert cut.left is cut.right and cut.left.n == len(np.union1d(li2, ri2))
    assert (comparison_vectors(comps, cut) == whole).all()
    assert (whole != NULL).any() and len(np.unique(whole[:, 1])) >= 3


def test_a_person_known_by_another_of_their_forenames():
    """One record gives the name a person goes by, or only its initial, where the other spells
    out all their forenames: "another forename", not "different" (which the forename veto acts
    on). A middle initial that happens to be the other's first initial is not one (beside a
    spelled-out name it is chance, about one time in ten)."""
    from evaluation.labelled import canonical, pseudonymise_for_eval, throwaway_keyring

    keyring = throwaway_keyring()

    def side(forenames: list[str]) -> Side:
        frame = pd.DataFrame({"rid": [f"r{i}" for i in range(len(forenames))], "forenames": forenames,
                              "surname": "SMITH"})
        canon = canonical(frame, {"forenames": ["forenames"], "surname": ["surname"]}, "rid", "eval_left")
        return Side(pseudonymise_for_eval(canon, keyring))

    left = ["ROBERT DALE", "E", "M J", "JOHN ALI", "E", "EDWARD", "MAURICE M", "EDWARD J", "DALE"]
    right = ["DALE", "BRYANNA EMMA", "MARY", "PETER ALI", "CASSANDRA E", "EMMA", "MADELEINE B", "PETER J", "DALE"]
    comparison = name("forename")
    labels = [lv.label for lv in comparison.levels]
    got = comparison.levels_of(Pairs(side(left), side(right), np.arange(len(left)), np.arange(len(left))))
    assert [labels[g] for g in got] == ["another forename"] * 5 + ["different"] * 3 + ["exact"]


def test_later_levels_tested_on_the_undecided_pairs_alone_give_the_same_levels(monkeypatch) -> None:
    """``levels_of`` narrows the pairs to those no earlier level took: every level of every
    comparison must be what testing all pairs at every level gives, and the narrowing must happen."""
    from matching import comparisons
    from matching.model import comparison_vectors
    from tests.matching.conftest import tenancy_population

    frame = tenancy_population(n_people=400, n_double=60, seed=4)[0]
    comps = [name("forename", initial=True), name("surname"), date_of_birth(), address(), postcode(),
             exact("t_nino", "nino")]
    rng = np.random.default_rng(11)
    li, ri = rng.integers(0, len(frame), 4_000), rng.integers(0, len(frame), 4_000)
    ri[:2_500] = li[:2_500]  # most pairs agree at the first level, as a blocking rule's do
    tested: list[int] = []
    real = comparisons.Pairs.dice
    monkeypatch.setattr(comparisons.Pairs, "dice", lambda self, column: tested.append(len(self)) or real(self, column))
    narrowed = comparison_vectors(comps, Pairs(Side(frame), Side(frame), li, ri))
    assert tested and max(tested) < len(li), "the later levels still saw every pair"
    monkeypatch.setattr(comparisons, "NARROW_BELOW", 0.0)  # never narrow
    tested.clear()
    whole = comparison_vectors(comps, Pairs(Side(frame), Side(frame), li, ri))
    assert max(tested) == len(li)
    assert (narrowed == whole).all()
    assert len(np.unique(whole[:, 0])) >= 4 and (whole == NULL).any()


def test_a_compacted_pair_batch_scores_as_the_whole_and_copies_no_frame(make_frame):
    """``Pairs.compact`` cuts both sides down to the rows its pairs touch: their levels are the
    whole sides' levels, their encodings come from the parent's rows one column at a time, and
    no side copies its parent's frame (a household shard spent a quarter of its time doing so)."""
    people = [{"forename": f, "surname": s, "dob": d, "address": a, "postcode": "E1 6AN"}
              for f, s, d, a in [("JOHN", "SMITH", "1970-01-02", "1 HIGH ST"), ("JON", "SMYTH", "1970-01-02", "1 HIGH ST"),
                                 ("ANNE", "OKAFOR", "1981-05-06", "2 MILL LANE"), ("ANN", "OKAFOR", "1981-06-05", "2 MILL LN"),
                                 ("MARY", "JONES", "1990-03-04", "3 PARK RD")] * 20]
    left, right = Side(make_frame(people)), Side(make_frame(people[::-1]))
    li, ri = np.array([0, 2, 4, 7]), np.array([3, 1, 95, 90])
    whole = Pairs(left, right, li, ri)
    cut = Pairs(left, right, li, ri).compact()
    assert cut.left is not left and cut.left.n == 4 and cut.right.n == 4
    for comparison in (name("forename"), name("surname"), date_of_birth(), address()):
        assert np.array_equal(comparison.levels_of(cut), comparison.levels_of(whole))
    assert cut.left._frame is None and cut.right._frame is None  # noqa: SLF001
    assert cut.left.frame["t_surname"].tolist() == left.frame["t_surname"].iloc[[0, 2, 4, 7]].tolist()  # on demand
