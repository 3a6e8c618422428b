"""Incremental nights and saved models: link only what changed, re-train only when due.

Records are known across extracts by their reference (council, data set, record id) and a
hash of their pseudonymised row (every column but the extract id). Against the last linked
run, a record is *dirty* when its reference is new, its row hash changed, or it is gone.

A flag depends only on its two records and the model, with two exceptions handled here:

* **the model**, including its term-frequency tables. TF tables are computed from the pool
  when the model is trained and saved with it (``<mt>.tf.parquet``), not recomputed each
  night: with nightly tables every pair agreeing on a TF-adjusted field would change score
  whenever any record changed (u = Σp² moves), and an incremental night could not equal a
  full re-run. A new model (re-training) makes that match type's night a full one.
* **the household judgement** of ``same_address_different_person`` types
  (``left_person_missing``): a left record's flags depend on every right record at its
  address, so every left record that shares a linkage blocking key with a dirty right
  record, tonight or in the last run, is re-linked whole.

So an incremental night keeps the last run's flags whose records are all clean, and links
every candidate pair touching a dirty record against the whole pool; with the same model
its flags equal a full re-run's (``tests/matching/test_incremental.py`` proves it).

The saved model (``store/models/<match type>.json``) is self-describing: the match type's
settings and their hash, the key id the tokens were made under, the run and date it was
trained, the agreement-pattern distribution of its training pairs, m/u/λ/caps, the fit check.
It is re-trained when the settings or key change, when it is ``retrain_days`` old, or when
the drift (total-variation distance between the agreement patterns of tonight's new
candidate pairs and the saved ones) reaches ``drift_threshold``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from anonymise import at_rest
from anonymise.errors import AnonymiseError
from anonymise.pseudonymised import file_metadata, kept_index
from anonymise.record_index import ref_keys, row_hashes
from anonymise.tokens import ENCODING
from councilmatch.home import Home
from matching.blocking import _agree_on, blocking_key, Candidates
from matching.comparisons import Pairs, Side
from matching.flags import read_parquet_at_rest, write_parquet_atomic
from matching.matchtype import MatchType
from matching.model import agreement_patterns, comparison_vectors, total_variation
from matching.training import ESTIMATOR_REVISION

#: bump when the saved model's layout changes: older files are re-trained. 2: a comparison's
#: ``given`` is a list of groups, each with its own u and weights per level
MODEL_FORMAT = 2
#: dirty records sampled per side to measure drift (the measure needs a sample, not all pairs)
DRIFT_SAMPLE_ROWS = 5_000

REF = ("council", "dataset", "record_id")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Records across extracts
# ---------------------------------------------------------------------------


#: id(frame) -> (weak reference to the frame, its reference keys): the plan asks for the keys of
#: the same pooled data set once per match type and side; hashing a million ids takes a second
_FRAME_REFS: dict[int, tuple[weakref.ref, np.ndarray]] = {}


def frame_ref_keys(frame: pd.DataFrame) -> np.ndarray:
    """``ref_keys`` of a frame's records, computed once per (unchanged) frame in this process."""
    cached = _FRAME_REFS.get(id(frame))
    if cached is not None and cached[0]() is frame and len(cached[1]) == len(frame):
        return cached[1]
    keys = ref_keys(frame["council"], frame["dataset"], frame["record_id"])
    if len(frame) >= 10_000:  # small frames (subsets, flags) are cheap: only pooled data sets are kept
        _remember_refs(frame, keys)
    return keys


def _remember_refs(frame: pd.DataFrame, keys: np.ndarray) -> None:
    key = id(frame)
    _FRAME_REFS[key] = (weakref.ref(frame, lambda _r, key=key: _FRAME_REFS.pop(key, None)), keys)


def index_of(frame: pd.DataFrame, table: pa.Table | None = None) -> pd.DataFrame:
    """(ref, row) hashes of one frame's records (``table``: see :func:`row_hashes`)."""
    return pd.DataFrame({"ref": frame_ref_keys(frame).view(np.int64), "row": row_hashes(frame, table).view(np.int64)})


def record_index(data: dict[str, pd.DataFrame], files: dict[str, list[Path]] | None = None,
                 home: Home | None = None) -> pd.DataFrame:
    """(ref, row) hashes of every record of the pool, as int64 (Parquet has no uint64 need).

    ``files``: each data set's extracts, in the order its frame holds their rows; an extract's
    index kept beside it (:mod:`anonymise.record_index`) is read instead of hashing its rows."""
    parts = [_dataset_index(f, (files or {}).get(ds, []), home) for ds, f in data.items() if len(f)]
    if not parts:
        return pd.DataFrame({"ref": pd.Series(dtype="int64"), "row": pd.Series(dtype="int64")})
    return pd.concat(parts, ignore_index=True)


def _dataset_index(frame: pd.DataFrame, files: list[Path], home: Home | None) -> pd.DataFrame:
    """One data set's share of :func:`record_index`: extract by extract, kept or hashed."""
    if not files or home is None:
        return index_of(frame)
    pieces, start = [], 0
    for path in files:
        piece = kept_index(path, home)
        if piece is None:  # none kept (an extract from before indexes were kept, or rewritten since)
            n = int(file_metadata(path, home).get("rows", -1))
            if n < 0 or start + n > len(frame):
                return index_of(frame)
            piece = index_of(frame.iloc[start:start + n])
        pieces.append(piece)
        start += len(piece)
    if start != len(frame):
        return index_of(frame)
    index = pd.concat(pieces, ignore_index=True)
    _remember_refs(frame, index["ref"].to_numpy(np.int64).view(np.uint64))
    return index


def _record_keys(index: pd.DataFrame) -> np.ndarray:
    """One 64-bit key per (ref, row) pair, for a fast set difference."""
    with np.errstate(over="ignore"):
        ref = index["ref"].to_numpy(dtype=np.int64).view(np.uint64)
        row = index["row"].to_numpy(dtype=np.int64).view(np.uint64)
        key = (ref * np.uint64(0x9E3779B97F4A7C15)) ^ row
        key ^= key >> np.uint64(31)
    return key.view(np.int64)


def member(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """``np.isin(values, among)`` by hash table, not by sorting: ten times faster on a million
    64-bit keys (the record index, the dirty records)."""
    return pd.Series(values, copy=False).isin(among).to_numpy(dtype=bool)


def dirty_refs(previous: pd.DataFrame, current: pd.DataFrame) -> np.ndarray:
    """Reference keys (int64) of records added, changed or removed since ``previous``."""
    prev, cur = _record_keys(previous), _record_keys(current)
    added_or_changed = current["ref"].to_numpy()[~member(cur, prev)]
    removed_or_changed = previous["ref"].to_numpy()[~member(prev, cur)]
    return np.unique(np.concatenate([added_or_changed, removed_or_changed]))


def rows_of(frame: pd.DataFrame, refs: np.ndarray) -> np.ndarray:
    """Row positions of ``frame`` whose reference is among ``refs``."""
    if len(refs) == 0 or len(frame) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(member(frame_ref_keys(frame).view(np.int64), refs))


def flag_touches(flags: pd.DataFrame, refs: np.ndarray, side: str) -> np.ndarray:
    """Whether each flag's ``side`` ("left"/"right") record is among ``refs``."""
    if len(flags) == 0:
        return np.zeros(0, dtype=bool)
    keys = ref_keys(flags[f"{side}_council"], flags[f"{side}_dataset"], flags[f"{side}_record_id"])
    return member(keys.view(np.int64), refs)


# ---------------------------------------------------------------------------
# Candidate pairs touching given records
# ---------------------------------------------------------------------------


_KEYS: "weakref.WeakKeyDictionary[Side, dict]" = weakref.WeakKeyDictionary()


def _sorted_keys(side: Side, rule: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(key, present, sorted keys of present rows, their row positions) of one rule, computed
    once per side in this process (the side is kept for the match type's next shard)."""
    cache = _KEYS.setdefault(side, {})
    name = tuple(rule)
    if name not in cache:
        key, ok = blocking_key(side, rule)
        rows = np.flatnonzero(ok)
        order = np.argsort(key[rows], kind="stable")
        cache[name] = (key, ok, key[rows][order], rows[order])
    return cache[name]


def _pairs_of_rows(side: Side, other: Side, rule: list[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row of ``side`` among ``rows``, row of ``other``) agreeing on the rule's key: a
    binary search per row in the other side's sorted keys, so the work is the rows' pairs."""
    key, ok, _, _ = _sorted_keys(side, rule)
    _, _, sorted_keys, positions = _sorted_keys(other, rule)
    rows = rows[ok[rows]]
    wanted = key[rows]
    lo = np.searchsorted(sorted_keys, wanted, "left")
    hi = np.searchsorted(sorted_keys, wanted, "right")
    count = hi - lo
    total = int(count.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    left = np.repeat(rows, count)
    start = np.repeat(lo - (np.cumsum(count) - count), count)
    right = positions[start + np.arange(total)]
    keep = _agree_on(side, other, rule, left, right)  # guards against key collisions
    return left[keep], right[keep]


def touching_pairs(left: Side, right: Side, rules: list[list[str]], dedupe: bool,
                   left_rows: np.ndarray, right_rows: np.ndarray) -> Candidates:
    """Every candidate pair (of any rule) whose left record is in ``left_rows`` or whose right
    record is in ``right_rows``, each once, in a fixed order. With ``dedupe`` (one side) the
    rows are merged and pairs are unordered, as :func:`candidate_pairs` gives them.

    The same pairs :func:`candidate_pairs` would find among all pairs, restricted to these
    rows (``tests/matching/test_incremental_pairs.py``)."""
    left_rows = np.asarray(left_rows, dtype=np.int64)
    right_rows = np.asarray(right_rows, dtype=np.int64)
    lis, ris = [], []
    for rule in rules:
        if dedupe:
            rows = np.unique(np.concatenate([left_rows, right_rows]))
            if len(rows):
                a, b = _pairs_of_rows(left, left, rule, rows)
                keep = a != b
                lis.append(np.minimum(a, b)[keep])
                ris.append(np.maximum(a, b)[keep])
            continue
        if len(left_rows):
            a, b = _pairs_of_rows(left, right, rule, left_rows)
            lis.append(a)
            ris.append(b)
        if len(right_rows):
            b, a = _pairs_of_rows(right, left, rule, right_rows)
            lis.append(a)
            ris.append(b)
    if not lis:
        empty = np.zeros(0, dtype=np.int64)
        return Candidates(empty, empty, np.zeros(0, dtype=np.int16))
    li, ri = np.concatenate(lis), np.concatenate(ris)
    width = np.int64(max(left.n, right.n, 1))
    code = np.unique(li * width + ri)  # sorted: a fixed order whatever found them
    return Candidates(code // width, code % width, np.zeros(len(code), dtype=np.int16))


def rows_sharing_keys(side: Side, others: Side, rules: list[list[str]]) -> np.ndarray:
    """Rows of ``side`` that share a blocking key of any rule with any record of ``others``."""
    hit = np.zeros(side.n, dtype=bool)
    if others.n == 0:
        return np.zeros(0, dtype=np.int64)
    for rule in rules:
        key, ok = blocking_key(side, rule)
        okey, ook = blocking_key(others, rule)
        hit |= ok & member(key, okey[ook])
    return np.flatnonzero(hit)


# ---------------------------------------------------------------------------
# Saved models
# ---------------------------------------------------------------------------


def models_dir(home: Home) -> Path:
    return home.store / "models"


def model_path(home: Home, match_type: str) -> Path:
    return models_dir(home) / f"{match_type}.json"


def tf_path(home: Home, match_type: str) -> Path:
    return models_dir(home) / f"{match_type}.tf.parquet"


def settings_of(mt: MatchType) -> dict[str, Any]:
    return json.loads(mt.model_dump_json())


def settings_hash(mt: MatchType) -> str:
    """sha256 of the match type's settings: a changed YAML forces re-training."""
    text = json.dumps({"format": MODEL_FORMAT, "match_type": settings_of(mt)}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_id(saved: dict[str, Any]) -> str:
    """Identity of a saved model (its parameters and TF tables): the same id, the same scores."""
    body = {k: v for k, v in saved.items() if k not in ("reuse",)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()[:20]


def tf_frame(models: Any) -> pd.DataFrame:
    """The term-frequency tables of a trained ``Models`` as one frame (order kept: the Σp² sum
    is taken in it)."""
    parts = []
    for which, model in (("linkage", models.linkage), ("person", models.person)):
        if model is None:
            continue
        for name, (column, freq) in model.tf.items():
            parts.append(pd.DataFrame({"model": which, "comparison": name, "column": column,
                                       "token": freq.index.to_numpy(dtype=np.int64),
                                       "freq": freq.to_numpy(dtype=np.float64)}))
    if not parts:
        return pd.DataFrame({"model": pd.Series(dtype=object), "comparison": pd.Series(dtype=object),
                             "column": pd.Series(dtype=object), "token": pd.Series(dtype="int64"),
                             "freq": pd.Series(dtype="float64")})
    return pd.concat(parts, ignore_index=True)


def tf_tables_of(frame: pd.DataFrame) -> dict[str, dict[str, tuple[str, pd.Series]]]:
    """{"linkage"|"person": {comparison: (column, freq by token)}} from :func:`tf_frame`."""
    out: dict[str, dict[str, tuple[str, pd.Series]]] = {"linkage": {}, "person": {}}
    for (which, name), part in frame.groupby(["model", "comparison"], sort=False):
        freq = pd.Series(part["freq"].to_numpy(dtype=np.float64), index=part["token"].to_numpy(dtype=np.int64),
                         name="proportion")
        out[str(which)][str(name)] = (str(part["column"].iloc[0]), freq)
    return out


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(home: Home, mt: MatchType, models: Any, run_id: str, run_day: str, key_id: str,
               records: int) -> dict[str, Any]:
    """Write the self-describing model file and its TF tables (both encrypted at rest: the TF
    tables hold tokens and their frequencies); returns the saved JSON."""

    tf = write_parquet_atomic(tf_frame(models), tf_path(home, mt.id), home)
    saved = {
        "format": MODEL_FORMAT,
        "match_type": mt.id,
        "settings": settings_of(mt),
        "settings_hash": settings_hash(mt),
        "key_id": key_id,
        "encoding": ENCODING,
        "estimator": ESTIMATOR_REVISION,
        "trained_run": run_id,
        "trained_on": run_day,
        "records": int(records),
        "tf_file": tf.name,
        "tf_sha256": file_sha256(tf),
        **models.to_json(),
    }
    at_rest.write_json(model_path(home, mt.id), saved, home)
    return saved


def load_saved(home: Home, match_type: str) -> dict[str, Any] | None:
    """The saved model of a match type, or None when there is none or it is unreadable (damaged,
    not encrypted by this home, moved from another match type's place)."""

    path = model_path(home, match_type)
    if not path.exists():
        return None
    try:
        saved = at_rest.read_json(path, home)
    except (OSError, ValueError, AnonymiseError) as exc:
        log.warning("saved model %s is unreadable (%s): re-training", path, exc)
        return None
    if not isinstance(saved, dict) or saved.get("match_type") != match_type:
        return None
    tf = tf_path(home, match_type)
    if not tf.exists() or file_sha256(tf) != saved.get("tf_sha256"):
        return None  # TF tables lost or replaced: the model cannot score as it did
    return saved


def read_tf(path: Path, home: Home | None = None) -> dict[str, dict[str, tuple[str, pd.Series]]]:
    return tf_tables_of(read_parquet_at_rest(path, home))


def age_days(saved: dict[str, Any], run_day: str) -> int:
    return (date.fromisoformat(run_day) - date.fromisoformat(saved["trained_on"])).days


@dataclass
class Drift:
    """Drift of one match type tonight: TV distance and the new candidate pairs it is measured on."""
    value: float | None = None
    pairs: int = 0
    sampled: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"total_variation": None if self.value is None else round(self.value, 4),
                "new_candidate_pairs": self.pairs, "sampled": self.sampled}


def drift_rows(left_rows: np.ndarray, right_rows: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, bool]:
    """The dirty rows drift is measured on: a sample past ``DRIFT_SAMPLE_ROWS`` a side (the
    measure needs a sample, not all pairs), and whether one was drawn."""
    rng = np.random.default_rng(seed)
    sampled = False
    if len(left_rows) > DRIFT_SAMPLE_ROWS:
        left_rows, sampled = np.sort(rng.choice(left_rows, DRIFT_SAMPLE_ROWS, replace=False)), True
    if len(right_rows) > DRIFT_SAMPLE_ROWS:
        right_rows, sampled = np.sort(rng.choice(right_rows, DRIFT_SAMPLE_ROWS, replace=False)), True
    return left_rows, right_rows, sampled


def measure_drift(mt: MatchType, inp: Any, saved: dict[str, Any], left_rows: np.ndarray,
                  right_rows: np.ndarray, in_scope: Any, sampled: bool = False) -> Drift:
    """Agreement patterns of the new candidate pairs (those touching the rows given, see
    :func:`drift_rows`) against the saved model's. ``inp``: None when no record can pair."""
    baseline = saved.get("patterns") or {}
    if not baseline or (len(left_rows) == 0 and len(right_rows) == 0):
        return Drift()
    cands = in_scope(mt, inp, touching_pairs(inp.left, inp.right, mt.linkage.blocking, inp.dedupe,
                                             left_rows, right_rows)) if inp is not None else None
    if cands is None or len(cands) == 0:
        return Drift(None, 0, sampled)

    comps = mt.linkage.built()
    gammas = comparison_vectors(comps, Pairs(inp.left, inp.right, cands.li, cands.ri).compact())
    return Drift(total_variation(baseline, agreement_patterns(gammas)), len(cands), sampled)


def retrain_reason(saved: dict[str, Any] | None, mt: MatchType, key_id: str, run_day: str,
                   settings: Any, force: bool, drift: Drift) -> str | None:
    """Why the match type's model must be (re)trained tonight, or None to reuse it."""
    if saved is None:
        return "no saved model"
    if saved.get("format") != MODEL_FORMAT:
        return "saved model has an older layout"
    if saved.get("settings_hash") != settings_hash(mt):
        return "match type settings changed"
    if saved.get("key_id") != key_id:
        return "tokens are under another key"
    if saved.get("encoding") != ENCODING:
        return "tokens are of another encoding (an upgrade changed it)"
    if saved.get("estimator", 1) != ESTIMATOR_REVISION:
        return "trained by an older estimator (an upgrade changed how models are trained)"
    if force:
        return "re-training requested"
    age = age_days(saved, run_day)
    if age >= settings.retrain_days:
        return f"scheduled: model is {age} days old (retrain_days {settings.retrain_days})"
    if age < 0:
        return "model was trained on a later run date"
    if drift.value is not None and drift.pairs >= settings.drift_min_pairs and drift.value >= settings.drift_threshold:
        return (f"drift: total variation {drift.value:.3f} ≥ {settings.drift_threshold} "
                f"on {drift.pairs} new candidate pairs")
    return None
