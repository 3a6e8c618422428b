"""Splink 5 (clear text) and councilmatch (keyed pseudonyms) on the same pooled records of a generated home.

Every person-bearing record of a generated home (tenancies, council tax, register, payroll,
badges, ...: about a million at ``--boroughs 10 --people 525000``) is standardised by our
ingest, then deduplicated twice in one run, each scored against the generator's person ids:

* councilmatch: pseudonymised under a throwaway key, linked with the default person linkage
  of ``councilmatch evaluate`` (``evaluation.labelled.default_linkage``) under the shipped
  person match types' blocking rules (``OURS_BLOCKING``);
* Splink 5 on the same clear standardised values (``evaluation.splink_baseline``: u by random
  sampling, λ from deterministic rules, m by EM over several blocking passes), predicting
  on the same kinds of rules (``SPLINK_BLOCKING``; Splink has no phonetic column here, so its
  fourth rule is forename + surname, which our sorted-name rule also covers).

Wall time and peak RSS of each side are printed (peak RSS: this process, sampled). Not a
test: run it by hand, on a quiet machine if you can.

    .venv/bin/python bench/bench_splink_million.py --home /tmp/cm-million --boroughs 10 --people 525000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_pipeline import PeakMemory  # noqa: E402


def pooled_records(home_dir: Path) -> pd.DataFrame:
    """Every feed's accepted rows, standardised by our ingest, with a pooled record id."""
    from councilmatch.home import Home
    from ingest.extract import ingest_extract
    from ingest.feeds import load_feeds, newest_extract
    from ingest.placeholders import without_placeholders

    home = Home.resolve(home_dir)
    parts = []
    for feed in load_feeds(home).values():
        extract = newest_extract(home, feed)
        if extract is None:
            continue
        frame = without_placeholders(ingest_extract(feed, extract).accepted)[0]
        if "surname" not in frame or frame["surname"].isna().all():
            continue
        frame = frame.copy()
        frame["source_id"] = frame["record_id"].astype(str)
        frame["record_id"] = frame["council"].astype(str) + "|" + frame["dataset"].astype(str) + "|" + frame["source_id"]
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def true_pairs(home_dir: Path, records: pd.DataFrame) -> set[tuple[str, str]]:
    """Sorted pairs of pooled record ids that the generator made for one person."""
    truth = pd.read_parquet(Path(home_dir) / "truth" / "records.parquet",
                            columns=["council", "dataset", "record_id", "person_id"])
    truth["rid"] = truth["council"].astype(str) + "|" + truth["dataset"].astype(str) + "|" + truth["record_id"].astype(str)
    ids = truth[truth["rid"].isin(set(records["record_id"]))][["rid", "person_id"]].dropna()
    m = ids.merge(ids, on="person_id")
    m = m[m["rid_x"] < m["rid_y"]]
    return set(zip(m["rid_x"], m["rid_y"]))


#: Blocking for a million records, the same for both sides: the shipped person match types'
#: rules (one-column surname or postcode rules would make billions of pairs at this size).
OURS_BLOCKING = [["t_nino"], ["t_dob", "t_surname"], ["t_dob", "t_forename"], ["t_name_sorted"],
                 ["t_surname_phon", "t_forename_phon", "t_yob"]]
SPLINK_BLOCKING = [["nino"], ["dob", "surname"], ["dob", "forenames"], ["forenames", "surname"]]


def ours(records: pd.DataFrame, truth: set) -> dict:
    from evaluation.labelled import (default_linkage, link_pseudonymised, pseudonymise_for_eval, score_linked,
                                     throwaway_keyring)

    with PeakMemory().measure() as mem:
        t0 = time.perf_counter()
        pseudo = pseudonymise_for_eval(records.drop(columns=["source_id"]), throwaway_keyring())
        t1 = time.perf_counter()
        linkage = default_linkage(True, 0.5).model_copy(update={"blocking": OURS_BLOCKING})
        pairs, _ = link_pseudonymised(pseudo, None, linkage)
        t2 = time.perf_counter()
    m = score_linked(pairs, truth, True, t2 - t1).at(0.5)
    return {"side": "councilmatch (pseudonyms)", "prepare s": t1 - t0, "link s": t2 - t1, "metrics": m,
            "peak GiB": mem.peak / 2**30}


def splink(records: pd.DataFrame, truth: set) -> dict | None:
    try:
        from evaluation.splink_baseline import splink_link
    except ImportError:
        return None
    clear = pd.DataFrame({"record_id": records["record_id"], "forenames": records["forenames"],
                          "surname": records["surname"], "dob": records["dob"], "postcode": records["postcode"],
                          "address": records["address_lines"], "nino": records["nino"]})
    fields = {"forenames": "name", "surname": "name", "dob": "dob", "postcode": "postcode", "address": "address",
              "nino": "id"}
    with PeakMemory().measure() as mem:
        t0 = time.perf_counter()
        result = splink_link(clear, None, truth, fields, predict_blocking=SPLINK_BLOCKING)
        t1 = time.perf_counter()
    return {"side": "Splink 5 (clear text, DuckDB)", "link s": t1 - t0, "result": result,
            "peak GiB": mem.peak / 2**30}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="a generated home (generated here if missing)")
    ap.add_argument("--boroughs", type=int, default=10)
    ap.add_argument("--people", type=int, default=525_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-splink", action="store_true")
    args = ap.parse_args()
    if not (args.home / "truth" / "records.parquet").exists():
        subprocess.run([sys.executable, "-m", "orchestrate.cli", "generate", "--boroughs", str(args.boroughs),
                        "--people", str(args.people), "--seed", str(args.seed), "--home", str(args.home)],
                       check=True, stdout=subprocess.DEVNULL)
    t = time.perf_counter()
    records = pooled_records(args.home)
    truth = true_pairs(args.home, records)
    print(f"{len(records):,} pooled records, {len(truth):,} true pairs (standardised in {time.perf_counter() - t:.1f} s)")
    print("\n| side | pseudonymise s | link s | precision | recall | F1 at 0.5 | peak GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    o = ours(records, truth)
    m = o["metrics"]
    print(f"| {o['side']} | {o['prepare s']:.1f} | {o['link s']:.1f} | {m.precision:.4f} | {m.recall:.4f} | "
          f"{m.f1:.4f} | {o['peak GiB']:.2f} |", flush=True)
    s = None if args.no_splink else splink(records, truth)
    if s is None:
        print("| Splink 5 | not installed (uv sync --extra bench) | | | | | |")
        return
    r = s["result"]
    print(f"| {s['side']} | - | {s['link s']:.1f} | {r.precision_at_half:.4f} | {r.recall_at_half:.4f} | "
          f"{r.f1_at_half:.4f} | {s['peak GiB']:.2f} |")


if __name__ == "__main__":
    main()
