"""Turn truth records into the clear values a council's system would hold.

This is where real-world messiness enters, vectorised over a whole data set, at the rates of
a declared noise profile (``synthetic.noise``, ``noise_profiles.yaml``): nicknames (common and
informal ones no list holds), initials-only or middle-less forenames, surnames not updated after
marriage or married names without the previous one, folded diacritics, typos anywhere in a name
(first letter included), OCR confusions, phonetic respellings, day/month-swapped, off-by-one-year
and placeholder dates of birth, odd postcode and NINO formats, missing optional values, and the
deliberately invalid rows (named in truth). Each record's ``variations`` lists what was done to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from councilmatch.contracts import DATASETS
from synthetic.names import nicknames_for
from synthetic.nicknames import INFORMAL
from synthetic.noise import OCR_ADDRESS_RULES, OCR_NAME_RULES, PHONETIC_RULES, NoiseProfile, apply_rules, load_profile, typo
from synthetic.population import Population, ascii_fold

#: Clear values per canonical field (plus address parts, _impossible, variations): column -> array.
#: A dict of arrays, not a DataFrame: a million-row frame of object columns costs seconds to consolidate.
Rendered = dict[str, np.ndarray]

#: Optional fields never blanked (blanking them changes meaning, not just completeness).
_NEVER_BLANK = {"period_end", "previous_surname", "discount", "last_used"}


class _Tags:
    """Per-record variation names as a bit set, spelled out once per distinct combination."""

    def __init__(self, n: int):
        self.bits = np.zeros(n, np.int64)
        self.names: list[str] = []

    def add(self, mask: np.ndarray, name: str) -> None:
        if name not in self.names:
            self.names.append(name)
        self.bits |= np.asarray(mask, bool).astype(np.int64) << self.names.index(name)

    def text(self) -> np.ndarray:
        uniq, inv = np.unique(self.bits, return_inverse=True)
        spelled = np.array([";".join(nm for i, nm in enumerate(self.names) if u >> i & 1) for u in uniq], dtype=object)
        return spelled[inv]


def _nicknames(first: np.ndarray, chosen: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    table = nicknames_for()
    inv, uniq = pd.factorize(first)
    options = [table.get(u.upper(), []) for u in uniq]
    width = max((len(o) for o in options), default=0)
    if width == 0:
        return first, np.zeros(len(first), bool)
    grid = np.array([o + [""] * (width - len(o)) for o in options], dtype=object)
    count = np.array([len(o) for o in options])[inv]
    hit = chosen & (count > 0)
    pick = np.floor(rng.random(len(first)) * np.maximum(count, 1)).astype(int)
    nick = pd.Series(grid[inv, pick], dtype=object).str.title().to_numpy()
    return np.where(hit, nick, first), hit


def _informal(first: np.ndarray, surname: np.ndarray, sex: np.ndarray, chosen: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Informal forms no nickname list holds (synthetic.nicknames.INFORMAL; MACCA for a man named Mc/Mac...)."""
    inv, uniq = pd.factorize(first)
    options = [list(INFORMAL.get(str(u).upper(), ())) for u in uniq]
    width = max((len(o) for o in options), default=0)
    count = np.array([len(o) for o in options] + [0])[inv]
    mac = (sex == "M") & pd.Series(surname, dtype=object).str.match(r"Ma?c[A-Z]").to_numpy(dtype=bool, na_value=False)
    out = first.copy()
    hit = chosen & (count > 0)
    if width:
        grid = np.array([o + [""] * (width - len(o)) for o in options], dtype=object)
        pick = np.floor(rng.random(len(first)) * np.maximum(count, 1)).astype(int)
        out[hit] = pd.Series(grid[inv[hit], pick[hit]], dtype=object).str.title().to_numpy()
    from_surname = chosen & (count == 0) & mac
    out[from_surname] = "Macca"
    return out, hit | from_surname


def _initials(first: np.ndarray, middle: np.ndarray, keep_middle: np.ndarray) -> np.ndarray:
    """"A" for Adnan; "A J" for Adnan James where the middle initial is kept."""
    f0 = pd.Series(first, dtype=object).str[0]
    m0 = pd.Series(middle, dtype=object).str[0]
    return np.where(keep_middle & m0.notna().to_numpy(), (f0 + " " + m0.fillna("")).to_numpy(), f0.to_numpy())


def _names_with_rules(forenames: np.ndarray, surname: np.ndarray, chosen: np.ndarray, rules, rng: np.random.Generator,
                      tags: "_Tags", label: str) -> None:
    """One rule application per chosen record, on the forenames or the surname (the other if the first has no place for it)."""
    if not chosen.any():
        tags.add(np.zeros(len(chosen), bool), f"{label}_forenames")
        tags.add(np.zeros(len(chosen), bool), f"{label}_surname")
        return
    on_fore = chosen & (rng.random(len(chosen)) < 0.5)
    done = {"forenames": np.zeros(len(chosen), bool), "surname": np.zeros(len(chosen), bool)}
    for first_try, arr, other, other_arr in ((on_fore, forenames, "surname", surname), (chosen & ~on_fore, surname, "forenames", forenames)):
        name = "forenames" if arr is forenames else "surname"
        rows = np.flatnonzero(first_try)
        arr[rows], ok = apply_rules(arr[rows], rules, rng)
        done[name][rows[ok]] = True
        retry = rows[~ok]
        other_arr[retry], ok2 = apply_rules(other_arr[retry], rules, rng)
        done[other][retry[ok2]] = True
    tags.add(done["forenames"], f"{label}_forenames")
    tags.add(done["surname"], f"{label}_surname")


def _shift_years(dob: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """dob + delta years (29 February becomes 28 February in a common year)."""
    y = dob.astype("datetime64[Y]")
    month_start = dob.astype("datetime64[M]")
    day = (dob - month_start.astype("datetime64[D]")).astype(np.int64)
    month = (month_start - y.astype("datetime64[M]")).astype(np.int64)
    new_month = (y + delta).astype("datetime64[M]") + month
    month_len = ((new_month + 1).astype("datetime64[D]") - new_month.astype("datetime64[D]")).astype(np.int64)
    return new_month.astype("datetime64[D]") + np.minimum(day, month_len - 1)


def render(recs: pd.DataFrame, pop: Population, rng: np.random.Generator, profile: NoiseProfile | None = None) -> Rendered:
    """Clear values for the records of one data set.

    ``recs`` carries invalid_kind/invalid_field and, optionally, ``protected`` (the record is part
    of an expected flag or a scenario: a placeholder date of birth is never put on it, so recall
    stays measurable whatever ingest does with placeholders).
    """
    profile = profile or load_profile(None)
    dataset = recs["dataset"].iat[0]
    spec = DATASETS[dataset]
    fields = set(spec.required) | set(spec.optional)
    n = len(recs)
    pp = pop.people
    pid = recs["person_id"].to_numpy()
    aid = recs["address_id"].to_numpy()
    fraud = (recs["origin"] == "fraud").to_numpy()
    protected = recs["protected"].to_numpy(dtype=bool) if "protected" in recs.columns else np.ones(n, bool)
    tags = _Tags(n)
    registered = dataset != "deceased"        # the deceased feed holds the registered name, not a nickname

    def person(col: str) -> np.ndarray:
        return pp[col].to_numpy()[pid]

    def rate(name: str) -> np.ndarray:
        return profile.rate(name, fraud)

    def draw(name: str) -> np.ndarray:
        return rng.random(n) < rate(name)

    # forenames
    first = person("first_name").copy()
    middle = person("middle_names")
    drop = pd.notna(middle) & draw("drop_middle")
    tags.add(drop, "middle_names_dropped")
    nick = np.zeros(n, bool)
    informal = np.zeros(n, bool)
    if registered:
        first, nick = _nicknames(first, draw("nickname"), rng)
        first, informal = _informal(first, person("surname"), person("sex"), draw("informal_nickname") & ~nick, rng)
    tags.add(nick, "nickname")
    tags.add(informal, "informal_nickname")
    forenames = np.where(pd.isna(middle) | drop, first, first + " " + middle.astype(str))
    initials = draw("initials_only") & ~nick & ~informal & registered
    if initials.any():
        forenames[initials] = _initials(person("first_name")[initials], np.where(drop, None, middle)[initials],
                                        rng.random(int(initials.sum())) < 0.5)
    tags.add(initials, "forename_initials_only")

    # surname (and the previous one where the data set has it)
    surname = person("surname").copy()
    previous = person("previous_surname")
    stale = pd.notna(previous) & draw("stale_surname") & registered
    surname = np.where(stale, previous, surname)
    previous_out = np.where(stale, None, previous)
    tags.add(stale, "previous_surname_used")
    unrecorded = pd.notna(previous) & ~stale & draw("married_no_previous") & ("previous_surname" in fields)
    previous_out = np.where(unrecorded, None, previous_out)
    tags.add(unrecorded, "previous_surname_not_recorded")
    hyph = draw("hyphen_space")
    hyph[hyph] = pd.Series(surname[hyph], dtype=object).str.contains("-", regex=False).to_numpy(dtype=bool, na_value=False)
    surname = surname.copy()
    surname[hyph] = pd.Series(surname[hyph], dtype=object).str.replace("-", " ", regex=False).to_numpy()
    tags.add(hyph, "hyphen_as_space")

    # diacritics folded by some systems
    fold = draw("fold_diacritics")
    fn_f, sn_f = ascii_fold(forenames[fold]), ascii_fold(surname[fold])
    folded = np.zeros(n, bool)
    folded[np.flatnonzero(fold)[(fn_f != forenames[fold]) | (sn_f != surname[fold])]] = True
    forenames[fold], surname[fold] = fn_f, sn_f
    tags.add(folded, "diacritics_folded")

    # typos anywhere (first letter included), OCR confusions, phonetic respellings
    first_letter = np.zeros(n, bool)
    for col, arr in (("forenames", forenames), ("surname", surname)):
        rows = np.flatnonzero(draw(f"typo_{col}"))
        arr[rows], applied, on_first = typo(arr[rows], rng, profile.typo_first_letter_share)
        done = np.zeros(n, bool)
        done[rows[applied]] = True
        first_letter[rows[on_first]] = True
        tags.add(done, f"typo_{col}")
    tags.add(first_letter, "typo_first_letter")
    _names_with_rules(forenames, surname, draw("ocr_name"), OCR_NAME_RULES, rng, tags, "ocr")
    _names_with_rules(forenames, surname, draw("phonetic_name"), PHONETIC_RULES, rng, tags, "respelled")

    # date of birth: day and month swapped, year one out, 1 January of the year, a placeholder
    dob = person("dob").astype("datetime64[D]").copy()
    has_dob = "dob" in fields
    parts = pd.DatetimeIndex(dob)
    swap = (parts.day <= 12) & (parts.day != parts.month) & draw("dob_swap") & has_dob
    if swap.any():
        swapped = pd.to_datetime(pd.DataFrame({"year": parts.year[swap], "month": parts.day[swap], "day": parts.month[swap]}))
        dob[swap] = swapped.to_numpy().astype("datetime64[D]")
    tags.add(swap, "dob_day_month_swapped")
    year_off = draw("dob_year_off") & ~swap & has_dob
    dob[year_off] = _shift_years(dob[year_off], np.where(rng.random(int(year_off.sum())) < 0.5, -1, 1))
    tags.add(year_off, "dob_year_off_by_one")
    jan1 = dob.astype("datetime64[Y]").astype("datetime64[D]")
    first_of_year = draw("dob_first_of_year") & (dob != jan1) & has_dob
    dob[first_of_year] = jan1[first_of_year]
    tags.add(first_of_year, "dob_first_of_year")
    invalid = pd.notna(recs["invalid_kind"].to_numpy()) if "invalid_kind" in recs.columns else np.zeros(n, bool)
    placeholder = draw("dob_placeholder") & ~protected & ~invalid & has_dob
    dob[placeholder] = np.datetime64(profile.placeholder_dob, "D")
    tags.add(placeholder, "dob_placeholder")

    # NINO formats
    nino = person("nino").copy()
    spaced = draw("nino_spaced")
    lower = rng.random(n) < 0.6
    s = pd.Series(nino[spaced], dtype=object)
    spaced_text = s.str[:2] + " " + s.str[2:4] + " " + s.str[4:6] + " " + s.str[6:8] + " " + s.str[8:]
    nino[spaced] = np.where(lower[spaced], spaced_text.str.lower(), spaced_text)
    tags.add(spaced, "nino_formatted")

    # address
    ad = pop.addresses
    postcode = ad["postcode"].to_numpy()[aid].copy()
    r = rng.random(n)
    nospace = r < rate("postcode_nospace")
    lowpc = (r >= 0.5) & (r < 0.5 + rate("postcode_lower"))
    postcode[nospace] = pd.Series(postcode[nospace], dtype=object).str.replace(" ", "", regex=False).to_numpy()
    postcode[lowpc] = pd.Series(postcode[lowpc], dtype=object).str.lower().to_numpy()
    tags.add(nospace | lowpc, "postcode_formatted")
    line1 = ad["address_line_1"].to_numpy()[aid].copy()
    rows = np.flatnonzero(draw("ocr_address") & ("address_lines" in fields))
    line1[rows], ok = apply_rules(line1[rows], OCR_ADDRESS_RULES, rng)
    ocr_addr = np.zeros(n, bool)
    ocr_addr[rows[ok]] = True
    tags.add(ocr_addr, "ocr_address")

    values: Rendered = {
        "record_id": recs["record_id"].to_numpy(),
        "council_idx": recs["council_idx"].to_numpy(),
        "forenames": forenames, "surname": surname, "previous_surname": previous_out,
        "dob": dob, "nino": nino,
        "address_line_1": line1, "locality": ad["locality"].to_numpy()[aid],
        "town": ad["town"].to_numpy()[aid], "postcode": postcode, "uprn": ad["uprn"].to_numpy()[aid],
        "email": person("email"), "phone": person("phone"),
        "bank_sort_code": person("bank_sort_code"), "bank_account": person("bank_account"),
        "period_start": recs["period_start"].to_numpy().astype("datetime64[D]"),
        "period_end": recs["period_end"].to_numpy().astype("datetime64[D]"),
        "discount": recs["discount"].array.copy(), "amount": recs["amount"].to_numpy().copy(),
        "last_used": recs["last_used"].to_numpy().astype("datetime64[D]"),
        "date_of_death": recs["date_of_death"].to_numpy().astype("datetime64[D]"),
        "_impossible": np.full(n, None, dtype=object),
    }

    def blank(col: str, rows: np.ndarray) -> None:
        arr = values[col]
        arr[rows] = np.datetime64("NaT") if arr.dtype.kind == "M" else (pd.NA if col == "discount" else (np.nan if col == "amount" else None))

    # missing optional values
    for f in spec.optional:
        if f in _NEVER_BLANK:
            continue
        gone = draw("missing_nino" if f == "nino" else "missing_optional")
        for c in (["address_line_1", "locality", "town"] if f == "address_lines" else [f]):
            blank(c, gone)
        tags.add(gone, f"missing_{f}")

    # deliberately invalid rows
    kind = recs["invalid_kind"].to_numpy()
    field = recs["invalid_field"].to_numpy()
    bad_nino = kind == "invalid_nino"
    if bad_nino.any():
        base = pd.Series(person("nino")[bad_nino], dtype=object)
        variants = np.stack([("QQ" + base.str[2:]).to_numpy(), (base.str[:7] + base.str[8:]).to_numpy(),
                             (base.str[:8] + "E").to_numpy()])
        values["nino"][bad_nino] = variants[rng.integers(0, 3, bad_nino.sum()), np.arange(bad_nino.sum())]
    for f in np.unique(field[kind == "missing_mandatory"].astype(str)):
        blank(f, (kind == "missing_mandatory") & (field == f))
    imp = kind == "impossible_date"
    values["_impossible"][imp] = field[imp]
    values["variations"] = tags.text()
    return values


def slice_rendered(values: Rendered, lo: int, hi: int) -> Rendered:
    """Rows lo:hi of every column (one council's part of a data set)."""
    return {k: v[lo:hi] for k, v in values.items()}
