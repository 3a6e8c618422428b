"""Robust estimation: constraints, the purest-rule m, λ, the bound and the fit check."""

import numpy as np
import pandas as pd
import pytest

from matching.em import EMSettings, fit_lambda_one_to_one, fit_m, level_weights, project_monotone
from matching.linker import DegenerateFit, LinkInputs, train
from matching.matchtype import COMPARISON_SETTINGS, Linkage, MatchType
from matching.model import FittedModel
from matching.training import caps_for, deterministic_matches, estimate_u, random_pairs


def test_projection_makes_evidence_monotone_and_agreement_positive():
    u = np.array([0.01, 0.02, 0.07, 0.9])
    m = np.array([0.2, 0.5, 0.005, 0.295])  # "close" beats "exact"; level 2 counts against a match
    p = project_monotone(m, u)
    w = np.log2(p / u)
    assert np.all(np.diff(w) <= 1e-9), w  # never rises from one level to the next
    assert np.all(w[:-1] >= -1e-9), w  # agreement is never evidence against
    assert abs(p.sum() - 1) < 1e-9


def test_a_level_held_at_zero_takes_no_mass_from_different_unless_it_is_a_near_miss():
    """u of a weak agreement level ("same postcode district") can be a fifth of random pairs.
    Lifting its m to u used to empty "different" (a different address at −19.5 bits on FEBRL2,
    one field outweighing an exact surname, date of birth and id); now the floor is on the weight."""
    u = np.array([0.01, 0.2, 0.79])  # exact, weak agreement, different
    m = np.array([0.9, 0.01, 0.09])
    kept = project_monotone(m, u, lift=False)
    assert kept[-1] > 0.05 and abs(kept.sum() - 1) < 1e-9
    w = level_weights(kept, u)
    assert w[1] == 0.0 and w[0] > 0 and w[-1] > -4, w  # agreement floored at 0; "different" a few bits
    assert np.all(np.diff(w) <= 1e-9), w
    lifted = project_monotone(m, u)  # a near miss (same initial) still takes its lift out of "different"
    assert lifted[1] >= u[1] - 1e-12 and lifted[-1] < 1e-3


def test_the_household_model_keeps_agreement_that_counts_against():
    """Only a model whose u comes from random pairs floors agreement at 0 (and says so in its JSON)."""
    from matching.comparisons import date_of_birth

    comp = date_of_birth()
    n = len(comp.levels)
    m, u = np.full(n, 1.0 / n), np.full(n, 1.0 / n)
    m[-2], u[-2] = 0.01, 0.3  # "same year": rarer for one person's records than for two residents
    m, u = m / m.sum(), u / u.sum()
    floored = FittedModel([comp], [m], [u], 0.1)
    household = FittedModel([comp], [m], [u], 0.1, agreement_floor=False)
    assert floored.weights()[0][-2] == 0.0 and household.weights()[0][-2] < -3
    again = FittedModel.from_json(household.to_json(), [comp])
    assert not again.agreement_floor and again.weights()[0][-2] < -3
    saved_before = {k: v for k, v in floored.to_json().items() if k != "agreement_floor"}
    assert not FittedModel.from_json(saved_before, [comp]).agreement_floor  # old models scored as they were


def test_projection_keeps_an_already_monotone_m():
    u = np.array([0.01, 0.09, 0.9])
    m = np.array([0.8, 0.15, 0.05])
    np.testing.assert_allclose(project_monotone(m, u), m, atol=1e-6)


def test_fit_m_with_u_fixed_recovers_m_and_lambda():
    rng = np.random.default_rng(3)
    n, lam = 100_000, 0.05
    m_true = [np.array([0.85, 0.1, 0.05]), np.array([0.8, 0.15, 0.05]), np.array([0.9, 0.1])]
    u_true = [np.array([0.01, 0.04, 0.95]), np.array([0.02, 0.08, 0.9]), np.array([0.03, 0.97])]
    match = rng.random(n) < lam
    g = np.empty((n, 3), dtype=np.int8)
    for k in range(3):
        g[match, k] = rng.choice(len(m_true[k]), size=match.sum(), p=m_true[k])
        g[~match, k] = rng.choice(len(u_true[k]), size=(~match).sum(), p=u_true[k])
    start = [[np.full(len(x), 1 / len(x)) for x in m_true]]
    r = fit_m(g, [3, 3, 2], u_true, start, [0, 1, 2], EMSettings(prior_strength=0))
    assert abs(r.lam - lam) < 0.005
    for k in range(3):
        np.testing.assert_allclose(r.m[k], m_true[k], atol=0.02)


def test_lambda_from_exact_agreement_counts_pairs_by_model_recall():
    m = [np.array([0.5, 0.5]), np.array([0.8, 0.2])]
    g = np.array([[0, 0], [0, 0], [1, 0], [0, -1]], dtype=np.int8)
    # two pairs agree on both (each counts 1/(0.5*0.8)); one disagrees; one has a single field
    assert deterministic_matches(g, m) == pytest.approx(2 / 0.4)


def test_lambda_asks_for_exact_agreement_only_where_most_matches_agree_exactly():
    """Every duplicate has one change, nine in ten a near-miss address (exact / near / different):
    no pair agrees exactly on all five comparisons, so exact agreement everywhere counted none;
    asking the address only for evidence of a match (exact or near) counts them all."""
    rng = np.random.default_rng(0)
    n = 1000
    g = np.zeros((n, 5), dtype=np.int8)
    changed = np.where(rng.random(n) < 0.9, 4, rng.integers(0, 4, n))
    g[np.arange(n), changed] = 1
    m = [np.bincount(g[:, k], minlength=3 if k == 4 else 2) / n for k in range(5)]
    u = [np.array([0.01, 0.99])] * 4 + [np.array([0.001, 0.01, 0.989])]
    assert m[4][0] < 0.5 < min(mk[0] for mk in m[:4])
    assert deterministic_matches(g, m) == 0  # exact on all five (as before)
    assert deterministic_matches(g, m, u) == pytest.approx(n, rel=0.05)
    g[:5, 4] = 2  # a pair that disagrees on the address never counts
    assert deterministic_matches(g, m, u) == pytest.approx(deterministic_matches(g[5:], m, u))
    # nor does a level that is no evidence (m <= u), e.g. "same district"
    assert deterministic_matches(g, m, [*u[:4], np.array([0.001, 0.95, 0.049])]) == deterministic_matches(g, m)
    # a comparison that, by the model, most matches disagree on stays exact (as before): relaxed, it
    # would count every pair that merely comes close on it (namesakes with another birthday)
    wrong = [*m[:4], np.array([0.03, 0.02, 0.95])]
    assert deterministic_matches(g, wrong, u) == deterministic_matches(g, wrong)


def test_lambda_where_every_duplicate_has_one_change_counts_pairs_off_by_one_typo():
    """RLdata: names and a date of birth, every duplicate with one error in one field. No pair
    agrees exactly on all three, so the rule counted none, λ fell to its floor and nothing was
    ever flagged (F1 0 on RLdata500). Under MIN_RULE_PAIRS pairs, all but one comparison must
    agree and the one left be a typo (evidence for a match); namesakes with another birthday
    ("different", evidence against) still never count."""
    from matching.training import MIN_RULE_PAIRS

    rng = np.random.default_rng(4)
    n = 50
    g = np.zeros((n, 3), dtype=np.int8)  # exact / typo / different
    g[np.arange(n), rng.integers(0, 3, n)] = 1
    namesakes = np.zeros((200, 3), dtype=np.int8)
    namesakes[:, 2] = 2
    both = np.vstack([g, namesakes])
    m = [np.array([0.7, 0.25, 0.05])] * 3
    u = [np.array([0.01, 0.005, 0.985])] * 3
    assert deterministic_matches(both, m) == 0  # the strict rule: none
    got = deterministic_matches(both, m, u)
    assert got == pytest.approx(n / (0.7 ** 3 + 3 * 0.25 * 0.7 ** 2))  # each counts 1 / P(rule | match)
    assert 0.5 * n < got < 1.5 * n
    assert deterministic_matches(namesakes, m, u) == 0
    # with enough pairs meeting the strict rule, it alone counts (as before)
    exact = np.zeros((MIN_RULE_PAIRS, 3), dtype=np.int8)
    assert deterministic_matches(np.vstack([exact, both]), m, u) == pytest.approx(MIN_RULE_PAIRS / 0.7 ** 3)


def test_u_of_a_salted_level_is_measured_among_strangers_not_a_persons_own_records(monkeypatch):
    """A small file where a tenth of people appear twice with a typo'd surname: their two records
    share the surname filter's salt (year of birth, initial), so among pairs sharing a salt they are
    common, and "near spelling" looked common among strangers (u 0.03 here, 0.049 on FEBRL1, where
    strangers give about 0.0005). Among same-salt pairs of different birthdays it is as rare as between strangers."""
    from matching import training
    from matching.comparisons import Side

    rng = np.random.default_rng(5)
    n = 2000
    people = pd.DataFrame({"forenames": rng.choice(["ANNA", "BEN", "CARL", "DORA", "EMMA", "FRED"], n),
                           "surname": rng.choice(["".join(w) for w in rng.choice(list("BCDFGHKLMNPRSTAEIOU"), (300, 10))], n),
                           "dob": pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 20000, n), "D")})
    twice = people.sample(n // 10, random_state=5).assign(surname=lambda d: d["surname"] + "E")
    frame = _pseudo(pd.concat([people, twice], ignore_index=True))
    side = Side(frame)
    surname = COMPARISON_SETTINGS.validate_python({"use": "name", "field": "surname"}).build()
    near = [lv.label for lv in surname.levels].index("near spelling")

    def u_near() -> float:
        fresh = random_pairs(side, side, True, 20_000, 0)  # estimate_u keeps its same-salt pairs per pair set
        return float(estimate_u([surname], fresh, surname.levels_of(fresh)[:, None], True)[0][near])

    strangers = u_near()
    assert strangers < 0.005
    monkeypatch.setattr(training, "other_birthdays", lambda pairs: pairs)  # every same-salt pair, as before
    assert u_near() > max(0.02, 10 * strangers)


def _people(n: int, seed: int) -> pd.DataFrame:
    """Records with forename, surname and dob; a tenth of people appear twice, with a typo."""
    rng = np.random.default_rng(seed)
    first = np.array(["ANNA", "BEN", "CARL", "DORA", "EMMA", "FRED", "GINA", "HUGO", "IRIS", "JACK", "KATE",
                      "LEON", "MAYA", "NOEL", "OLGA", "PAUL", "ROSA", "SAUL", "TINA", "VERA"])
    last = np.array([f"{a}{b}SON" for a in "BCDFGHKLMNPRST" for b in "AEIOU"])
    df = pd.DataFrame({"forenames": rng.choice(first, n), "surname": rng.choice(last, n),
                       "dob": pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 20000, n), "D")})
    dup = df.sample(n // 10, random_state=seed).copy()
    dup["surname"] = dup["surname"].str[:-1] + "N"
    return pd.concat([df, dup], ignore_index=True)


def _pseudo(frame: pd.DataFrame) -> pd.DataFrame:
    from evaluation.labelled import canonical, pseudonymise_for_eval, throwaway_keyring

    frame = frame.assign(rid=[f"r{i}" for i in range(len(frame))], dob=frame["dob"].dt.strftime("%Y-%m-%d"))
    canon = canonical(frame, {"forenames": ["forenames"], "surname": ["surname"], "dob": ["dob"]}, "rid", "eval_left")
    return pseudonymise_for_eval(canon, throwaway_keyring())


def _match_type(linkage: Linkage) -> MatchType:
    return MatchType.model_construct(id="t", title="t", reason="", left="eval_left", right="eval_left",
                                     scope="any", link="same_person", conditions=[], priority=1,
                                     linkage=linkage, person=None)


LINKAGE = dict(blocking=[["t_dob"], ["t_surname"], ["t_forename", "t_yob"]],
               comparisons=[COMPARISON_SETTINGS.validate_python(c) for c in (
                   {"use": "name", "field": "forename"}, {"use": "name", "field": "surname"}, {"use": "date_of_birth"})], threshold=0.5, m_from="em")


def test_lambda_when_linking_is_a_share_of_all_pairs_so_namesakes_among_candidates_do_not_inflate_it():
    """Two files of 20,000 and 60,000 records: 250 true pairs (+30 bits) and, among the blocked
    candidates, 75,000 namesake pairs (same forename and surname, another birthday: +5 bits under
    u from random pairs). With λ as a share of the candidates, the namesakes took it to the per-record
    cap (thousands of "matches"); as a share of all pairs, they stay what they are."""
    rng = np.random.default_rng(3)
    n_left, n_right, true_pairs, namesakes = 20_000, 60_000, 250, 75_000
    li = np.concatenate([np.arange(true_pairs), rng.integers(0, n_left, namesakes)])
    ri = np.concatenate([np.arange(true_pairs), rng.integers(0, n_right, namesakes)])
    llr = np.log(2.0) * np.concatenate([np.full(true_pairs, 30.0), np.full(namesakes, 5.0)])
    expected = fit_lambda_one_to_one(llr, li, ri, population=n_left * n_right)
    assert 240 <= expected <= 260, expected
    # the same candidates as the whole population (every pair was a candidate): the namesakes
    # now are a large share of all pairs and EM rightly counts some of them
    assert fit_lambda_one_to_one(llr, li, ri, population=len(llr)) > 1_000


def test_lambda_when_linking_finds_every_match_of_two_files_that_hold_each_person_once():
    """FEBRL4-like: every left record has its match on the right (strong evidence), and weak
    look-alikes around them; the one-to-one cap keeps the count at the number of records."""
    rng = np.random.default_rng(4)
    n = 5_000
    li = np.concatenate([np.arange(n), rng.integers(0, n, 50_000)])
    ri = np.concatenate([np.arange(n), rng.integers(0, n, 50_000)])
    llr = np.log(2.0) * np.concatenate([rng.uniform(20, 40, n), rng.uniform(-20, 2, 50_000)])
    expected = fit_lambda_one_to_one(llr, li, ri, population=n * n)
    assert 4_950 <= expected <= 5_000, expected


def test_trained_model_passes_its_fit_check_and_is_bounded():
    data = _pseudo(_people(4000, 1))
    mt = _match_type(Linkage(**LINKAGE))
    model = train(mt, LinkInputs(mt, {"eval_left": data})).linkage
    check = model.fit_check
    assert check.passed and not check.fallback, check
    assert check.random_pairs_flagged <= 5 * check.random_pairs_expected + 3
    for w, comp in zip(model.weights(), model.comparisons):  # agreement never counts against
        assert np.all(np.diff(w) <= 1e-9) and np.all(w[:comp.agreeing] >= -1e-9)
    # one field alone (even the strongest) never decides against disagreement on every other
    w = model.weights()
    prior = np.log2(model.lam / (1 - model.lam))
    for k, comp in enumerate(model.comparisons):
        top = min(w[k][0] + 20, model.caps.get(comp.name, np.inf))  # + a rare value's TF bonus
        others = sum(w[j][-1] for j in range(len(w)) if j != k)
        assert prior + top + others < np.log2(0.5 / 0.5), comp.name


def test_caps_hold_a_strong_single_field_below_threshold():
    from matching.comparisons import date_of_birth, name

    comps = [name("forename"), name("surname"), date_of_birth()]
    m = [np.array([0.9, 0.02, 0.01, 0.02, 0.02, 0.01, 0.01, 0.01]), np.array([0.9, 0.02, 0.01, 0.02, 0.02, 0.01, 0.01, 0.01]),
         np.array([0.9, 0.02, 0.03, 0.02, 0.03])]
    u = [np.array([1e-3, 1e-4, 1e-4, 1e-5, 1e-3, 1e-3, 1e-5, 0.99]), np.array([1e-3, 1e-4, 1e-4, 1e-5, 1e-3, 1e-3, 1e-5, 0.99]),
         np.array([1e-7, 1e-7, 1e-4, 1e-2, 0.99])]
    model = FittedModel(comps, m, u, lam=1e-2)
    caps = caps_for(model, 0.5)
    assert "dob" in caps and caps["dob"] < np.log2(0.9 / 1e-7)


def _same_year_cluster(linkage: Linkage) -> list[np.ndarray]:
    """The issue's failure as an m: names mostly different within the "match" class, which is
    really "born in the same year"."""
    out = []
    for comp in linkage.built():
        labels = [lv.label for lv in comp.levels]
        m = np.full(len(labels), 0.1 / (len(labels) - 1))
        m[labels.index("same year") if "same year" in labels else -1] = 0.9
        if "same year" in labels:
            m[-1] = 0.07
        out.append(m / m.sum())
    return out


def test_degenerate_fit_is_caught_not_silently_flagged(monkeypatch):
    """EM forced onto 'same birth year' as the match cluster, and the documented priors made
    just as wrong: the fit check refuses both and training raises."""
    import matching.training as linker

    data = _pseudo(_people(3000, 2))
    linkage = Linkage(**LINKAGE)
    mt = _match_type(linkage)

    def degenerate_m():
        return _same_year_cluster(linkage), []

    monkeypatch.setattr(linker, "_estimate_m", lambda mt, lk, inp, u: degenerate_m())
    monkeypatch.setattr(Linkage, "m_starts", lambda self: degenerate_m()[0])
    with pytest.raises(DegenerateFit, match="degenerate"):
        train(mt, LinkInputs(mt, {"eval_left": data}))


def test_degenerate_fit_falls_back_to_documented_priors(monkeypatch):
    import matching.training as linker

    data = _pseudo(_people(3000, 3))
    linkage = Linkage(**LINKAGE)
    mt = _match_type(linkage)
    bad = _same_year_cluster(linkage)
    monkeypatch.setattr(linker, "_estimate_m", lambda mt, lk, inp, u: (bad, []))
    model = train(mt, LinkInputs(mt, {"eval_left": data})).linkage
    assert model.fit_check.fallback and not model.fit_check.passed
    assert model.fit_check.reasons
    assert model.to_json()["fit_check"]["fallback"] is True


def test_a_misplaced_comparison_key_is_an_error_naming_it():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="same_year"):
        Linkage(blocking=[["t_nino"]], comparisons=[{"use": "address", "same_year": False}])
    with pytest.raises(ValidationError, match="no level"):
        Linkage(blocking=[["t_nino"]], comparisons=[{"use": "name", "field": "surname", "m": {"exactly": 0.9}}])


def test_level_thresholds_and_starting_m_come_from_yaml():
    lk = Linkage(blocking=[["t_surname"]], comparisons=[
        {"use": "name", "field": "surname", "near": 0.9, "m": {"exact": 0.7}}])
    comp = lk.built()[0]
    near = next(lv for lv in comp.levels if lv.label == "near spelling")
    assert near.test.threshold == 0.9 and "0.9" in near.description
    assert lk.m_starts()[0][0] == 0.7


def test_u_among_non_matches_removes_the_matches_random_pairs_include():
    from matching.training import U_KEEP, without_matches

    lam = 1e-4
    m = [np.array([0.6, 0.3, 0.1])]
    # random pairs: non-matches agree exactly 1 in 100,000, plus the matches' share λ·m
    u_random = [np.array([1e-5 + lam * 0.6, 1e-3 + lam * 0.3, 1 - 1e-5 - 1e-3 - lam * 0.9])]
    u = without_matches(u_random, m, lam)[0]
    assert u[0] == pytest.approx(max(1e-5, U_KEEP * u_random[0][0]), rel=0.05)
    assert u[0] < u_random[0][0] / 3 and abs(u.sum() - 1) < 1e-9
    # a λ·m larger than what was measured (noise) never drives u below the kept share
    noisy = without_matches([np.array([1e-6, 1e-3, 1 - 1e-3 - 1e-6])], m, lam)[0]
    assert noisy[0] >= U_KEEP * 1e-6 * 0.99


def test_dedupe_rank_orders_records_as_the_council_and_record_id_tuple():
    """The left of a deduplicated pair is the smaller (council, record id), even where one council
    code is a prefix of another."""
    refs = [("E090", "ref:b"), ("E09", "ref:z"), ("E090", "ref:a"), ("E09", "ref:a"), ("E0900", "ref:0")]
    frame = pd.DataFrame({"council": [c for c, _ in refs], "record_id": [r for _, r in refs],
                          "t_dob": np.arange(1, len(refs) + 1, dtype=np.int64)})
    inputs = LinkInputs(_match_type(Linkage(**LINKAGE)), {"eval_left": frame})
    by_rank = [refs[i] for i in np.argsort(inputs.rank)]
    assert by_rank == sorted(refs)


def test_a_field_few_records_carry_is_learned_from_the_pairs_that_carry_it():
    """An id on a quarter of people (so on under 20% of every rule's pairs): EM over all of a rule's pairs leaves it
    out, and it used to keep its documented start (differs for 10% of matches, -3.3 bits).
    Learned from the pairs that carry it, a differing id is strong evidence against: here it
    never differs for the same person."""
    from evaluation.labelled import canonical, pseudonymise_for_eval, throwaway_keyring

    rng = np.random.default_rng(5)
    base = _people(4000, 5)
    carries = rng.random(4000) < 0.25
    ids = pd.Series([f"ID{i:06d}" if c else None for i, c in enumerate(carries)], dtype=object)
    duplicated = base.iloc[:4000].sample(400, random_state=5).index  # the rows _people copied
    all_ids = pd.concat([ids, ids.loc[duplicated]], ignore_index=True)  # a copy keeps its id
    frame = base.assign(rid=[f"r{i}" for i in range(len(base))], dob=base["dob"].dt.strftime("%Y-%m-%d"))
    canon = canonical(frame, {"forenames": ["forenames"], "surname": ["surname"], "dob": ["dob"]}, "rid", "eval_left")
    data = pseudonymise_for_eval(canon, throwaway_keyring(), all_ids)
    linkage = Linkage(**{**LINKAGE, "blocking": [["t_dob"], ["t_surname"]], "comparisons": LINKAGE["comparisons"] + [
        COMPARISON_SETTINGS.validate_python({"use": "exact", "column": "t_nino", "name": "nino"})]})
    mt = _match_type(linkage)
    model = train(mt, LinkInputs(mt, {"eval_left": data})).linkage
    assert "nino" not in model.fit_check.m_from_prior
    nino = [c.name for c in model.comparisons].index("nino")
    assert model.m[nino][-1] < 0.03, model.m[nino]  # the documented start is 0.1
    assert model.weights()[nino][-1] < -5.0


def test_anchor_pairs_only_lower_the_m_of_a_wholly_different_forename():
    from matching.comparisons import name
    from matching.training import MIN_ANCHOR_PAIRS, anchor_levels, anchored_m

    forename = name("forename", initial=True)
    assert forename.agreeing == [lv.label for lv in forename.levels].index("same initial")

    # forename levels: exact, similar, same initial, different; u as among random pairs
    u = np.array([0.005, 0.01, 0.06, 0.925])
    em_m = np.array([0.70, 0.10, 0.06, 0.14])  # EM: same initial held at u (0 bits), different at 14%
    # 400 anchor pairs: 2% share only an initial, 5% wholly different
    counts = np.array([320.0, 52.0, 8.0, 20.0])
    m = anchored_m(em_m, u, agreeing=2, counts=counts)
    w = np.log2(m / u)
    assert abs(m[3] - 0.05) < 0.002  # "different" lowered to the anchors' bound: w about -4.2, not -2.7
    assert w[2] >= -1e-9  # the near miss keeps EM's neutral weight
    assert np.all(w[:2] > 0) and abs(m.sum() - 1) < 1e-9 and np.all(np.diff(w) <= 1e-9)
    # the anchors' share only ever lowers EM's m for "different" (anchors include twins)
    low = anchored_m(np.array([0.78, 0.10, 0.06, 0.001]) / 0.941, u, 2, counts)
    assert low[3] < 0.0015
    # ... but never below what no anchor there would give: EM's m of 0 is no veto
    none = anchored_m(np.array([0.80, 0.10, 0.10, 1e-9]), u, 2, np.array([320.0, 52.0, 28.0, 0.0]))
    assert none[3] == pytest.approx(0.5 * u[3] / 400.5) and np.log2(none[3] / u[3]) > -10
    # too few anchors: EM's m stands
    np.testing.assert_allclose(anchored_m(em_m, u, 2, counts * (MIN_ANCHOR_PAIRS - 1) / counts.sum()), em_m)
    # anchors: forename (0) present, every other present field exact, at least three of them
    g = np.array([[3, 0, 0, 0, -1],   # anchor (NINO missing)
                  [2, 0, 0, 0, 0],    # anchor
                  [3, 0, 0, -1, -1],  # only two others present: not an anchor
                  [3, 0, 1, 0, 0],    # the date of birth is close, not exact: not an anchor
                  [-1, 0, 0, 0, 0]], dtype=np.int8)  # forename missing: teaches nothing
    assert anchor_levels(g, 0).tolist() == [True, True, False, False, False]


def test_a_rule_with_two_free_comparisons_can_only_lower_how_often_matches_differ():
    from matching.training import Taught, bounded_difference

    start = np.array([0.9, 0.06, 0.04])
    weak = Taught(lam=0.01, m=np.array([0.6, 0.08, 0.32]), free=2)
    out = bounded_difference(weak, start)
    assert out[-1] == pytest.approx(0.04) and out.sum() == pytest.approx(1.0)
    assert out[0] / out[1] == pytest.approx(0.6 / 0.08)  # the agreeing levels keep their proportions
    assert bounded_difference(Taught(0.01, np.array([0.97, 0.02, 0.01]), 2), start)[-1] == pytest.approx(0.01)
    assert bounded_difference(Taught(0.01, weak.m, 3), start)[-1] == pytest.approx(0.32)  # identified: kept


def test_namesakes_do_not_teach_that_matches_often_have_another_birthday():
    """Names and dates of birth only, with namesakes (same forename and surname, another date of
    birth): blocked on the surname, EM has the forename alone to tell the classes apart and took
    the namesakes for matches with a wrong birthday (m of "different" 0.13 here, 0.32 on seed 11's
    set at full size), which then flagged rare-named namesakes."""
    from evaluation.labelled import evaluate_set
    from evaluation.suite import perturbation_tasks

    task = next(t for t in perturbation_tasks(13, scale=0.5) if t.name == "dedupe_de")
    ev = evaluate_set(task)
    dob = next(c for c in ev.model["comparisons"] if c["name"] == "dob")
    assert dob["levels"][-1]["m"] < 0.06, dob["levels"][-1]
    assert ev.metrics.precision > 0.955, ev.metrics.line()
