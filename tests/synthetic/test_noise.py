"""Noise the matcher was not built around: declared profiles, each kind at its configured rate,
typos anywhere, OCR confusions, respellings, informal nicknames, date errors, and twins and
namesakes recorded as near misses that the rules never flag."""

from __future__ import annotations

import ast
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from councilmatch import matchtype_ids as mt
from councilmatch.contracts import DATASETS
from councilmatch.home import Home
from ingest.feeds import load_feeds
from synthetic import generate
from synthetic.names import nicknames_for, pools
from synthetic.nicknames import INFORMAL, NICKNAMES
from synthetic.noise import (OCR_ADDRESS_RULES, OCR_NAME_RULES, PHONETIC_RULES, apply_rules, load_profile,
                             profile_names, typo)

ROOT = Path(__file__).resolve().parents[2]
PAIR = ["match_type", "left_council", "left_dataset", "left_record_id", "right_council", "right_dataset", "right_record_id"]


def _osa(a: str, b: str) -> int:
    """Optimal string alignment distance (edits incl. adjacent transposition), plain Python for the test."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1].lower() != b[j - 1].lower()
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1].lower() == b[j - 2].lower() and a[i - 2].lower() == b[j - 1].lower():
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


# -- profiles -----------------------------------------------------------------------------------

def test_profiles_are_declared_and_differ() -> None:
    assert {"default", "heldout"} <= set(profile_names())
    default, heldout = load_profile("default"), load_profile("heldout")
    assert load_profile(None) == default
    rates_d, rates_h = default.rates.model_dump(), heldout.rates.model_dump()
    changed = [k for k in rates_d if rates_d[k] != rates_h[k]]
    assert len(changed) >= 10, changed
    # mixed differently, not just scaled: some kinds go up and some go down, one only exists in heldout
    ratio = {k: rates_h[k] / rates_d[k] for k in rates_d if rates_d[k] > 0}
    assert min(ratio.values()) < 1 < max(ratio.values())
    assert rates_d["dob_first_of_year"] == 0 < rates_h["dob_first_of_year"]
    assert heldout.typo_first_letter_share > default.typo_first_letter_share > 0
    assert default.seed != heldout.seed
    for p in (default, heldout):           # every new kind is switched on in both
        for kind in ("informal_nickname", "initials_only", "married_no_previous", "ocr_name", "ocr_address",
                     "phonetic_name", "dob_year_off", "dob_placeholder", "typo_forenames", "typo_surname"):
            assert getattr(p.rates, kind) > 0, (p.name, kind)
        assert str(p.placeholder_dob) == "1900-01-01"


def test_profile_files_are_validated(tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text(yaml.safe_dump({"seed": 3, "rates": {"typo_surname": 0.2}}))
    p = load_profile(good)
    assert p.name == "mine" and p.rates.typo_surname == 0.2 and p.rates.nickname == 0.0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"rates": {"typo_surnames": 0.2}}))        # misspelt key
    with pytest.raises(ValueError, match="bad.yaml.*typo_surnames"):
        load_profile(bad)
    bad.write_text(yaml.safe_dump({"rates": {"typo_surname": 1.5}}))          # not a probability
    with pytest.raises(ValueError, match="bad.yaml"):
        load_profile(bad)
    with pytest.raises(ValueError, match="unknown noise profile 'nosuch'.*default"):
        load_profile("nosuch")


# -- the edits ------------------------------------------------------------------------------------

def test_typos_fall_anywhere_including_the_first_letter() -> None:
    rng = np.random.default_rng(3)
    names = np.array(["Catherine"] * 3000 + ["SMITH"] * 1000, dtype=object)
    out, applied, on_first = typo(names, rng, 0.0)
    assert applied.all()
    assert all(_osa(a, b) == 1 for a, b in zip(names, out))
    first_diff = [next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))) for a, b in zip(names, out)]
    assert set(first_diff[:3000]) >= set(range(9))                    # every position of Catherine, 0 included
    share = np.mean([b[0].upper() != "C" for b in out[:3000]])
    assert 0.04 < share < 0.25                                         # about 1 in 9 with no forcing
    assert all(b == b.upper() for b in out[3000:])                     # case kept
    assert all(b[0].isupper() and b[1:] == b[1:].lower() for b in out[:3000])   # Title case kept
    out, applied, on_first = typo(names[:500], rng, 1.0)
    assert on_first.all() and all(a[0] != b[0] or a[1] != b[1] for a, b in zip(names, out))
    one_letter, ok, _ = typo(np.array(["A", "Jo"], dtype=object), rng, 0.0)
    assert list(ok) == [False, True] and one_letter[0] == "A"


def _outcomes(word: str, rules, n: int = 400) -> set[str]:
    out, applied = apply_rules(np.array([word] * n, dtype=object), rules, np.random.default_rng(5))
    assert applied.all(), word
    return set(out)


def test_ocr_confusions_and_respellings() -> None:
    assert _outcomes("Bjorn", OCR_NAME_RULES) == {"Bjom"}
    assert _outcomes("Lily", OCR_NAME_RULES) == {"Iily", "Liiy", "Llly"}
    assert "Clarke" not in _outcomes("Clarke", OCR_NAME_RULES) and "Darke" in _outcomes("Clarke", OCR_NAME_RULES)
    addr = _outcomes("10 Elm Road", OCR_ADDRESS_RULES)
    assert {"I0 Elm Road", "L0 Elm Road", "1O Elm Road", "10 E1m Road", "10 Elm R0ad", "10 Elrn Road"} <= addr
    assert "Filip" in _outcomes("Philip", PHONETIC_RULES) and "Phillip" in _outcomes("Philip", PHONETIC_RULES)
    assert "Phred" in _outcomes("Fred", PHONETIC_RULES) and "PHRED" in _outcomes("FRED", PHONETIC_RULES)
    assert {"Jakson", "Jackkson"} & _outcomes("Jackson", PHONETIC_RULES)
    assert "Kieth" in _outcomes("Keith", PHONETIC_RULES)
    assert {"Hary", "Harri"} <= _outcomes("Harry", PHONETIC_RULES)
    assert "Karl" in _outcomes("Carl", PHONETIC_RULES) and "Caren" in _outcomes("Karen", PHONETIC_RULES)
    for word in ("Philip", "Jackson", "Harry", "Keith"):
        assert word not in _outcomes(word, PHONETIC_RULES)
    out, applied = apply_rules(np.array(["Xu", "Bob"], dtype=object), OCR_NAME_RULES, np.random.default_rng(1))
    assert not applied.any() and list(out) == ["Xu", "Bob"]           # nothing to confuse: left alone


def test_informal_nicknames_are_unknown_to_nickname_lists() -> None:
    forenames = {n.upper() for sex in ("male", "female") for n in pools()[sex].names}
    informal = {f for forms in INFORMAL.values() for f in forms} | {"MACCA"}
    assert {"KAZ", "GAZ", "SHAZ", "BAZ", "JONNO", "MACCA"} <= informal
    assert set(INFORMAL) <= forenames                                   # the generator can draw every full form
    assert not informal & set(NICKNAMES) and not informal & set(NICKNAMES.values())
    assert not informal & {n for forms in nicknames_for().values() for n in forms}


def test_informal_nicknames_are_unknown_to_the_nicknames_package() -> None:
    nn = pytest.importorskip("nicknames")
    informal = {f for forms in INFORMAL.values() for f in forms} | {"MACCA"}
    namer = nn.NickNamer()
    for form in informal:
        assert not namer.canonicals_of(form.lower()), form              # the matcher's list cannot fold them


def _imports(package: str) -> set[tuple[str, str]]:
    out = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out |= {(str(path.relative_to(ROOT)), a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.add((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return out


def test_the_generator_needs_no_matcher_knowledge() -> None:
    bad = {(f, m) for f, m in _imports("synthetic") if m in ("anonymise", "matching", "review", "dags")}
    assert not bad, bad
    for package in ("ingest", "matching", "review", "dags"):
        bad = {(f, m) for f, m in _imports(package) if m == "synthetic"}
        assert not bad, bad


def test_anonymise_does_not_import_the_generator() -> None:
    bad = {(f, m) for f, m in _imports("anonymise") if m == "synthetic"}
    assert not bad, bad


# -- rates on a generated home ---------------------------------------------------------------------

def _joined(generated) -> pd.DataFrame:
    r = generated.records.merge(generated.people[["person_id", "first_name", "surname", "previous_surname", "dob", "sex"]],
                                on="person_id", suffixes=("", "_truth"))
    r["tags"] = r["variations"].astype(str)
    return r


def _has(r: pd.DataFrame, tag: str) -> np.ndarray:
    return r["tags"].str.contains(f"(?:^|;){tag}(?:;|$)").to_numpy()


def _assert_rate(kind: str, observed: int, eligible: int, rate: float, applicable: float = 1.0) -> None:
    """Observed count consistent with rate x eligible (binomial, 4.5 sd), allowing a share of
    eligible records the edit cannot apply to (``applicable``)."""
    expected = rate * eligible
    sd = math.sqrt(max(expected * (1 - rate), 1e-9))
    assert applicable * expected - 4.5 * sd - 2 <= observed <= expected + 4.5 * sd + 2, \
        f"{kind}: {observed} of {eligible} records, configured rate {rate} (expected about {expected:.1f})"


def test_each_noise_kind_appears_at_its_configured_rate(generated) -> None:
    p = load_profile("default")
    r = _joined(generated)
    r = r[(r["origin"].astype(str) != "fraud").to_numpy()]               # fraud records use the fraud rates
    ds = r["dataset"].to_numpy()
    registered = ds != "deceased"
    fields = {d: set(DATASETS[d].required) | set(DATASETS[d].optional) for d in DATASETS}
    with_dob = np.array([("dob" in fields[d]) for d in ds])
    with_prev = np.array([("previous_surname" in fields[d]) for d in ds])
    with_addr = np.array([("address_lines" in fields[d]) for d in ds])
    first_up = r["first_name"].str.upper().to_numpy()
    nick, informal = _has(r, "nickname"), _has(r, "informal_nickname")
    checks = {
        "typo_forenames": (np.ones(len(r), bool), p.rates.typo_forenames, 0.97),
        "typo_surname": (np.ones(len(r), bool), p.rates.typo_surname, 0.97),
        "ocr_address": (with_addr, p.rates.ocr_address, 0.97),
        "nickname": (registered & np.isin(first_up, list(nicknames_for())), p.rates.nickname, 1.0),
        "forename_initials_only": (registered & ~nick & ~informal, p.rates.initials_only, 1.0),
        "previous_surname_used": (registered & r["previous_surname"].notna().to_numpy(), p.rates.stale_surname, 1.0),
        "dob_year_off_by_one": (with_dob & ~_has(r, "dob_day_month_swapped"), p.rates.dob_year_off, 1.0),
    }
    dob = pd.DatetimeIndex(r["dob"])
    checks["dob_day_month_swapped"] = (with_dob & (dob.day <= 12) & (dob.day != dob.month), p.rates.dob_swap, 1.0)
    mac = (r["sex"] == "M").to_numpy() & r["surname"].str.match(r"Ma?c[A-Z]").to_numpy(dtype=bool)
    checks["informal_nickname"] = (registered & ~nick & (np.isin(first_up, list(INFORMAL)) | mac), p.rates.informal_nickname, 1.0)
    stale = _has(r, "previous_surname_used")
    checks["previous_surname_not_recorded"] = (with_prev & r["previous_surname"].notna().to_numpy() & ~stale,
                                               p.rates.married_no_previous, 1.0)
    for kind, (eligible, rate, applicable) in checks.items():
        observed = _has(r, kind)
        assert not (observed & ~eligible).any(), f"{kind} on a record it cannot apply to"
        _assert_rate(kind, int(observed.sum()), int(eligible.sum()), rate, applicable)
    # OCR and respelling hit either name (the other when the first has nothing to confuse)
    for kind, rate in (("ocr", p.rates.ocr_name), ("respelled", p.rates.phonetic_name)):
        observed = _has(r, f"{kind}_forenames") | _has(r, f"{kind}_surname")
        _assert_rate(kind, int(observed.sum()), len(r), rate, 0.85)
        assert _has(r, f"{kind}_forenames").any() and _has(r, f"{kind}_surname").any(), kind
    # typos reach the first letter: at least the forced share of typos, and more from uniform positions
    typos = int((_has(r, "typo_forenames")).sum() + _has(r, "typo_surname").sum())
    assert p.typo_first_letter_share * typos * 0.5 <= _has(r, "typo_first_letter").sum() <= typos
    assert not _has(r, "dob_first_of_year").any()                         # rate 0 in the default profile


def test_placeholder_dates_of_birth_only_on_records_no_flag_needs(generated, tmp_path_factory) -> None:
    home = Home.resolve(tmp_path_factory.mktemp("placeholder"))
    p = load_profile("default").model_copy(update={"rates": load_profile("default").rates.model_copy(update={"dob_placeholder": 0.05})})
    generate(home, boroughs=2, people=1500, seed=4, noise_profile=p)
    r = pd.read_parquet(home.truth / "records.parquet").astype({"council": str, "dataset": str})
    ph = r[r["variations"].astype(str).str.contains("dob_placeholder")]
    with_dob = r["dataset"].map(lambda d: "dob" in set(DATASETS[d].required) | set(DATASETS[d].optional))
    assert 0.02 * with_dob.sum() < len(ph) < 0.06 * with_dob.sum()
    assert ph["invalid_reason"].isna().all()
    used = set()
    for name in ("expected_flags", "scenarios"):
        f = pd.read_parquet(home.truth / f"{name}.parquet")
        for side in ("left", "right"):
            used |= set(zip(f[f"{side}_council"], f[f"{side}_dataset"], f[f"{side}_record_id"]))
    assert not used & set(zip(ph["council"], ph["dataset"], ph["record_id"]))
    # and the extracts really carry 1900-01-01 for them
    feeds = load_feeds(home)
    seen = 0
    for feed in feeds.values():
        rows = ph[(ph["council"] == feed.council) & (ph["dataset"] == feed.dataset)]
        if rows.empty or "dob" not in feed.columns:
            continue
        path = next((home.landing / feed.council / feed.dataset).iterdir())
        if feed.format == "csv":
            df = pd.read_csv(path, sep=feed.delimiter, encoding=feed.encoding, dtype=str, keep_default_na=False)
        elif feed.format == "xlsx":
            df = pd.read_excel(path, dtype=str, keep_default_na=False)
        else:
            df = pd.read_parquet(path)
        df = df.set_index(feed.columns["record_id"])
        fmt = feed.date_formats.get("dob", feed.date_format)
        for rid in rows["record_id"]:
            value = df.at[rid, feed.columns["dob"]]
            if value is None or (isinstance(value, str) and value == "") or (not isinstance(value, str) and pd.isna(value)):
                continue                                                   # the optional dob was also left out
            day = pd.Timestamp(value).date() if not isinstance(value, str) else datetime.strptime(value, fmt).date()
            assert str(day) == "1900-01-01", (feed.feed_id, rid, value)
            seen += 1
    assert seen > 10


# -- hard negatives ----------------------------------------------------------------------------------

def test_twins_and_namesakes_are_near_misses_never_flagged(generated) -> None:
    s, r, people = generated.scenarios, generated.records, generated.people.set_index("person_id")
    flagged = set(map(tuple, generated.flags[PAIR].to_numpy()))
    keyed = r.set_index(["council", "dataset", "record_id"])
    kinds = {
        "twin of the deceased": (mt.BLUE_BADGE_DECEASED, "twin", True),
        "twins at one address": (mt.CTR_PAYROLL, "twin", True),
        "namesake of the deceased": (mt.BLUE_BADGE_DECEASED, "namesake", False),
        "namesakes (same forenames": (mt.CTR_PAYROLL, "namesake", False),
    }
    for phrase, (match_type, kind, same_address) in kinds.items():
        rows = s[s["description"].str.contains(phrase, regex=False)]
        assert len(rows) >= 3, phrase
        assert (rows["kind"] == "near_miss").all() and (rows["match_type"] == match_type).all()
        assert not set(map(tuple, rows[PAIR].to_numpy())) & flagged, phrase
        for _, x in rows.iterrows():
            left = keyed.loc[(x["left_council"], x["left_dataset"], x["left_record_id"])]
            right = keyed.loc[(x["right_council"], x["right_dataset"], x["right_record_id"])]
            a, b = people.loc[left["person_id"]], people.loc[right["person_id"]]
            assert left["person_id"] != right["person_id"]
            assert a["surname"] == b["surname"], phrase
            if kind == "twin":
                assert a["dob"] == b["dob"] and a["first_name"] != b["first_name"], phrase
                assert a["twin_of"] == right["person_id"] or b["twin_of"] == left["person_id"]
            else:
                assert a["forenames"] == b["forenames"] and a["dob"] != b["dob"], phrase
                assert max(a["doppelganger_of"], b["doppelganger_of"]) in (left["person_id"], right["person_id"])
            assert (left["address_id"] == right["address_id"]) == same_address, phrase
            assert pd.isna(left["invalid_reason"]) and pd.isna(right["invalid_reason"])


# -- the held-out profile on a generated home -----------------------------------------------------------

@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    home = Home.resolve(tmp_path_factory.mktemp("heldout-home"))
    summary = generate(home, boroughs=3, people=3000, seed=11, noise_profile="heldout")
    return home, summary


def _share(records: pd.DataFrame, tag: str) -> float:
    return float(records["variations"].astype(str).str.contains(f"(?:^|;){tag}(?:;|$)").mean())


def test_heldout_home_is_noised_differently(generated, heldout) -> None:
    home, summary = heldout
    assert summary.noise_profile == "heldout" and generated.summary.noise_profile == "default"
    recorded = yaml.safe_load((home.truth / "noise_profile.yaml").read_text())
    assert recorded["name"] == "heldout" and recorded["seed_argument"] == 11
    d, h = generated.records, pd.read_parquet(home.truth / "records.parquet")
    assert len(d) == len(h)           # same seed: same records (at this size both plant the floor of hard negatives)
    # the same records, noised differently: kinds that the held-out profile raises show up more
    for tag in ("ocr_surname", "forename_initials_only", "previous_surname_not_recorded", "typo_first_letter"):
        assert _share(h, tag) > 1.3 * _share(d, tag), tag
    assert _share(h, "nickname") < _share(d, "nickname")
    assert _share(h, "dob_first_of_year") > 0 == _share(d, "dob_first_of_year")
    # the extracts differ even though population, records and scenarios are the same
    one = "E09000007/tenancy"
    feeds_d, feeds_h = load_feeds(generated.home), load_feeds(home)
    pd_ = next((generated.home.landing / "E09000007" / "tenancy").iterdir()).read_bytes()
    ph_ = next((home.landing / "E09000007" / "tenancy").iterdir()).read_bytes()
    assert feeds_d[one] == feeds_h[one] and pd_ != ph_


def test_cli_generate_takes_a_noise_profile(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from orchestrate.cli import app

    result = CliRunner().invoke(app, ["generate", "--boroughs", "2", "--people", "400", "--seed", "2",
                                      "--noise-profile", "heldout", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "noise profile heldout" in " ".join(result.output.split())
    assert yaml.safe_load((tmp_path / "h" / "truth" / "noise_profile.yaml").read_text())["name"] == "heldout"
    result = CliRunner().invoke(app, ["generate", "--people", "400", "--noise-profile", "nosuch", "--home", str(tmp_path / "x")])
    assert result.exit_code != 0 and "nosuch" in result.output
    assert not (tmp_path / "x" / "truth").exists()


def test_shift_years_keeps_the_day_or_clamps_29_february() -> None:
    from synthetic.render import _shift_years

    dob = np.array(["2000-02-29", "1990-12-31", "1975-01-01", "1988-06-15"], dtype="datetime64[D]")
    out = _shift_years(dob, np.array([1, -1, -1, 1]))
    assert [str(d) for d in out] == ["2001-02-28", "1989-12-31", "1974-01-01", "1989-06-15"]


def _extract(home: Home, feed) -> pd.DataFrame:
    path = next((home.landing / feed.council / feed.dataset).iterdir())
    if feed.format == "csv":
        df = pd.read_csv(path, sep=feed.delimiter, encoding=feed.encoding, dtype=str, keep_default_na=False)
    elif feed.format == "xlsx":
        df = pd.read_excel(path, dtype=str, keep_default_na=False)
    else:
        df = pd.read_parquet(path)
    return df.set_index(feed.columns["record_id"])


def _day(value, fmt: str):
    if value is None or (isinstance(value, str) and value == "") or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date() if not isinstance(value, str) else datetime.strptime(value, fmt).date()


def test_noised_values_in_the_extracts_match_their_tags(generated) -> None:
    from synthetic.population import ascii_fold

    r = _joined(generated)
    people = generated.people.set_index("person_id")
    informal = {f for forms in INFORMAL.values() for f in forms} | {"MACCA"}
    checked = {"dob_year_off_by_one": 0, "forename_initials_only": 0, "informal_nickname": 0, "previous_surname_not_recorded": 0}
    for feed in load_feeds(generated.home).values():
        rows = r[(r["council"] == feed.council) & (r["dataset"] == feed.dataset) & r["invalid_reason"].isna()].set_index("record_id")
        if rows.empty:
            continue
        df = _extract(generated.home, feed)
        tags = rows["tags"]
        fore_edit = tags.str.contains("typo_forenames|ocr_forenames|respelled_forenames")
        if "dob" in feed.columns:
            fmt = feed.date_formats.get("dob", feed.date_format)
            for rid in rows.index[tags.str.contains("dob_year_off_by_one")]:
                written, true = _day(df.at[rid, feed.columns["dob"]], fmt), people.at[rows.at[rid, "person_id"], "dob"].date()
                if written is None:
                    continue
                assert abs(written.year - true.year) == 1 and written.month == true.month, (feed.feed_id, rid, written, true)
                checked["dob_year_off_by_one"] += 1
        if "forenames" in feed.columns:
            col = feed.columns["forenames"]
            for rid in rows.index[tags.str.contains("forename_initials_only") & ~fore_edit]:
                written = str(df.at[rid, col]).upper()
                true = ascii_fold(np.array([rows.at[rid, "first_name"]], dtype=object))[0].upper()
                assert len(written.replace(" ", "")) <= 2 and ascii_fold(np.array([written], dtype=object))[0][0] == true[0], (rid, written)
                checked["forename_initials_only"] += 1
            for rid in rows.index[tags.str.contains("informal_nickname") & ~fore_edit]:
                assert str(df.at[rid, col]).split(" ")[0].upper() in informal, (rid, df.at[rid, col])
                checked["informal_nickname"] += 1
        if "previous_surname" in feed.columns:
            for rid in rows.index[tags.str.contains("previous_surname_not_recorded")]:
                value = df.at[rid, feed.columns["previous_surname"]]
                assert value is None or value == "" or pd.isna(value), (rid, value)
                assert pd.notna(rows.at[rid, "previous_surname"])          # truth has one
                checked["previous_surname_not_recorded"] += 1
    assert all(n > 0 for n in checked.values()), checked
