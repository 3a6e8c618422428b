"""``generate``: a realistic set of borough extracts, feed definitions and ground truth.

Steps: population -> ordinary lives -> planted fraud and near-misses -> record ids ->
expected flags (rules on truth) -> invalid rows (never in an expected flag) ->
render each data set's clear values -> write one extract per council and data set,
its feed YAML, and truth/*.parquet. Same arguments, same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from councilmatch import matchtype_ids as mt
from councilmatch.contracts import DATASETS, DATE_FIELDS
from councilmatch.councils import CENTRAL
from councilmatch.home import Home
from synthetic.feeds import DATASET_ORDER, feed_style, record_id_format
from synthetic.life import CENTRAL_IDX, DATASET_LEVELS, build_life
from synthetic.noise import NoiseProfile, load_profile
from synthetic.places import COUNCIL_ORDER
from synthetic.population import Population, build_population
from synthetic.render import render, slice_rendered
from synthetic.rules import PAIR_COLUMNS, expected_flags
from synthetic.scenarios import Planter
from synthetic.writers import write_extract

DEFAULT_EXTRACT_DATE = date(2026, 11, 1)
INVALID_RATE = 0.004
MIN_INVALID = 2
ALL_DATASETS: tuple[str, ...] = (*DATASET_ORDER, "deceased")
assert ALL_DATASETS == DATASET_LEVELS

Progress = Callable[[str], None]


@dataclass
class GenerateSummary:
    """What ``generate`` wrote (counts are rows in the extracts, invalid ones included)."""
    home: Path
    councils: list[str]
    extract_date: date
    noise_profile: str = "default"
    records: dict[str, int] = field(default_factory=dict)          # dataset -> rows
    feed_records: dict[str, int] = field(default_factory=dict)     # "<council>/<dataset>" -> rows
    invalid: int = 0
    people: int = 0
    scenarios: dict[str, int] = field(default_factory=dict)        # "<match_type>/<kind>" -> count
    expected_flags: dict[str, int] = field(default_factory=dict)   # match_type -> count
    extracts: list[Path] = field(default_factory=list)
    feeds: list[Path] = field(default_factory=list)
    truth: dict[str, Path] = field(default_factory=dict)
    #: feed YAMLs already in the home that this run did not write (from an earlier, bigger run);
    #: the pipeline would ingest them but truth does not cover them
    stale_feeds: list[str] = field(default_factory=list)

    @property
    def total_records(self) -> int:
        return sum(self.records.values())


def steps(boroughs: int) -> int:
    """How many progress steps ``generate`` reports (for a progress bar)."""
    return 6 + len(ALL_DATASETS) + len(DATASET_ORDER) * boroughs + 1


def _council_code(idx: np.ndarray) -> np.ndarray:
    codes = np.array(list(COUNCIL_ORDER) + [CENTRAL], dtype=object)
    return codes[np.where(idx < 0, len(COUNCIL_ORDER), idx)]


def _assign_record_ids(records: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """Ids numbered per council and data set in order of period start, in each council's own style."""
    ds_rank = records["dataset"].cat.codes.to_numpy()      # DATASET_LEVELS == ALL_DATASETS
    when = records["period_start"].fillna(records["date_of_death"])
    order = pd.DataFrame({"c": records["council_idx"], "d": ds_rank, "w": when, "p": records["person_id"],
                          "k": np.arange(len(records))}).sort_values(["c", "d", "w", "p", "k"], kind="stable")
    seq = order.groupby(["c", "d"], sort=False).cumcount().to_numpy() + 1
    seq_by_row = np.empty(len(records), np.int64)
    seq_by_row[order.index.to_numpy()] = seq
    ids = np.empty(len(records), dtype=object)
    for (c, d), idx in order.groupby(["c", "d"], sort=False).indices.items():
        prefix, width = record_id_format(int(c), ALL_DATASETS[int(d)])
        numbers = pd.Series(seq[idx] + (0 if width else 500_000), dtype=np.int64).astype(str)
        ids[order.index.to_numpy()[idx]] = (prefix + (numbers.str.zfill(width) if width else numbers)).to_numpy()
    return pd.Series(ids, index=records.index), seq_by_row


def _invalid_choice(records: pd.DataFrame, protected: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pick deliberately invalid rows (kind, field) among rows no expected flag or scenario uses.

    About INVALID_RATE of rows, and at least MIN_INVALID of each kind so small runs have them too.
    Kinds a feed cannot carry are skipped: no impossible dates in native Parquet date columns,
    invalid NINOs only where the NINO is mandatory (an optional bad NINO might just be dropped).
    """
    n = len(records)
    kind = np.full(n, None, dtype=object)
    fld = np.full(n, None, dtype=object)
    ds_code = records["dataset"].cat.codes.to_numpy()
    council = records["council_idx"].to_numpy()
    supports: dict[str, np.ndarray] = {k: np.zeros(n, bool) for k in ("missing_mandatory", "impossible_date", "invalid_nino")}
    for (d, c), idx in pd.DataFrame({"d": ds_code, "c": council}).groupby(["d", "c"]).indices.items():
        rows = np.zeros(n, bool)
        rows[idx] = True
        dataset = ALL_DATASETS[int(d)]
        spec = DATASETS[dataset]
        style = feed_style(int(c), dataset)
        supports["missing_mandatory"] |= rows
        if any(f in DATE_FIELDS for f in spec.required) and style.feed.format != "parquet":
            supports["impossible_date"] |= rows
        if "nino" in spec.required:
            supports["invalid_nino"] |= rows
    free = ~protected
    chosen = (rng.random(n) < INVALID_RATE) & free
    pick = rng.random(n)
    options = np.stack([supports["missing_mandatory"], supports["impossible_date"], supports["invalid_nino"]], axis=1)
    names = np.array(["missing_mandatory", "impossible_date", "invalid_nino"], dtype=object)
    count = options.sum(axis=1)
    which = np.minimum((pick * count).astype(int), np.maximum(count - 1, 0))
    nth = np.argmax(np.cumsum(options, axis=1) > which[:, None], axis=1)     # which-th supported kind
    kind[chosen] = names[nth[chosen]]
    for k in names:
        short = MIN_INVALID - int((kind == k).sum())
        if short > 0:
            cand = np.flatnonzero(supports[k] & free & pd.isna(kind))
            extra = rng.permutation(cand)[:short]
            kind[extra] = k
    has = pd.notna(kind)
    for dataset in ALL_DATASETS:
        spec = DATASETS[dataset]
        rows = np.flatnonzero((ds_code == ALL_DATASETS.index(dataset)) & has)
        if not len(rows):
            continue
        scalars = np.array([f for f in spec.required if f != "address_lines"], dtype=object)
        dates = [f for f in spec.required if f in DATE_FIELDS]
        f = scalars[rng.integers(0, len(scalars), len(rows))]
        k = kind[rows]
        fld[rows] = np.where(k == "impossible_date", dates[0] if dates else None, np.where(k == "invalid_nino", "nino", f))
    return kind, fld


def generate(home: Home, boroughs: int, people: int, seed: int, *, extract_date: date | None = None,
             progress: Progress | None = None, noise_profile: str | Path | NoiseProfile | None = None) -> GenerateSummary:
    """Write landing extracts, feed YAMLs and truth for the first ``boroughs`` councils of BOROUGH_ORDER.

    ``noise_profile``: a built-in profile name (``default``, ``heldout``; see noise_profiles.yaml),
    a YAML file with one profile, or a NoiseProfile. Its seed is mixed with ``seed`` into the noise stream.
    """
    profile = load_profile(noise_profile)
    if not 1 <= boroughs <= len(COUNCIL_ORDER):
        raise ValueError(f"--boroughs must be between 1 and {len(COUNCIL_ORDER)}, got {boroughs}")
    if people < 100:
        raise ValueError(f"--people must be at least 100, got {people}")
    say = progress or (lambda _msg: None)
    extract_date = extract_date or DEFAULT_EXTRACT_DATE
    E = np.datetime64(extract_date, "D")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    home = Home.resolve(home.root if isinstance(home, Home) else home)
    home.ensure()
    home.truth.mkdir(parents=True, exist_ok=True)
    noise_rng = np.random.default_rng(np.random.SeedSequence([seed, profile.seed, 4]))
    summary = GenerateSummary(home=home.root, councils=list(COUNCIL_ORDER[:boroughs]), extract_date=extract_date,
                              people=people, noise_profile=profile.name)

    say("population")
    pop = build_population(streams[0], boroughs, people, E)
    say("ordinary lives")
    base, movers = build_life(streams[1], pop, E)
    say("planting fraud and near-misses")
    planter = Planter(streams[2], pop, base, E, boroughs, movers, hard_negative_rate=profile.hard_negative_rate)
    planter.plant_all()
    records = planter.records

    say("record ids and expected flags")
    records["record_id"], records["seq"] = _assign_record_ids(records)
    records["council"] = _council_code(records["council_idx"].to_numpy())
    truth_cols = ["council", "dataset", "record_id", "person_id", "address_id", "period_start", "period_end",
                  "discount", "amount", "last_used", "date_of_death", "origin"]
    for c in ("period_start", "period_end", "last_used", "date_of_death"):
        records[c] = records[c].astype("datetime64[s]")
    records["rk"] = np.arange(len(records))
    flags = expected_flags(records[truth_cols + ["rk"]])
    scen = _scenarios(planter.scenarios, records, flags)

    say("invalid rows")
    protected = np.zeros(len(records), bool)
    for frame in (flags, scen):
        protected[frame["left_rk"].to_numpy()] = True
        protected[frame["right_rk"].to_numpy()] = True
    flags, scen = flags.drop(columns=["left_rk", "right_rk"]), scen.drop(columns=["left_rk", "right_rk"])
    kind, fld = _invalid_choice(records, protected, streams[3])
    records["invalid_kind"], records["invalid_field"] = kind, fld
    records["invalid_reason"] = np.where(pd.isna(kind), None, pd.Series(kind, dtype=object) + ": " + pd.Series(fld, dtype=object))
    records["protected"] = protected
    records["variations"] = _write_extracts(home, records, pop, boroughs, extract_date, noise_rng, profile, say, summary)

    say("truth")
    summary.truth = _write_truth_files(home, records, pop, scen, flags)
    summary.truth["noise_profile"] = home.truth / "noise_profile.yaml"
    summary.truth["noise_profile"].write_text(
        yaml.safe_dump({"seed_argument": seed, **profile.model_dump(mode="json")}, sort_keys=False), encoding="utf-8")
    written = {p.resolve() for p in summary.feeds}
    summary.stale_feeds = sorted(f"{p.parent.name}/{p.stem}" for p in home.feeds.glob("*/*.yaml") if p.resolve() not in written)
    summary.invalid = int(pd.notna(kind).sum())
    summary.scenarios = {f"{m}/{k}": int(n) for (m, k), n in scen.groupby(["match_type", "kind"]).size().items()}
    summary.expected_flags = {m: int(n) for m, n in flags.groupby("match_type").size().items()}
    return summary


def _write_extracts(home: Home, records: pd.DataFrame, pop: Population, boroughs: int, extract_date: date,
                    rng: np.random.Generator, profile: NoiseProfile, say: Progress, summary: GenerateSummary) -> np.ndarray:
    """Render each data set and write one extract and feed YAML per council; returns each record's variations."""
    render_cols = ["dataset", "council_idx", "person_id", "address_id", "record_id", "origin", "period_start", "period_end",
                   "discount", "amount", "last_used", "date_of_death", "invalid_kind", "invalid_field", "protected"]
    variations = np.full(len(records), "", dtype=object)
    ds_code = records["dataset"].cat.codes.to_numpy()
    for d, dataset in enumerate(ALL_DATASETS):
        rows = np.flatnonzero(ds_code == d)
        rows = rows[np.lexsort((records["seq"].to_numpy()[rows], records["council_idx"].to_numpy()[rows]))]
        say(f"render {dataset}")
        values = render(records[render_cols].take(rows), pop, rng, profile)
        variations[rows] = values["variations"]
        councils = [CENTRAL_IDX] if dataset == "deceased" else range(boroughs)
        cidx = values["council_idx"]                  # sorted by council
        for c in councils:
            say(f"write {dataset} {COUNCIL_ORDER[c] if c >= 0 else CENTRAL}")
            style = feed_style(c, dataset)
            feed = style.feed
            lo, hi = np.searchsorted(cidx, c, "left"), np.searchsorted(cidx, c, "right")
            part = slice_rendered(values, lo, hi)
            path = home.landing / feed.council / dataset / f"{dataset}_{extract_date:%Y%m%d}.{style.extension}"
            write_extract(part, style, path)
            yaml_path = home.feeds / feed.council / f"{dataset}.yaml"
            yaml_path.parent.mkdir(parents=True, exist_ok=True)
            yaml_path.write_text(yaml.safe_dump(feed.model_dump(), sort_keys=False, allow_unicode=True), encoding="utf-8")
            summary.extracts.append(path)
            summary.feeds.append(yaml_path)
            summary.feed_records[feed.feed_id] = int(hi - lo)
        summary.records[dataset] = len(rows)
    return variations


def _write_truth_files(home: Home, records: pd.DataFrame, pop: Population, scen: pd.DataFrame, flags: pd.DataFrame) -> dict[str, Path]:
    """truth/*.parquet; records in (council, data set, record number) order. Repetitive text columns
    are dictionary-encoded (pandas reads them back as categoricals)."""
    codes = np.array(list(COUNCIL_ORDER) + [CENTRAL], dtype=object)
    code_rank = np.argsort(np.argsort(codes))                   # council codes in text order, as ints
    cidx = records["council_idx"].to_numpy()
    council_rank = code_rank[np.where(cidx < 0, len(COUNCIL_ORDER), cidx)]
    order = np.lexsort((records["seq"].to_numpy(), records["dataset"].cat.codes.to_numpy(), council_rank))
    columns = ["council", "dataset", "record_id", "person_id", "address_id", "invalid_reason", "origin", "variations",
               "period_start", "period_end", "discount", "amount", "last_used", "date_of_death"]
    repetitive = {"council", "dataset", "invalid_reason", "origin", "variations"}
    table = pa.table({c: _arrow(records[c], order, dictionary=c in repetitive) for c in columns})
    paths = {"records": home.truth / "records.parquet"}
    pq.write_table(table, paths["records"])
    people = _people_truth(pop)
    for name, frame in (("people", people), ("addresses", pop.addresses.assign(
            council=_council_code(pop.addresses["council_idx"].to_numpy())).drop(columns="council_idx")),
            ("scenarios", scen), ("expected_flags", flags)):
        paths[name] = home.truth / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    return paths


def _arrow(column: pd.Series, order: np.ndarray, dictionary: bool) -> pa.Array:
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    values = column.array[order] if isinstance(column.dtype, pd.BooleanDtype) else column.to_numpy()[order]
    if getattr(values, "dtype", None) is not None and values.dtype.kind == "M":
        values = values.astype("datetime64[ms]")
    arr = pa.array(values, from_pandas=True)
    return arr.dictionary_encode() if dictionary else arr


def _people_truth(pop: Population) -> pd.DataFrame:
    pp = pop.people.copy()
    pp["council"] = _council_code(pp["council_idx"].to_numpy())
    pp = pp.drop(columns="council_idx")
    for c in ("dob", "date_of_death", "move_in"):
        pp[c] = pp[c].astype("datetime64[s]")
    return pp


def _scenarios(planted: list[dict], records: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """Scenario pairs with record references, oriented like expected flags; checks them against the rules."""
    s = pd.DataFrame(planted, columns=["match_type", "kind", "description", "left_rk", "right_rk"])
    for side in ("left", "right"):
        rk = s[f"{side}_rk"].to_numpy()
        s[f"{side}_council"] = records["council"].to_numpy()[rk]
        s[f"{side}_dataset"] = records["dataset"].to_numpy()[rk]
        s[f"{side}_record_id"] = records["record_id"].to_numpy()[rk]
    symmetric = s["match_type"].isin([mt.TENANCY_TWO_BOROUGHS, mt.PAYROLL_TWO_COUNCILS]).to_numpy()
    swap = symmetric & ((s["left_council"] > s["right_council"]) |
                        ((s["left_council"] == s["right_council"]) & (s["left_record_id"] > s["right_record_id"]))).to_numpy()
    for f in ("council", "dataset", "record_id", "rk"):
        l, r = s[f"left_{f}"].to_numpy().copy(), s[f"right_{f}"].to_numpy().copy()
        s[f"left_{f}"], s[f"right_{f}"] = np.where(swap, r, l), np.where(swap, l, r)
    key = ["match_type", *PAIR_COLUMNS]
    hit = s[key].merge(flags[key].assign(_flagged=1), on=key, how="left")["_flagged"].notna().to_numpy()
    missing = s[(s["kind"] == "fraud").to_numpy() & ~hit]
    if len(missing):
        raise AssertionError(f"planted fraud not satisfying its rule:\n{missing.head()}")
    s = s[~((s["kind"] == "near_miss").to_numpy() & hit)]      # a near miss that happens to be flagged is dropped
    s = s.sort_values(["match_type", "kind", "left_council", "left_record_id"], kind="stable").reset_index(drop=True)
    s.insert(0, "scenario_id", [f"S{i + 1:05d}" for i in range(len(s))])
    return s[["scenario_id", "match_type", "kind", "description", *PAIR_COLUMNS, "left_rk", "right_rk"]]
