"""Noise profiles and the vectorised text edits that apply them.

A profile (``noise_profiles.yaml``, validated by :class:`NoiseProfile`) declares, per kind of
error, the share of records it hits, so a benchmark can tune on one profile and report on
another whose errors the matcher was not built around. The edits work on whole arrays of
names at once: each string becomes a row of Unicode code points in a 2-D integer array, and a
typo, OCR confusion or respelling is one vectorised "splice" (delete d characters at position p,
insert k there), so a million-record home needs no per-row Python.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from councilmatch.fileio import load_yaml_model

PROFILES_FILE = Path(__file__).with_name("noise_profiles.yaml")
DEFAULT_PROFILE = "default"
HELDOUT_PROFILE = "heldout"

_Rate = Field(default=0.0, ge=0.0, le=1.0)


class NoiseRates(BaseModel):
    """Per-record probability of each kind of noise (among the records it can apply to)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drop_middle: float = _Rate           #: middle names left out
    nickname: float = _Rate              #: a common nickname (synthetic.nicknames.NICKNAMES: BILL for WILLIAM)
    informal_nickname: float = _Rate     #: an informal form no nickname list holds (KAZ for KAREN, MACCA for a Mc/Mac)
    initials_only: float = _Rate         #: forenames reduced to initials ("A" or "A J")
    stale_surname: float = _Rate         #: the surname before marriage, with no previous surname recorded
    married_no_previous: float = _Rate   #: the married surname, but the previous surname field left empty
    hyphen_space: float = _Rate          #: a hyphenated surname written with a space
    fold_diacritics: float = _Rate       #: diacritics stripped by the council's system
    typo_forenames: float = _Rate        #: one edit anywhere in the forenames (first letter included)
    typo_surname: float = _Rate          #: one edit anywhere in the surname (first letter included)
    ocr_name: float = _Rate              #: one OCR confusion in a name (rn/m, I/L, cl/d)
    ocr_address: float = _Rate           #: one OCR confusion in address line 1 (0/O, 1/I/L, 5/S, rn/m)
    phonetic_name: float = _Rate         #: one respelling in a name (PH/F, CK/K, EI/IE, Y/I, C/K, doubled letters)
    dob_swap: float = _Rate              #: day and month of birth swapped (day <= 12)
    dob_year_off: float = _Rate          #: year of birth one out
    dob_first_of_year: float = _Rate     #: date of birth recorded as 1 January of the birth year
    dob_placeholder: float = _Rate       #: date of birth recorded as the placeholder (1900-01-01); never on a true match
    postcode_nospace: float = _Rate
    postcode_lower: float = _Rate
    nino_spaced: float = _Rate
    missing_optional: float = _Rate      #: each optional field left empty
    missing_nino: float = _Rate          #: an optional NINO left empty


class FraudRates(BaseModel):
    """Overrides of NoiseRates for planted fraud records (unset kinds use the ordinary rate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nickname: float | None = Field(default=None, ge=0.0, le=1.0)
    informal_nickname: float | None = Field(default=None, ge=0.0, le=1.0)
    initials_only: float | None = Field(default=None, ge=0.0, le=1.0)
    stale_surname: float | None = Field(default=None, ge=0.0, le=1.0)
    typo_forenames: float | None = Field(default=None, ge=0.0, le=1.0)
    typo_surname: float | None = Field(default=None, ge=0.0, le=1.0)
    ocr_name: float | None = Field(default=None, ge=0.0, le=1.0)
    phonetic_name: float | None = Field(default=None, ge=0.0, le=1.0)
    dob_swap: float | None = Field(default=None, ge=0.0, le=1.0)
    dob_year_off: float | None = Field(default=None, ge=0.0, le=1.0)
    missing_nino: float | None = Field(default=None, ge=0.0, le=1.0)


class NoiseProfile(BaseModel):
    """A named, seeded noise configuration (see noise_profiles.yaml for the documented rates)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    #: mixed with the generator's --seed into the noise stream
    seed: int = Field(default=0, ge=0)
    #: share of typos forced onto the first letter (the rest fall uniformly on any letter, first included)
    typo_first_letter_share: float = Field(default=0.0, ge=0.0, le=1.0)
    #: the placeholder some systems write for an unknown date of birth
    placeholder_dob: date = date(1900, 1, 1)
    #: twins and namesakes planted as hard negatives, per relevant record (at least 3 of each)
    hard_negative_rate: float = Field(default=0.003, ge=0.0, le=0.05)
    rates: NoiseRates = NoiseRates()
    fraud: FraudRates = FraudRates()

    def rate(self, kind: str, fraud: np.ndarray) -> np.ndarray:
        """Per-record rate of ``kind``: the fraud override on fraud records, the ordinary rate elsewhere."""
        base = float(getattr(self.rates, kind))
        override = getattr(self.fraud, kind, None)
        return np.where(fraud, base if override is None else float(override), base)


class _ProfileFile(NoiseProfile):
    """A profile in its own YAML file: its name defaults to the file's."""

    name: str = ""


@lru_cache(maxsize=1)
def _builtin() -> dict[str, NoiseProfile]:
    raw = yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8"))
    return {name: NoiseProfile.model_validate({"name": name, **body}) for name, body in raw.items()}


def profile_names() -> list[str]:
    """Names of the built-in profiles."""
    return list(_builtin())


def load_profile(profile: str | Path | NoiseProfile | None) -> NoiseProfile:
    """A built-in profile by name, or a YAML file holding one profile (same keys as a built-in body)."""
    if isinstance(profile, NoiseProfile):
        return profile
    if profile is None:
        return _builtin()[DEFAULT_PROFILE]
    builtin = _builtin()
    if str(profile) in builtin:
        return builtin[str(profile)]
    path = Path(profile)
    if not path.suffix.lower() in (".yaml", ".yml") or not path.is_file():
        raise ValueError(f"unknown noise profile {str(profile)!r}: use one of {', '.join(builtin)} or a YAML file")
    # every problem is reported with its file, line and key (YamlModelError, a ValueError)
    body = load_yaml_model(path, _ProfileFile)
    return NoiseProfile(**{**body.model_dump(), "name": body.name or path.stem})


# -- strings as code-point matrices ------------------------------------------------------------

def to_codes(values: np.ndarray) -> np.ndarray:
    """Strings -> (n, width) uint32 code points, zero-padded (no embedded NULs in names)."""
    arr = np.asarray(values, dtype=object).astype(str)
    width = max(arr.dtype.itemsize // 4, 1)
    return np.ascontiguousarray(arr.astype(f"<U{width}")).view(np.uint32).reshape(len(arr), width).copy()


def from_codes(codes: np.ndarray) -> np.ndarray:
    """(n, width) code points -> object array of str (trailing zeros dropped)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint32)
    if codes.shape[1] == 0:
        return np.full(len(codes), "", dtype=object)
    return codes.view(f"<U{codes.shape[1]}").ravel().astype(object)


def _lengths(codes: np.ndarray) -> np.ndarray:
    return (codes != 0).sum(axis=1)


def _is_upper(c: np.ndarray) -> np.ndarray:
    return ((c >= 65) & (c <= 90)) | ((c >= 192) & (c <= 222) & (c != 215))


def _is_lower(c: np.ndarray) -> np.ndarray:
    return ((c >= 97) & (c <= 122)) | ((c >= 223) & (c <= 255) & (c != 247))


def _is_letter(c: np.ndarray) -> np.ndarray:
    return _is_upper(c) | _is_lower(c) | ((c >= 256) & (c <= 591))


def _upper(c: np.ndarray) -> np.ndarray:
    return np.where(((c >= 97) & (c <= 122)) | ((c >= 224) & (c <= 254) & (c != 247)), c - 32, c)


def _lower(c: np.ndarray) -> np.ndarray:
    return np.where(((c >= 65) & (c <= 90)) | ((c >= 192) & (c <= 222) & (c != 215)), c + 32, c)


def splice(codes: np.ndarray, pos: np.ndarray, n_del: np.ndarray, ins: np.ndarray, n_ins: np.ndarray) -> np.ndarray:
    """Per row: delete ``n_del`` characters at ``pos`` and insert the first ``n_ins`` of ``ins`` there (at most 2)."""
    n, w = codes.shape
    width = w + 2
    j = np.arange(width)[None, :]
    p, d, k = pos[:, None], n_del[:, None], n_ins[:, None]
    src = np.where(j < p, j, j - k + d)
    ok = (src >= 0) & (src < w)
    out = np.where(ok, np.take_along_axis(codes, np.clip(src, 0, w - 1), axis=1), 0)
    inserted = (j >= p) & (j < p + k)
    out = np.where(inserted, np.take_along_axis(ins, np.clip(j - p, 0, ins.shape[1] - 1), axis=1), out)
    return out.astype(np.uint32)


def _nth_true(mask: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, a uniformly chosen True column of ``mask`` (u in [0, 1)); returns (column, row has any)."""
    count = mask.sum(axis=1)
    rank = np.minimum((u * count).astype(np.int64), np.maximum(count - 1, 0))
    col = np.argmax(np.cumsum(mask, axis=1) > rank[:, None], axis=1)
    return col, count > 0


def _title_fix(before: np.ndarray, after: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """An edit at the start of a Title-case word keeps it Title case ("Smith" -> "Msith", not "mSith")."""
    title = _is_upper(before[:, 0]) & (before.shape[1] > 1) & _is_lower(before[:, min(1, before.shape[1] - 1)])
    fix = title & (pos <= 1)
    after = after.copy()
    after[fix, 0] = _upper(after[fix, 0])
    if after.shape[1] > 1:
        after[fix, 1] = _lower(after[fix, 1])
    return after


def typo(values: np.ndarray, rng: np.random.Generator, first_letter_share: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One substitution, deletion, insertion or transposition at any letter (the first one included).

    Returns the edited values, whether each was edited (values with fewer than two letters are
    left alone) and whether the edit touched the first letter.
    """
    n = len(values)
    if n == 0:
        return np.asarray(values, dtype=object).copy(), np.zeros(0, bool), np.zeros(0, bool)
    codes = to_codes(values)
    letters = _is_letter(codes)
    first = np.argmax(letters, axis=1)
    col, has = _nth_true(letters, rng.random(n))
    pos = np.where(rng.random(n) < first_letter_share, first, col)
    n_letters = letters.sum(axis=1)
    op = rng.integers(0, 4, n)                      # 0 substitute, 1 delete, 2 insert, 3 transpose
    w = codes.shape[1]
    here = codes[np.arange(n), pos]
    nxt = codes[np.arange(n), np.minimum(pos + 1, w - 1)]
    can_swap = (pos + 1 < w) & _is_letter(nxt) & (_lower(nxt) != _lower(here))
    op = np.where((op == 3) & ~can_swap, 0, op)
    op = np.where((op == 1) & (n_letters < 3), 0, op)
    letter = rng.integers(0, 26, n) + 97
    letter = np.where(letter == _lower(here), 97 + (letter - 97 + 1) % 26, letter)
    letter = np.where(_is_upper(here), letter - 32, letter)
    ins = np.zeros((n, 2), np.uint32)
    ins[:, 0] = np.where(op == 3, nxt, letter)
    ins[:, 1] = here
    n_del = np.select([op == 0, op == 1, op == 2], [1, 1, 0], 2)
    n_ins = np.select([op == 0, op == 1, op == 2], [1, 0, 1], 2)
    out = _title_fix(codes, splice(codes, pos, n_del, ins, n_ins), pos)
    done = has & (n_letters >= 2)
    result = np.where(done, from_codes(out), np.asarray(values, dtype=object))
    return result, done, done & (pos == first)


# -- pattern rules: OCR confusions and respellings ----------------------------------------------

#: (pattern, replacement, constraint); matched case-insensitively, the replacement takes the case
#: of the text it replaces. Constraints: "" any position, "not_first", "after_vowel" (and not first),
#: "before_aou" (next letter A, O or U), "single" (not next to the same letter).
Rule = tuple[str, str, str]

OCR_NAME_RULES: tuple[Rule, ...] = (
    ("RN", "M", ""), ("M", "RN", "not_first"), ("I", "L", ""), ("L", "I", ""), ("CL", "D", ""), ("D", "CL", "not_first"),
)
OCR_ADDRESS_RULES: tuple[Rule, ...] = (
    ("0", "O", ""), ("O", "0", ""), ("1", "I", ""), ("1", "L", ""), ("I", "1", ""), ("L", "1", ""),
    ("5", "S", ""), ("S", "5", ""), ("RN", "M", ""), ("M", "RN", "not_first"),
)
_DOUBLING = "BDFGLMNPRST"
PHONETIC_RULES: tuple[Rule, ...] = (
    ("PH", "F", ""), ("F", "PH", "single"), ("CK", "K", ""), ("K", "CK", "after_vowel"),
    ("EI", "IE", ""), ("IE", "EI", ""), ("Y", "I", "not_first"), ("I", "Y", "after_vowel"),
    ("C", "K", "before_aou"), ("K", "C", "before_aou"),
    *((x + x, x, "") for x in _DOUBLING),
    *((x, x + x, "after_vowel_single") for x in _DOUBLING),
)
_VOWELS = np.array([ord(c) for c in "AEIOUY"])


def _rule_mask(up: np.ndarray, rule: Rule) -> np.ndarray:
    pattern, _, constraint = rule
    n, w = up.shape
    L = len(pattern)
    m = np.zeros((n, w), bool)
    if L > w:
        return m
    hit = np.ones((n, w - L + 1), bool)
    for t, ch in enumerate(pattern):
        hit &= up[:, t:t + w - L + 1] == ord(ch)
    m[:, : w - L + 1] = hit
    prev = np.concatenate([np.zeros((n, 1), up.dtype), up[:, :-1]], axis=1)
    after = np.concatenate([up[:, L:], np.zeros((n, L), up.dtype)], axis=1)
    if "not_first" in constraint or "after_vowel" in constraint:
        m[:, 0] = False
    if "after_vowel" in constraint:
        m &= np.isin(prev, _VOWELS)
    if "single" in constraint:
        m &= (prev != ord(pattern[0])) & (after != ord(pattern[-1]))
    if constraint == "before_aou":
        m &= np.isin(after, [ord("A"), ord("O"), ord("U")])
    return m


def apply_rules(values: np.ndarray, rules: tuple[Rule, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One rule applied per value at a uniformly chosen place it fits; returns (values, applied)."""
    n = len(values)
    if n == 0:
        return np.asarray(values, dtype=object).copy(), np.zeros(0, bool)
    codes = to_codes(values)
    up = _upper(codes)
    w = codes.shape[1]
    masks = np.concatenate([_rule_mask(up, r) for r in rules], axis=1)       # (n, rules * w)
    flat, applied = _nth_true(masks, rng.random(n))
    which, pos = flat // w, flat % w
    pat_len = np.array([len(r[0]) for r in rules])[which]
    rep = np.zeros((len(rules), 2), np.uint32)
    for i, r in enumerate(rules):
        rep[i, : len(r[1])] = [ord(c) for c in r[1]]
    rep_len = np.array([len(r[1]) for r in rules])[which]
    ins = rep[which]
    rows = np.arange(n)
    here = codes[rows, pos]
    nxt = codes[rows, np.minimum(pos + 1, w - 1)]
    up0 = _is_upper(here) | (~_is_letter(here) & ~_is_lower(nxt))
    up1 = np.where(_is_letter(nxt), _is_upper(nxt), up0)
    ins[:, 0] = np.where(up0, _upper(ins[:, 0]), _lower(ins[:, 0]))
    ins[:, 1] = np.where(up1, _upper(ins[:, 1]), _lower(ins[:, 1]))
    out = _title_fix(codes, splice(codes, pos, pat_len, ins, rep_len), pos)
    return np.where(applied, from_codes(out), np.asarray(values, dtype=object)), applied
