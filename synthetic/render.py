"""Turn truth records into the clear values a council's system would hold.

This is where real-world messiness enters, at low rates and vectorised over a whole
data set: nicknames, dropped middle names, a surname not updated after marriage,
folded diacritics, one-edit typos, day/month swaps, odd postcode and NINO formats,
missing optional values, and the deliberately invalid rows (named in truth).
Each record's ``variations`` lists what was done to it, for evaluation.
"""

from __future__ import annotations

import string

import numpy as np
import pandas as pd

from councilmatch.contracts import DATASETS
from synthetic.names import nicknames_for
from synthetic.population import Population, ascii_fold

#: Clear values per canonical field (plus address parts, _impossible, variations): column -> array.
#: A dict of arrays, not a DataFrame: a million-row frame of object columns costs seconds to consolidate.
Rendered = dict[str, np.ndarray]

#: Per-record rates of each variation. Planted fraud records vary more (FRAUD_RATES): people
#: holding two tenancies or jobs tend to give slightly different details on each.
FRAUD_RATES = {"nickname": 0.30, "stale_surname": 0.30, "typo_forenames": 0.03, "typo_surname": 0.03,
               "dob_swap": 0.03, "missing_nino": 0.25}
RATES = {
    "drop_middle": 0.30, "nickname": 0.06, "stale_surname": 0.15,
    "hyphen_space": 0.20, "fold_diacritics": 0.30, "typo_forenames": 0.01, "typo_surname": 0.01,
    "dob_swap": 0.005, "postcode_nospace": 0.03, "postcode_lower": 0.03, "nino_spaced": 0.05,
    "missing_optional": 0.02, "missing_nino": 0.02,
}
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


def one_edit(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One substitution, deletion, insertion or transposition per value (a small subset only)."""
    out = values.copy()
    ops = rng.integers(0, 4, len(values))
    picks = rng.random(len(values))
    letters = rng.integers(0, 26, len(values))
    for k, v in enumerate(values):           # runs on ~1% of rows
        s = str(v)
        pos = [i for i, ch in enumerate(s) if ch.isalpha()]
        if len(pos) < 3:
            continue
        i = pos[1 + int(picks[k] * (len(pos) - 2))]    # never the first letter
        c = string.ascii_lowercase[letters[k]]
        c = c.upper() if s[i].isupper() else c
        if ops[k] == 0:
            s = s[:i] + (c if c.lower() != s[i].lower() else ("x" if c.lower() != "x" else "z")) + s[i + 1:]
        elif ops[k] == 1:
            s = s[:i] + s[i + 1:]
        elif ops[k] == 2:
            s = s[:i] + c + s[i:]
        elif s[i - 1] != s[i]:
            s = s[:i - 1] + s[i] + s[i - 1] + s[i + 1:]
        else:
            s = s[:i] + s[i + 1:]
        out[k] = s
    return out


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


def render(recs: pd.DataFrame, pop: Population, rng: np.random.Generator) -> Rendered:
    """Clear values for the records of one data set (``recs`` carries invalid_kind/invalid_field)."""
    dataset = recs["dataset"].iat[0]
    spec = DATASETS[dataset]
    n = len(recs)
    pp = pop.people
    pid = recs["person_id"].to_numpy()
    aid = recs["address_id"].to_numpy()
    fraud = (recs["origin"] == "fraud").to_numpy()
    tags = _Tags(n)

    def person(col: str) -> np.ndarray:
        return pp[col].to_numpy()[pid]

    # forenames
    first = person("first_name").copy()
    middle = person("middle_names")
    drop = pd.notna(middle) & (rng.random(n) < RATES["drop_middle"])
    tags.add(drop, "middle_names_dropped")
    def rate(name: str) -> np.ndarray:
        return np.where(fraud, FRAUD_RATES.get(name, RATES.get(name, 0.0)), RATES.get(name, 0.0))

    if dataset != "deceased":
        first, nick = _nicknames(first, rng.random(n) < rate("nickname"), rng)
        tags.add(nick, "nickname")
    forenames = np.where(pd.isna(middle) | drop, first, first + " " + middle.astype(str))

    # surname (and the previous one where the data set has it)
    surname = person("surname").copy()
    previous = person("previous_surname")
    stale = pd.notna(previous) & (rng.random(n) < rate("stale_surname")) & (dataset != "deceased")
    surname = np.where(stale, previous, surname)
    previous_out = np.where(stale, None, previous)
    tags.add(stale, "previous_surname_used")
    hyph = (rng.random(n) < RATES["hyphen_space"])
    hyph[hyph] = pd.Series(surname[hyph], dtype=object).str.contains("-", regex=False).to_numpy(dtype=bool, na_value=False)
    surname = surname.copy()
    surname[hyph] = pd.Series(surname[hyph], dtype=object).str.replace("-", " ", regex=False).to_numpy()
    tags.add(hyph, "hyphen_as_space")

    # diacritics folded by some systems
    fold = rng.random(n) < RATES["fold_diacritics"]
    fn_f, sn_f = ascii_fold(forenames[fold]), ascii_fold(surname[fold])
    folded = np.zeros(n, bool)
    folded[np.flatnonzero(fold)[(fn_f != forenames[fold]) | (sn_f != surname[fold])]] = True
    forenames[fold], surname[fold] = fn_f, sn_f
    tags.add(folded, "diacritics_folded")

    # typos
    for col, arr in (("forenames", forenames), ("surname", surname)):
        t = rng.random(n) < rate(f"typo_{col}")
        if t.any():
            arr[t] = one_edit(arr[t], rng)
        tags.add(t, f"typo_{col}")

    # date of birth, day and month swapped
    dob = person("dob").astype("datetime64[D]")
    parts = pd.DatetimeIndex(dob)
    swap = (parts.day <= 12) & (parts.day != parts.month) & (rng.random(n) < rate("dob_swap"))
    if swap.any():
        swapped = pd.to_datetime(pd.DataFrame({"year": parts.year[swap], "month": parts.day[swap], "day": parts.month[swap]}))
        dob = dob.copy()
        dob[swap] = swapped.to_numpy().astype("datetime64[D]")
    tags.add(swap, "dob_day_month_swapped")

    # NINO formats
    nino = person("nino").copy()
    spaced = rng.random(n) < RATES["nino_spaced"]
    lower = rng.random(n) < 0.6
    s = pd.Series(nino[spaced], dtype=object)
    spaced_text = s.str[:2] + " " + s.str[2:4] + " " + s.str[4:6] + " " + s.str[6:8] + " " + s.str[8:]
    nino[spaced] = np.where(lower[spaced], spaced_text.str.lower(), spaced_text)
    tags.add(spaced, "nino_formatted")

    # address
    ad = pop.addresses
    postcode = ad["postcode"].to_numpy()[aid].copy()
    r = rng.random(n)
    nospace, lowpc = r < RATES["postcode_nospace"], (r >= 0.5) & (r < 0.5 + RATES["postcode_lower"])
    postcode[nospace] = pd.Series(postcode[nospace], dtype=object).str.replace(" ", "", regex=False).to_numpy()
    postcode[lowpc] = pd.Series(postcode[lowpc], dtype=object).str.lower().to_numpy()
    tags.add(nospace | lowpc, "postcode_formatted")

    values: Rendered = {
        "record_id": recs["record_id"].to_numpy(),
        "council_idx": recs["council_idx"].to_numpy(),
        "forenames": forenames, "surname": surname, "previous_surname": previous_out,
        "dob": dob, "nino": nino,
        "address_line_1": ad["address_line_1"].to_numpy()[aid], "locality": ad["locality"].to_numpy()[aid],
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
        gone = rng.random(n) < (rate("missing_nino") if f == "nino" else RATES["missing_optional"])
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
