"""Fields that are not independent: a comparison's evidence among pairs agreeing on what it
depends on (``given``), e.g. a surname among two records at one address."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from matching.comparisons import Pairs
from matching.linker import LinkInputs, train
from matching.matchtype import COMPARISON_SETTINGS, Linkage, MatchType
from matching.model import FittedModel, score


def _households(n_homes: int, seed: int) -> pd.DataFrame:
    """Homes of 2-4 people sharing a surname (and, one home in eight, twins sharing a birthday);
    a fifth of people appear twice with a forename typo."""
    rng = np.random.default_rng(seed)
    first = np.array([a + b for a in ["AN", "BE", "CA", "DO", "EL", "FR", "GI", "HU", "IR", "JA", "KE", "LE",
                                      "MA", "NO", "OL", "PA", "RO", "SA", "TI", "VE"]
                      for b in ["NA", "RT", "LLA", "MON", "VIN"]])
    last = np.array([f"{a}{b}{c}" for a in "BCDFGHKLMNPRST" for b in ["AR", "EL", "IN", "OS", "UM"]
                     for c in ["TON", "WELL", "BY", "FORD"]])
    rows = []
    for h in range(n_homes):
        surname = rng.choice(last)
        street = f"{h + 1} {rng.choice(['HIGH', 'MILL', 'PARK', 'CHURCH'])} {rng.choice(['ROAD', 'STREET', 'LANE'])}"
        postcode = f"N{h % 20 + 1} {h % 9 + 1}{'ABDEFG'[h % 6]}{'HJLNPQ'[(h // 6) % 6]}"
        size = rng.integers(2, 5)
        dobs = pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 25000, size), "D")
        if h % 8 == 0:
            dobs = dobs.where(np.arange(size) > 1, dobs[0])  # twins
        for i in range(size):
            rows.append({"person": f"{h}-{i}", "forenames": rng.choice(first), "surname": surname,
                         "dob": dobs[i], "address": street, "postcode": postcode})
    people = pd.DataFrame(rows)
    dup = people.sample(frac=0.2, random_state=seed).copy()
    dup["forenames"] = dup["forenames"].str[:-1] + "X"
    return pd.concat([people, dup], ignore_index=True)


def _pseudo(frame: pd.DataFrame) -> pd.DataFrame:
    """Pseudonymised under a throwaway key; a ``nino`` column, where the frame has one, is the id."""
    from evaluation.labelled import canonical, pseudonymise_for_eval, throwaway_keyring

    frame = frame.assign(rid=[f"r{i}" for i in range(len(frame))], dob=frame["dob"].dt.strftime("%Y-%m-%d"))
    canon = canonical(frame, {"forenames": ["forenames"], "surname": ["surname"], "dob": ["dob"],
                              "address_lines": ["address"], "postcode": ["postcode"]}, "rid", "eval_left")
    return pseudonymise_for_eval(canon, throwaway_keyring(), frame["nino"] if "nino" in frame else None)


def _linkage(given: bool) -> Linkage:
    depends = {"given": ["t_address"]} if given else {}
    return Linkage(blocking=[["t_dob"], ["t_forename", "t_yob"]], comparisons=[
        COMPARISON_SETTINGS.validate_python(c) for c in (
            {"use": "name", "field": "forename"}, {"use": "name", "field": "surname", **depends},
            {"use": "date_of_birth", **depends}, {"use": "address"})], threshold=0.5, m_from="em")


def _inputs(data: pd.DataFrame, linkage: Linkage) -> tuple[MatchType, LinkInputs]:
    mt = MatchType.model_construct(id="t", title="t", reason="", left="eval_left", right="eval_left",
                                   scope="any", link="same_person", conditions=[], priority=1,
                                   linkage=linkage, person=None)
    return mt, LinkInputs(mt, {"eval_left": data})


def _train(data: pd.DataFrame, linkage: Linkage):
    mt, inp = _inputs(data, linkage)
    return train(mt, inp).linkage, inp


@pytest.fixture(scope="module")
def homes() -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = _households(1500, 7)
    return raw, _pseudo(raw)


def test_a_surname_at_one_address_is_weak_evidence_where_households_share_it(homes):
    raw, data = homes
    model, inp = _train(data, _linkage(given=True))
    k = [c.name for c in model.comparisons].index("surname")
    ordinary, at_home = model.weights()[k][0], model.given_weights(k)[("t_address",)][0]
    assert ordinary > 5, ordinary  # among random pairs an exact surname is rare
    assert at_home < 2, at_home  # among two people at one address it is the rule
    assert at_home >= 0  # ... and still never evidence against
    # and scoring uses it exactly where the pair agrees on the address
    same_home = raw.index[(raw["address"] == raw["address"].iloc[0])].to_numpy()
    other_home = raw.index[(raw["surname"] == raw["surname"].iloc[0]) & (raw["address"] != raw["address"].iloc[0])]
    li = np.array([same_home[0], same_home[0]] if len(other_home) else [same_home[0]])
    ri = np.array([same_home[1], other_home[0]] if len(other_home) else [same_home[1]])
    s = score(model, Pairs(inp.left, inp.right, li, ri))
    assert s.level_weights[0, k] == pytest.approx(at_home)
    if len(other_home):
        assert s.level_weights[1, k] > 5  # a namesake elsewhere: the ordinary (TF-adjusted) weight


def test_twins_at_home_are_not_one_person_counted_twice(homes):
    """Twins share surname, date of birth and address: counted as independent evidence those
    outweigh a different forename. With the birthday and surname measured among people who
    share a home, the twins score far lower than the same model counting them as independent."""
    raw, data = homes
    twins = raw[raw["person"].str.endswith(("-0", "-1"))].groupby(raw["person"].str.split("-").str[0])
    pairs = [(g.index[0], g.index[1]) for h, g in twins if int(h) % 8 == 0 and len(g) >= 2
             and g["person"].iloc[0] != g["person"].iloc[1]][:50]
    assert len(pairs) >= 20
    li, ri = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    after, inp = _train(data, _linkage(given=True))
    independent = FittedModel(after.comparisons, after.m, after.u, after.lam, tf=after.tf, caps=after.caps)
    w_after = score(after, Pairs(inp.left, inp.right, li, ri)).match_weight
    w_before = score(independent, Pairs(inp.left, inp.right, li, ri)).match_weight
    assert np.median(w_before - w_after) > 6, np.median(w_before - w_after)  # 64 times less sure
    # what tells them apart at home is the forename: a typo'd copy keeps a positive forename
    # weight, a twin's forename counts against
    k = [c.name for c in after.comparisons].index("forename")
    assert np.median(score(after, Pairs(inp.left, inp.right, li, ri)).level_weights[:, k]) < 0


def test_em_judges_a_pair_at_one_home_as_scoring_does(homes, monkeypatch):
    """EM over a rule that does not hold the address (here the birthday) still pairs up people at
    one home (twins). Judged with the random u there, their shared surname made them one person,
    and EM learned that one person's forenames often differ ("different" about -2 bits), so
    a third of twins were flagged. Each pair that agrees on a given group is judged in EM with the
    u there, as scoring judges it (``training.home_u``)."""
    from matching import training

    raw, data = homes
    twins = raw[raw["person"].str.endswith(("-0", "-1"))].groupby(raw["person"].str.split("-").str[0])
    pairs = [(g.index[0], g.index[1]) for h, g in twins if int(h) % 8 == 0 and len(g) >= 2
             and g["person"].iloc[0] != g["person"].iloc[1]]
    dups = [(g.index[0], g.index[1]) for _, g in raw.groupby("person") if len(g) > 1]
    li, ri = np.array([p[0] for p in pairs + dups]), np.array([p[1] for p in pairs + dups])
    is_twin = np.arange(len(li)) < len(pairs)
    found, different = {}, {}
    for per_pair in (True, False):
        if not per_pair:
            monkeypatch.setattr(training, "home_u", lambda *a: None)
        model, inp = _train(data, _linkage(given=True))
        different[per_pair] = model.weights()[[c.name for c in model.comparisons].index("forename")][-1]
        found[per_pair] = score(model, Pairs(inp.left, inp.right, li, ri)).probability >= 0.5
    assert different[True] < different[False] - 2, different
    assert found[True][is_twin].mean() < 0.15 < found[False][is_twin].mean(), (found[True][is_twin].mean(),
                                                                                  found[False][is_twin].mean())
    assert found[True][~is_twin].mean() > 0.99


def test_the_conditional_u_is_saved_with_the_model_and_used_when_loaded(homes):
    _, data = homes
    model, inp = _train(data, _linkage(given=True))
    again = FittedModel.from_json(model.to_json(), model.comparisons)
    assert set(again.u_given) == {"surname", "dob"}
    np.testing.assert_allclose(again.u_given["surname"][("t_address",)], model.u_given["surname"][("t_address",)])
    pairs = Pairs(inp.left, inp.right, np.arange(0, 200), np.arange(1, 201))
    again.tf, again.caps = model.tf, model.caps
    np.testing.assert_allclose(score(again, pairs).match_weight, score(model, pairs).match_weight)


def test_given_names_a_token_column_or_is_an_error():
    with pytest.raises(ValidationError, match="given"):
        COMPARISON_SETTINGS.validate_python({"use": "name", "field": "surname", "given": ["address"]})
    with pytest.raises(ValidationError, match="given"):
        COMPARISON_SETTINGS.validate_python({"use": "date_of_birth", "given": [["t_address"], ["surname"]]})


def test_given_is_one_group_of_columns_or_several():
    def groups(given):
        return COMPARISON_SETTINGS.validate_python({"use": "date_of_birth", "given": given}).build().given

    assert groups(["t_forename", "t_surname"]) == (("t_forename", "t_surname"),)  # both must agree
    assert groups([["t_address"], ["t_surname"]]) == (("t_address",), ("t_surname",))  # either may
    assert groups([]) == ()


def test_an_email_made_from_the_name_is_weak_evidence_between_namesakes():
    """Where emails are built from names (forename.surname@...), two people with the same name
    often share one: measured among different people with the same forename and surname, an
    identical email says little, and namesakes born on different days stop scoring as one person."""
    from evaluation.labelled import canonical, pseudonymise_for_eval, throwaway_keyring

    rng = np.random.default_rng(11)
    n = 6000
    first = np.array(["ANNA", "BEN", "CARL", "DORA", "EMMA", "FRED", "GINA", "HUGO", "IRIS", "JACK"])
    last = np.array([f"{a}{b}WORTH" for a in "BCDFGHKLMNPRST" for b in "AEIOU"])
    people = pd.DataFrame({"forenames": rng.choice(first, n), "surname": rng.choice(last, n),
                           "dob": pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 25000, n), "D")})
    people["email"] = (people["forenames"] + "." + people["surname"] + "@MAIL.EXAMPLE").str.lower()
    people.loc[rng.random(n) < 0.3, "email"] = None
    dup = people.sample(n // 10, random_state=11).copy()
    frame = pd.concat([people, dup], ignore_index=True)
    frame = frame.assign(rid=[f"r{i}" for i in range(len(frame))], dob=frame["dob"].dt.strftime("%Y-%m-%d"))
    canon = canonical(frame, {"forenames": ["forenames"], "surname": ["surname"], "dob": ["dob"],
                              "email": ["email"]}, "rid", "eval_left")
    data = pseudonymise_for_eval(canon, throwaway_keyring())
    linkage = Linkage(blocking=[["t_dob"], ["t_email"], ["t_surname", "t_forename"]], comparisons=[
        COMPARISON_SETTINGS.validate_python(c) for c in (
            {"use": "name", "field": "forename"}, {"use": "name", "field": "surname"}, {"use": "date_of_birth"},
            {"use": "exact", "column": "t_email", "name": "email", "given": ["t_forename", "t_surname"]})],
        threshold=0.5, m_from="em")
    model, inp = _train(data, linkage)
    k = [c.name for c in model.comparisons].index("email")
    assert model.weights()[k][0] > 10  # among random pairs an identical email is near-proof
    assert model.given_weights(k)[("t_forename", "t_surname")][0] < 3  # among namesakes it is what their names predict
    same_name = people.dropna(subset=["email"]).groupby(["forenames", "surname"]).filter(lambda g: len(g) >= 2)
    pairs = [(g.index[0], g.index[1]) for _, g in same_name.groupby(["forenames", "surname"])][:200]
    li, ri = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    independent = FittedModel(model.comparisons, model.m, model.u, model.lam, tf=model.tf, caps=model.caps)
    p_given = score(model, Pairs(inp.left, inp.right, li, ri)).probability
    p_indep = score(independent, Pairs(inp.left, inp.right, li, ri)).probability
    assert (p_indep >= 0.5).mean() > 0.5  # counted as independent, namesakes look like one person
    assert (p_given >= 0.5).mean() < 0.1


def test_a_small_file_of_households_still_measures_the_evidence_at_home():
    """Fifteen homes (fewer than 200 pairs of different people at one address): enough to learn
    that a shared surname there is weak evidence; a bar of 200 such pairs left a small file with
    every co-resident counted as independent evidence."""
    model, _ = _train(_pseudo(_households(15, 3)), _linkage(given=True))
    assert {"surname", "dob"} <= set(model.u_given), model.u_given
    k = [c.name for c in model.comparisons].index("surname")
    assert model.given_weights(k)[("t_address",)][0] < model.weights()[k][0] - 3


def test_a_handful_of_changed_names_at_one_address_teaches_nothing():
    """No households, but a few true pairs with both names changed (the other fields' posterior
    takes them for two people at one address): too few to measure anything at home, so the
    ordinary u stays (a date of birth at one address keeps its weight)."""
    rng = np.random.default_rng(5)
    people = _households(600, 11).drop_duplicates("person").reset_index(drop=True)
    people["address"] = [f"{i + 1} STATION ROAD" for i in range(len(people))]  # everyone alone
    dup = people.sample(frac=0.2, random_state=1).copy()
    renamed = dup.index[:12]
    dup.loc[renamed, "forenames"] = rng.choice(people["forenames"], len(renamed))
    dup.loc[renamed, "surname"] = rng.choice(people["surname"], len(renamed))
    model, _ = _train(_pseudo(pd.concat([people, dup], ignore_index=True)), _linkage(given=True))
    assert "dob" not in model.u_given and "surname" not in model.u_given, model.u_given


def test_a_comparison_can_take_its_m_from_the_match_types_own_pairs(homes):
    """m from the pool says how one person's records vary across every data set: there people
    move, so a different address is weak evidence. A pass and its holder's death registration
    give the same home far more often; ``m_from: em`` on the address comparison learns that from
    the match type's own pairs while the names keep the pool's m."""
    from evaluation.labelled import canonical, pseudonymise_for_eval, throwaway_keyring
    from matching.inputs import pool_inputs
    from matching.training import TrainingContext

    raw, _ = homes
    keyring = throwaway_keyring()
    rng = np.random.default_rng(3)
    people = raw.drop_duplicates("person").reset_index(drop=True)
    other = people.sample(frac=0.6, random_state=1)
    moved = other.assign(address=[f"{rng.integers(1, 900)} NEW ROAD" for _ in range(len(other))],
                         postcode=[f"E{rng.integers(1, 20)} {rng.integers(1, 9)}AB" for _ in range(len(other))])

    def pseudo(frame: pd.DataFrame, ds: str) -> pd.DataFrame:
        frame = frame.assign(rid=[f"{ds}{i}" for i in range(len(frame))], dob=frame["dob"].dt.strftime("%Y-%m-%d"))
        canon = canonical(frame, {"forenames": ["forenames"], "surname": ["surname"], "dob": ["dob"],
                                  "address_lines": ["address"], "postcode": ["postcode"]}, "rid", ds)
        return pseudonymise_for_eval(canon, keyring)

    passes = people.sample(frac=0.5, random_state=2)
    data = {"eval_left": pseudo(passes, "eval_left"), "eval_right": pseudo(people, "eval_right"),
            "tenancy": pseudo(moved, "tenancy")}

    def address_m(own: bool) -> np.ndarray:
        address = {"use": "address", **({"m_from": "em"} if own else {})}
        linkage = Linkage(blocking=[["t_dob"], ["t_forename", "t_yob"]], comparisons=[
            COMPARISON_SETTINGS.validate_python(c) for c in (
                {"use": "name", "field": "forename"}, {"use": "name", "field": "surname"},
                {"use": "date_of_birth"}, address)], threshold=0.5)
        mt = MatchType.model_construct(id="t", title="t", reason="", left="eval_left", right="eval_right",
                                       scope="any", link="same_person", conditions=[], priority=1,
                                       linkage=linkage, person=None)
        ctx = TrainingContext(pool_inputs(data))
        model = train(mt, LinkInputs(mt, data, ctx.pool), ctx).linkage
        names = [c.name for c in model.comparisons]
        return model.m[names.index("address")], model.m[names.index("surname")]

    pooled, pooled_surname = address_m(own=False)
    own, own_surname = address_m(own=True)
    assert pooled[-1] > 0.2, pooled  # in the pool, a person's records often give two homes
    assert own[-1] < 0.5 * pooled[-1], (own, pooled)  # a pass and its holder's record rarely do
    assert np.allclose(own_surname, pooled_surname)  # the other comparisons keep the pool's m
    with pytest.raises(ValidationError):
        COMPARISON_SETTINGS.validate_python({"use": "address", "m_from": "elsewhere"})


def test_twins_are_told_apart_where_most_pairs_at_an_address_are_one_person():
    """Two extracts of one population: most pairs at one address are a person's two records,
    and the only different people sharing a home are twins (same surname, birthday, address).
    The surname and the birthday both depend on the address, so neither may vouch for the
    twins while the other's u among such pairs is still being measured: judged first by what
    does not depend on the home (forename, NINO), the twins come out as two people, where the
    surname's u among random pairs made them one person with a different forename. (Without a
    NINO the old order stays: the forename alone reads FEBRL's changed forenames as twins.)"""
    rng = np.random.default_rng(3)
    people = _households(2400, 5).drop_duplicates("person").groupby("address").head(1).reset_index(drop=True)
    people["nino"] = [f"AB{i:06d}C" for i in range(len(people))]
    copies = people.sample(frac=0.6, random_state=1).copy()
    typo = rng.random(len(copies)) < 0.2
    copies.loc[typo, "forenames"] = copies.loc[typo, "forenames"].str[:-1] + "X"
    twins = people.sample(n=100, random_state=2).copy()
    twins["forenames"] = rng.choice(people["forenames"].unique(), len(twins))
    twins = twins[twins["forenames"].str[0] != people.loc[twins.index, "forenames"].str[0]]
    twins["person"] = twins["person"] + "-twin"
    twins["nino"] = [f"TW{i:06d}C" for i in range(len(twins))]
    raw = pd.concat([people, copies, twins], ignore_index=True)
    raw.loc[rng.random(len(raw)) < 0.5, "nino"] = None  # a NINO on half the records
    data = _pseudo(raw)
    linkage = _linkage(given=True)
    linkage = linkage.model_copy(update={
        "blocking": [["t_nino"]] + linkage.blocking,
        "comparisons": linkage.comparisons + [COMPARISON_SETTINGS.validate_python(
            {"use": "exact", "column": "t_nino", "name": "nino"})]})
    model, inp = _train(data, linkage)
    first = {p: i for i, p in reversed(list(enumerate(raw["person"])))}
    twin_rows = np.flatnonzero(raw["person"].str.endswith("-twin").to_numpy())
    li = np.array([first[p.removesuffix("-twin")] for p in raw["person"].iloc[twin_rows]])
    twin_p = score(model, Pairs(inp.left, inp.right, li, twin_rows)).probability
    assert len(twin_rows) >= 80
    # before: every twin the same person (p > 0.99); now 6-11% under seven keys, twins whose made-up
    # forenames happen to look like a typo of the sibling's ("similar", "sounds alike")
    assert np.mean(twin_p >= 0.5) < 0.2, np.sort(twin_p)
    assert np.median(twin_p) < 0.01, np.sort(twin_p)
    copy_rows = np.arange(len(people), len(people) + len(copies))
    li = np.array([first[p] for p in raw["person"].iloc[copy_rows]])
    assert np.mean(score(model, Pairs(inp.left, inp.right, li, copy_rows)).probability >= 0.5) > 0.95


def _hostel(residents: int, number: int, seed: int) -> pd.DataFrame:
    """One address shared by ``residents`` unrelated people (a hostel, a care home, a block whose
    flat numbers went missing): their own surnames and birthdays."""
    raw = _households(residents, seed).drop_duplicates("person").groupby("address").head(1)  # one per home
    return raw.assign(person=[f"hostel{number}-{i}" for i in range(len(raw))],
                      address=f"{number} STATION APPROACH", postcode="N9 9ZZ")


def test_one_large_address_does_not_set_a_households_evidence():
    """Two hostels of 250 unrelated residents hold far more pairs than 1,500 homes of families
    (62,250 against about 8,000), but only a twelfth of the records: drawn per pair, the
    hostels' residents said that two people at one address rarely share a surname, and a
    family member's surname counted as evidence again (+3.4 bits, against +1.4 drawn per record).
    Drawn per record, the homes set it."""
    raw = pd.concat([_households(1500, 7), _hostel(250, 901, 1), _hostel(250, 902, 2)], ignore_index=True)
    model, _ = _train(_pseudo(raw), _linkage(given=True))
    k = [c.name for c in model.comparisons].index("surname")
    assert model.weights()[k][0] > 5
    assert model.given_weights(k)[("t_address",)][0] < 2, model.given_weights(k)


def test_housemates_are_not_taken_for_one_person_where_no_birthday_tells_them_apart():
    """Records without a date of birth (a payroll, a tax form) against a register of families:
    a rule blocking on the surname or the address pairs up housemates, who share both. EM over
    those pairs with the address's and the surname's u among random pairs took housemates for
    one person and learned that one person's forename often differs (before: "different" -0.3
    bits, every housemate flagged; a census-like set: 1,700 false pairs whose forenames shared
    only the initial, F1 0.87). With each rule's pairs weighed by how housemates agree
    (``training.rule_u``) they stay apart."""
    rng = np.random.default_rng(11)
    people = _households(1500, 13).drop_duplicates("person").reset_index(drop=True)
    other = people.sample(frac=0.7, random_state=3).copy()
    typo = rng.random(len(other)) < 0.15
    other.loc[typo, "forenames"] = other.loc[typo, "forenames"].str[:-1] + "X"
    other["dob"] = pd.NaT
    raw = pd.concat([people, other], ignore_index=True)
    data = _pseudo(raw)
    linkage = Linkage(blocking=[["t_surname"], ["t_address"], ["t_forename", "t_pc_sector"]], comparisons=[
        COMPARISON_SETTINGS.validate_python(c) for c in (
            {"use": "name", "field": "forename", "initial": True},
            {"use": "name", "field": "surname", "given": ["t_address"]},
            {"use": "date_of_birth", "given": ["t_address"]}, {"use": "address"})], threshold=0.5, m_from="em")
    model, inp = _train(data, linkage)
    left = np.arange(len(people))
    right = np.arange(len(people), len(raw))
    at_home = pd.DataFrame({"l": left, "a": raw["address"].iloc[left].to_numpy()}).merge(
        pd.DataFrame({"r": right, "a": raw["address"].iloc[right].to_numpy()}), on="a")
    person = raw["person"].to_numpy()
    housemates = at_home[person[at_home.l] != person[at_home.r]]
    assert len(housemates) > 2000
    p = score(model, Pairs(inp.left, inp.right, housemates.l.to_numpy(), housemates.r.to_numpy())).probability
    assert np.mean(p >= 0.5) < 0.05, np.mean(p >= 0.5)
    one = at_home[person[at_home.l] == person[at_home.r]]
    p = score(model, Pairs(inp.left, inp.right, one.l.to_numpy(), one.r.to_numpy())).probability
    assert np.mean(p >= 0.5) > 0.85, np.mean(p >= 0.5)  # 0.91: a forename typo at home is weak evidence


def test_each_rules_u_is_how_the_different_people_it_pairs_up_agree():
    """``rule_u``: a rule on the address pairs up housemates, so the surname (given the address)
    takes its u among them; a rule on the surname pairs up relatives, who share an address that
    much more often (Bayes: P(same address | same surname) = P(same surname | same address)
    P(same address) / P(same surname)); any other rule keeps the random pairs' u."""
    from matching.training import rule_u

    comps = _linkage(given=True).built()
    names = [c.name for c in comps]
    s, a, f = names.index("surname"), names.index("address"), names.index("forename")
    u = [np.full(len(c.levels), 1.0 / len(c.levels)) for c in comps]
    u[s] = np.r_[0.002, np.full(len(comps[s].levels) - 1, 0.998 / (len(comps[s].levels) - 1))]
    u[a] = np.r_[0.0001, np.full(len(comps[a].levels) - 1, 0.9999 / (len(comps[a].levels) - 1))]
    at_home = np.r_[0.6, np.full(len(comps[s].levels) - 1, 0.4 / (len(comps[s].levels) - 1))]
    u_given = {"surname": {("t_address",): at_home}}

    housemates = rule_u(comps, u, u_given, ["t_address"])
    np.testing.assert_allclose(housemates[s], at_home)
    relatives = rule_u(comps, u, u_given, ["t_surname"])
    assert relatives[a][0] == pytest.approx(0.0001 * 0.6 / 0.002)  # 300 times as often
    assert relatives[a].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(relatives[a][1:] / relatives[a][1:].sum(), u[a][1:] / u[a][1:].sum())
    for other in (["t_dob"], ["t_forename", "t_yob"]):
        got = rule_u(comps, u, u_given, other)
        assert all(np.array_equal(x, y) for x, y in zip(got, u)), other
    assert rule_u(comps, u, {}, ["t_address"])[s] is not u[s]  # a copy: the caller's u is never changed
    np.testing.assert_allclose(rule_u(comps, u, u_given, ["t_address"])[f], u[f])


def test_twins_apart_are_told_by_the_birthday_given_the_surname():
    """No address at all (a register of names and birthdays): twins share a surname and a
    birthday, and where a few of one person's records carry another forename, "different
    forename" is weak evidence. Counted as independent, surname and birthday made twins one
    person; with the birthday's evidence measured among people of one surname (a second
    ``given`` group) they stay two, and one person's records still match where the forename
    tells them from a twin (those under another forename cannot be: they now look like twins)."""
    raw = _households(1500, 21).drop(columns=["address", "postcode"]).assign(address=None, postcode=None)
    renamed = raw.index[raw.duplicated("person")][::20]  # one duplicate in twenty known by another forename
    raw.loc[renamed, "forenames"] = np.random.default_rng(2).choice(raw["forenames"], len(renamed))
    data = _pseudo(raw)
    first = raw.drop_duplicates("person")
    twins = [(g.index[0], g.index[1]) for _, g in first.groupby(["surname", "dob"]) if len(g) > 1
             and g["forenames"].nunique() == len(g)]
    dups = [(g.index[0], g.index[1]) for _, g in raw.groupby("person") if len(g) > 1 and g.index[1] not in renamed]
    assert len(twins) > 100
    li, ri = np.array([p[0] for p in twins + dups]), np.array([p[1] for p in twins + dups])
    is_twin = np.arange(len(li)) < len(twins)
    found = {}
    for given in ([], [["t_surname"]]):
        linkage = Linkage(blocking=[["t_dob"], ["t_forename", "t_yob"]], comparisons=[
            COMPARISON_SETTINGS.validate_python(c) for c in (
                {"use": "name", "field": "forename"}, {"use": "name", "field": "surname"},
                {"use": "date_of_birth", "given": given})], threshold=0.5, m_from="em")
        model, inp = _train(data, linkage)
        found[bool(given)] = score(model, Pairs(inp.left, inp.right, li, ri)).probability >= 0.5
    assert found[False][is_twin].mean() > 0.5, found[False][is_twin].mean()  # twins taken for one person
    assert found[True][is_twin].mean() < 0.1, found[True][is_twin].mean()
    assert found[True][~is_twin].mean() > 0.99, found[True][~is_twin].mean()


def _id_linkage(id_given: bool) -> Linkage:
    nino = {"use": "exact", "column": "t_nino", "name": "nino", **({"given": ["t_address"]} if id_given else {})}
    return Linkage(blocking=[["t_nino"], ["t_surname"], ["t_address"]], comparisons=[
        COMPARISON_SETTINGS.validate_python(c) for c in (
            {"use": "name", "field": "forename"}, {"use": "name", "field": "surname", "given": ["t_address"]},
            nino, {"use": "address"})], threshold=0.5, m_from="em")


def test_an_id_a_household_copies_is_weak_evidence_at_that_home():
    """Tax forms with no date of birth: in one home in twenty a second member's form carries the
    first member's number. Counted as among random pairs, the shared number (+16 bits) outweighs
    two different forenames and every such pair is one person; measured among people at one
    address (``given``) it counts about 6 bits there, half of them are no longer flagged, and
    one person's records still match on it. (The rest: EM still learns from those housemates
    that one person's forenames often differ, so "different forename" counts only -3 bits.)"""
    names = np.array(["JOHN", "MARY", "AHMED", "FATIMA", "OLIVER", "GRACE", "ISLA", "NOAH", "LEO", "ZARA",
                      "CHLOE", "PRIYA", "KWAME", "HELEN", "DAVID", "SUSAN", "BRIAN", "TERESA", "EDWARD", "WENDY",
                      "GEORGE", "RUTH", "SIMON", "ESTHER"])
    raw = _households(1500, 11).drop(columns=["dob"]).assign(dob=pd.NaT)
    people = pd.factorize(raw["person"])[0]
    raw["forenames"] = np.random.default_rng(3).choice(names, people.max() + 1)[people]
    again = raw.duplicated("person")
    raw.loc[again, "forenames"] = raw.loc[again, "forenames"].str[:-1] + "X"  # a typo
    raw["nino"] = [f"AB{i:06d}C" for i in people]
    home, member = raw["person"].str.split("-").str[0].astype(int), raw["person"].str.split("-").str[1]
    copied = (home % 20 == 0) & (member == "1")
    raw.loc[copied, "nino"] = raw.loc[copied, "person"].str.replace("-1", "-0").map(
        raw.drop_duplicates("person").set_index("person")["nino"])
    data = _pseudo(raw)
    first = raw.drop_duplicates("person")
    housemates = [(g.index[0], g.index[1]) for _, g in first[first["person"].str.endswith(("-0", "-1"))]
                  .groupby(home) if len(g) == 2 and g["nino"].nunique() == 1 and g["forenames"].nunique() == 2]
    dups = [(g.index[0], g.index[1]) for _, g in raw.groupby("person") if len(g) > 1]
    assert len(housemates) > 50 and len(dups) > 300
    li, ri = np.array([p[0] for p in housemates + dups]), np.array([p[1] for p in housemates + dups])
    is_housemate = np.arange(len(li)) < len(housemates)
    found = {}
    for given in (False, True):
        model, inp = _train(data, _id_linkage(given))
        found[given] = score(model, Pairs(inp.left, inp.right, li, ri)).probability >= 0.5
    k = [c.name for c in model.comparisons].index("nino")
    assert model.weights()[k][0] - model.given_weights(k)[("t_address",)][0] > 6
    assert found[False][is_housemate].mean() == 1.0, found[False][is_housemate].mean()
    assert found[True][is_housemate].mean() < 0.7, found[True][is_housemate].mean()
    assert found[True][~is_housemate].mean() > 0.99, found[True][~is_housemate].mean()


def test_one_persons_renamed_records_do_not_teach_that_an_id_is_shared_at_home(monkeypatch):
    """One person per address and no number ever copied, but one person's records in eight carry
    another forename and surname: at one address those look like two people who share a number.
    Counted by how likely each pair is two people, they made the number weak evidence at home
    and the renamed records fell apart; counted only where surely two people, there are too
    few such pairs to learn from, and the number keeps its weight."""
    from matching import training

    rng = np.random.default_rng(4)
    raw = _households(1500, 13).drop(columns=["dob"]).assign(dob=pd.NaT)
    raw = raw[raw["person"].str.endswith("-0")].copy()  # one person per address
    raw["nino"] = [f"CD{i:06d}E" for i in pd.factorize(raw["person"])[0]]
    again = raw.sample(frac=0.6, random_state=1).copy()
    renamed = again.sample(frac=0.2, random_state=2).index
    again.loc[renamed, "forenames"] = rng.choice(raw["forenames"], len(renamed))
    again.loc[renamed, "surname"] = rng.choice(raw["surname"], len(renamed))
    raw = pd.concat([raw, again], ignore_index=True)
    data = _pseudo(raw)
    pairs = [(g.index[0], g.index[1]) for _, g in raw.groupby("person") if len(g) > 1]
    li, ri = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    recall = {}
    for surely in (training.SURELY_DIFFERENT, 0.0):
        monkeypatch.setattr(training, "SURELY_DIFFERENT", surely)
        model, inp = _train(data, _id_linkage(True))
        recall[surely] = (score(model, Pairs(inp.left, inp.right, li, ri)).probability >= 0.5).mean()
    assert recall[0.95] > 0.99, recall
    assert recall[0.0] < recall[0.95] - 0.02, recall


def test_threads_train_what_one_thread_does_the_pools_pairs_made_first(homes):
    """Match types training on two threads first share out the pool's pairs their pooled
    estimates start from (``TrainingContext.pooled_work``: random pairs, each rule's pairs, with
    their levels), then train: the models are those one thread trains, bit for bit."""
    from matching.inputs import pool_inputs
    from matching.run import _train_all
    from matching.training import TrainingContext

    raw, data = homes
    data = {"eval_left": data, "eval_right": data.iloc[::2].reset_index(drop=True)}

    def match_type(name: str, comparisons: list[dict]) -> MatchType:
        linkage = Linkage(blocking=[["t_dob"], ["t_forename", "t_yob"], ["t_address"]], comparisons=[
            COMPARISON_SETTINGS.validate_python(c) for c in comparisons], threshold=0.5)
        return MatchType.model_construct(id=name, title=name, reason="", left="eval_left", right="eval_right",
                                         scope="any", link="same_person", conditions=[], priority=1,
                                         linkage=linkage, person=None)

    types = [match_type("a", [{"use": "name", "field": "forename"}, {"use": "name", "field": "surname"},
                              {"use": "date_of_birth"}]),
             match_type("b", [{"use": "name", "field": "forename"}, {"use": "date_of_birth"},
                              {"use": "address"}])]

    def trained(workers: int) -> tuple[dict, TrainingContext]:
        ctx = TrainingContext(pool_inputs(data))
        out = _train_all(types, data, ctx, lambda: data, workers, {mt.id: "test" for mt in types})
        return {k: v[0].linkage.to_json() for k, v in out.items()}, ctx

    one, _ = trained(1)
    two, ctx = trained(2)
    assert one == two
    settings = types[0].linkage.training_settings()
    assert ("random", settings.random_pairs, settings.seed) in ctx.pool_pairs
    for rule in types[0].linkage.blocking:
        assert ("rule", tuple(rule), settings.max_training_pairs) in ctx.pool_pairs
    # ... and only those: the pooled work made the very pairs the estimates then asked for
    assert len(ctx.pool_pairs) == 1 + len(types[0].linkage.blocking)
    assert len(ctx.pooled_work([mt.linkage for mt in types])) == 1 + len(types[0].linkage.blocking)


def test_housemates_are_drawn_once_for_every_model_of_the_same_records(homes, monkeypatch):
    """Every linkage estimated on the training pool draws the pool's pairs of housemates with
    the same seed: they are drawn once for the records (``Side.memo``) and each model's
    conditional u is what it was when each drew its own."""
    import matching.training as training

    _, data = homes
    model, inp = _train(data, _linkage(given=True))
    settings = _linkage(given=True).training_settings()
    fresh = LinkInputs(MatchType.model_construct(
        id="t", title="t", reason="", left="eval_left", right="eval_left", scope="any", link="same_person",
        conditions=[], priority=1, linkage=_linkage(given=True), person=None), {"eval_left": data})
    draws = []
    real = training.same_salt_pairs
    monkeypatch.setattr(training, "same_salt_pairs", lambda *a, **k: draws.append(a[3]) or real(*a, **k))

    def u_given() -> dict:
        return training.conditional_u(model, fresh.left, fresh.right, True, settings.random_pairs, settings.seed)

    first, second = u_given(), u_given()
    assert draws == [("t_address",)]  # one group, drawn once for both calls
    assert first.keys() == second.keys() == {"surname", "dob"}
    for name, groups in first.items():
        for group, u in groups.items():
            assert np.array_equal(u, second[name][group])
            assert np.allclose(u, model.u_given[name][group])  # as the model's own training found it
    # what the records keep holds nothing that holds them: they go with their last reference
    # (not at some later garbage collection, which kept a 1M pool in every forked link worker)
    import gc
    import weakref

    side = weakref.ref(fresh.left)
    gc.disable()
    try:
        del fresh, u_given
        assert side() is None
    finally:
        gc.enable()



def test_a_level_counts_as_agreeing_on_a_given_column_only_where_it_weighs_as_much():
    """``training.alike_levels``: the address's "near" level counts as the same address for
    ``given`` where the model weighs it within a bit of the same address (typos), not where it
    weighs little (neighbours), and never the last level or one that is no agreement."""
    from matching.comparisons import address
    from matching.model import measuring
    from matching.training import ALIKE_BITS, alike_levels

    linkage = _linkage(given=True)
    comps = linkage.built()
    k = comps.index(measuring(comps, "t_address"))
    n = len(comps[k].levels)
    m = [np.full(len(c.levels), 1 / len(c.levels)) for c in comps]
    u = [np.full(len(c.levels), 1 / len(c.levels)) for c in comps]
    u[k] = np.array([1e-4, 1e-4, 1e-3] + [1e-3] * (n - 4) + [1.0])
    u[k] /= u[k].sum()
    strong, weak = np.array([0.6, 0.3] + [0.1 / (n - 2)] * (n - 2)), np.array([0.9, 0.001] + [0.099 / (n - 2)] * (n - 2))
    assert comps[k].levels[1].label == address().levels[1].label == "near"
    assert alike_levels(FittedModel(comps, m[:k] + [strong] + m[k + 1:], u, 1e-4)) == {"t_address": (1,)}
    assert alike_levels(FittedModel(comps, m[:k] + [weak] + m[k + 1:], u, 1e-4)) == {}
    assert ALIKE_BITS == 1.0


def test_a_household_at_a_mistyped_address_is_still_a_household(homes):
    """One member's address typed with a typo puts the pair at the "near" address level, not the
    same address token: the surname then counted as between strangers (its full, TF-adjusted
    weight), and parent and child scored as one person. With "near" counting as the same home
    (``FittedModel.given_alike``, kept in the model's JSON), the surname weighs as it does at one
    address. On these homes, where a "near" address is a neighbour's, training counts nothing alike."""
    raw, data = homes
    model, inp = _train(data, _linkage(given=True))
    assert model.given_alike == {} and "given_alike" not in model.to_json()
    k, a = ([c.name for c in model.comparisons].index(x) for x in ("surname", "address"))
    typo = raw.assign(address=raw["address"].str.replace(r"^(\d+) (\w\w)\w", r"\1 \2Q", regex=True))
    both = _pseudo(pd.concat([raw, typo], ignore_index=True))
    home = raw["person"].str.split("-").str[0]
    members = [(i, len(raw) + j) for _, g in raw.groupby(home) for i in g.index for j in g.index
               if raw.at[i, "person"] != raw.at[j, "person"] and raw.at[i, "dob"] != raw.at[j, "dob"]]
    li, ri = np.array([p[0] for p in members]), np.array([p[1] for p in members])
    _, inp = _inputs(both, _linkage(given=True))
    pairs = Pairs(inp.left, inp.right, li, ri)
    near = model.comparisons[a].levels_of(pairs)
    assert (near == 1).mean() > 0.9  # one letter of the street: the "near" level
    at_home = model.given_weights(k)[("t_address",)][0]
    before = score(model, pairs)
    alike = FittedModel.from_json({**model.to_json(), "given_alike": {"t_address": ["near"]}}, model.comparisons)
    assert alike.given_alike == {"t_address": (1,)} and alike.to_json()["given_alike"] == {"t_address": ["near"]}
    after = score(alike, pairs)
    at_near = near == 1
    assert np.median(before.level_weights[at_near, k]) > at_home + 4  # counted as between strangers
    assert np.allclose(after.level_weights[at_near, k], at_home)  # counted as at one address
    assert (after.probability[at_near] >= 0.5).mean() < (before.probability[at_near] >= 0.5).mean()
