"""Ingest throughput: read + map + validate + standardise, rows per second.

    .venv/bin/python bench/bench_ingest.py                 # ~1M generated tenancy rows (CSV)
    .venv/bin/python bench/bench_ingest.py --rows 200000 --format parquet
    .venv/bin/python bench/bench_ingest.py --home DIR      # every feed's newest extract in a data home

Generated rows are vectorised (numpy) and about 1% carry a planted problem
(bad date, bad NINO, duplicate id), so the quarantine path is exercised too.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.extract import ingest_extract
from ingest.feed import FeedDefinition
from ingest.feeds import load_feeds, newest_extract
from ingest.read import read_extract

FORENAMES = np.array(["Oliver", "Amelia", "Zoë", "Mohammed", "Olivia", "Jean-Luc", "Ann Marie", "Siobhán", "Jack", "Isla"])
SURNAMES = np.array(["Smith", "O'Brien", "Jones", "Núñez", "Patel", "Taylor-Brown", "Khan", "Williams", "McDonald", "Ng"])
TITLES = np.array(["", "", "", "Mr ", "Mrs ", "Dr "])
STREETS = np.array(["High St", "Station Rd", "Church Ln", "Acacia Ave", "St John's Rd", "Kings Gdns", "Park Cres"])
NINO_1, NINO_2 = list("ABCEGHJKLMNPRSTWXYZ"), list("ABCEGHJKLMNPRSTWXYZ")
FEED = FeedDefinition(
    council="E09000007", dataset="tenancy", date_format="%d/%m/%Y",
    columns={
        "record_id": "TenancyRef", "forenames": "First Names", "surname": "Surname", "dob": "Date of Birth",
        "nino": "NI Number", "address_lines": ["Address 1", "Town"], "postcode": "Post Code",
        "phone": "Phone", "email": "Email", "period_start": "Start Date", "period_end": "End Date",
    },
    mandatory=["record_id", "surname", "dob"],
)


def generate(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pick = lambda a: a[rng.integers(0, len(a), rows)]  # noqa: E731
    dob = np.datetime64("1930-01-01") + rng.integers(0, 70 * 365, rows).astype("timedelta64[D]")
    start = np.datetime64("2005-01-01") + rng.integers(0, 20 * 365, rows).astype("timedelta64[D]")
    end = start + rng.integers(30, 4000, rows).astype("timedelta64[D]")
    letters = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
    postcode = (pd.Series(pick(np.array(["SW", "E", "N", "NW", "SE", "W", "EC", "WC"])))
                + pd.Series(rng.integers(1, 20, rows)).astype(str) + " "
                + pd.Series(rng.integers(0, 10, rows)).astype(str) + pick(letters) + pick(letters))
    frame = pd.DataFrame({
        "TenancyRef": pd.Series(np.arange(rows)).map("T{:08d}".format),
        "First Names": pick(TITLES) + pick(FORENAMES),
        "Surname": pick(SURNAMES),
        "Date of Birth": pd.Series(dob).dt.strftime("%d/%m/%Y"),
        "NI Number": pd.Series(pick(np.array(NINO_1))) + pick(np.array(NINO_2))
                     + pd.Series(rng.integers(0, 1_000_000, rows)).map("{:06d}".format) + pick(np.array(list("ABCD"))),
        "Address 1": pd.Series(rng.integers(1, 300, rows)).astype(str) + " " + pick(STREETS),
        "Town": "London",
        "Post Code": postcode.str.lower().where(rng.random(rows) < 0.3, postcode),
        "Phone": "07700 " + pd.Series(rng.integers(0, 1_000_000, rows)).map("{:06d}".format),
        "Email": "person" + pd.Series(np.arange(rows)).astype(str) + "@Example.org",
        "Start Date": pd.Series(start).dt.strftime("%d/%m/%Y"),
        "End Date": pd.Series(end).dt.strftime("%d/%m/%Y").where(rng.random(rows) < 0.5, ""),
    })
    bad = rng.random(rows)
    frame.loc[bad < 0.004, "Date of Birth"] = "31/02/1980"
    frame.loc[(bad >= 0.004) & (bad < 0.008), "NI Number"] = "QQ123456Z"
    dup = np.flatnonzero((bad >= 0.008) & (bad < 0.01))
    frame.loc[dup, "TenancyRef"] = frame.loc[np.maximum(dup - 1, 0), "TenancyRef"].to_numpy()
    return frame


def write_extract(path: Path, rows: int, fmt: str) -> None:
    frame = generate(rows)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_excel(path, index=False)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_file(feed: FeedDefinition, path: Path, quiet: bool = False) -> tuple[int, float, float]:
    """Wall-clock and CPU seconds: on a shared machine CPU time is the steadier figure."""
    w0, c0 = time.perf_counter(), time.process_time()
    raw = read_extract(feed, path)
    w_read, c_read = time.perf_counter() - w0, time.process_time() - c0
    n = len(raw.frame) + len(raw.bad_rows)
    del raw
    w0, c0 = time.perf_counter(), time.process_time()
    result = ingest_extract(feed, path)
    w_all, c_all = time.perf_counter() - w0, time.process_time() - c0
    size = path.stat().st_size / 1e6
    if quiet:
        print(f"  {feed.feed_id:<34} {feed.format:<7} {n:>9,} rows  wall {w_all:6.2f}s  cpu {c_all:6.2f}s  "
              f"quarantined {len(result.quarantined):,}")
        return n, w_all, c_all
    print(f"{feed.feed_id} {path.name} ({size:,.1f} MB, {n:,} rows): accepted {len(result.accepted):,}, "
          f"quarantined {len(result.quarantined):,}")
    print(f"  read only           wall {w_read:6.2f}s {n / w_read:>10,.0f} rows/s | cpu {c_read:6.2f}s {n / c_read:>10,.0f} rows/s")
    print(f"  full ingest         wall {w_all:6.2f}s {n / w_all:>10,.0f} rows/s | cpu {c_all:6.2f}s {n / c_all:>10,.0f} rows/s")
    print(f"  peak RSS {peak_rss_mb():,.0f} MB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return n, w_all, c_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--format", choices=["csv", "parquet", "xlsx"], default="csv")
    ap.add_argument("--home", type=Path, help="benchmark every feed's newest extract in this data home instead")
    args = ap.parse_args()
    if args.home:
        rows = wall = cpu = 0.0
        for feed in load_feeds(args.home).values():
            path = newest_extract(args.home, feed)
            if path is not None and feed.format != "pseudonymised":
                n, w, c = bench_file(feed, path, quiet=True)
                rows, wall, cpu = rows + n, wall + w, cpu + c
        print(f"all feeds: {rows:,.0f} rows | full ingest wall {wall:.1f}s ({rows / wall:,.0f} rows/s) | "
              f"cpu {cpu:.1f}s ({rows / cpu:,.0f} rows/s) | peak RSS {peak_rss_mb():,.0f} MB; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = Path(tmp) / f"tenancy.{args.format}"
        # generate in a child process so the peak RSS printed below is the ingest's own
        child = multiprocessing.get_context("fork").Process(target=write_extract, args=(path, args.rows, args.format))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit("generating the extract failed")
        print(f"generated {args.rows:,} rows ({args.format}) in {time.perf_counter() - t0:.1f}s")
        feed = FEED.model_copy(update={"format": args.format})
        bench_file(feed, path)


if __name__ == "__main__":
    main()
