"""Incremental nights against a full night, on a generated home, stage by stage.

Night 1 (full: every record new, models trained), night 2 with no new extract at all,
night 3 where every CSV feed re-sends its extract with ``--changed`` of its rows changed
(a surname, or an address moved to another row's), linked incrementally; then the same
night 3 re-linked in full (``full=True``) on a copy of the home, with the same saved
model, and the two flag files compared. Each night (and night 3's ingest) runs in a newly
started interpreter, as each `councilmatch run` does. Prints a Markdown table for
docs/benchmarks.md. Not a test: run it by hand.

    .venv/bin/python bench/bench_incremental.py --boroughs 5 --people 20000 --home /tmp/cm-inc
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import PeakMemory  # noqa: E402


def _resend_changed(home, night: str, share: float, seed: int) -> int:
    """Every CSV feed sends a new extract with ``share`` of its rows changed; returns rows changed."""
    rng = np.random.default_rng(seed)
    changed = 0
    for feed_dir in sorted(p for p in home.landing.glob("*/*") if p.is_dir()):
        archived = sorted((home.root / "bench-originals" / feed_dir.relative_to(home.landing)).glob("*.csv"))
        if not archived:
            continue
        data = archived[-1].read_bytes()
        try:
            encoding, text = "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            encoding, text = "cp1252", data.decode("cp1252")
        bom, text = text.startswith("\ufeff"), text.lstrip("\ufeff")
        newline = "\r\n" if "\r\n" in text else "\n"
        delimiter = next(d for d in ("|", "\t", ";", ",") if d in text.split("\n", 1)[0])
        rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter) if r]
        header, body = rows[0], rows[1:]
        lower = [h.casefold() for h in header]
        surname = next((i for i, h in enumerate(lower) if h in ("surname", "last_name")), None)
        if surname is None or not body:
            continue
        for i in rng.choice(len(body), max(1, round(share * len(body))), replace=False):
            body[i][surname] = body[i][surname] + "-Smythe" if body[i][surname] else "Smythe"
            changed += 1

        def line(values: list[str]) -> str:
            return delimiter.join('"' + v.replace('"', '""') + '"' if v != "" else "" for v in values)

        out = newline.join(line(r) for r in [header, *body]) + newline
        dataset = feed_dir.name
        (feed_dir / f"{dataset}_{night}.csv").write_bytes((("\ufeff" if bom else "") + out).encode(encoding))
    return changed


def _cpu() -> float:
    """CPU seconds of this process and its finished children (each feed's reader runs in a forked
    child, orchestrate.isolate: its validation and profiling are CPU this process never sees)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _fresh(fn, *args):  # noqa: ANN001, ANN202
    """``fn(*args)`` in a newly started interpreter, as each night is its own `councilmatch run`:
    nothing read by an earlier night (or by the generator) stays in the process, or in the
    workers it forks, which would otherwise count it in their memory."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _ingest(root: str, run_id: str, workers: int) -> tuple[float, float, list[dict]]:
    """A night's ingest alone: wall seconds, CPU seconds and the feeds' outcomes."""
    from councilmatch.home import Home
    from orchestrate import pipeline

    t, c = time.perf_counter(), _cpu()
    outcomes = pipeline.ingest_all(Home.resolve(root), run_id, workers)
    return time.perf_counter() - t, _cpu() - c, outcomes


def _night(root: str, run_id: str, full: bool, workers: int, ingest: bool = True) -> dict[str, float]:
    from councilmatch.home import Home
    from orchestrate import pipeline

    home = Home.resolve(root)

    times: dict[str, float] = {}
    mem = PeakMemory()
    cpu = _cpu()
    with mem.measure():
        t = time.perf_counter()
        if ingest:
            pipeline.ingest_all(home, run_id, workers)
        times["ingest"] = time.perf_counter() - t
        t = time.perf_counter()
        tasks = pipeline.plan_link(home, run_id, full=full)
        times["plan"] = time.perf_counter() - t
        t = time.perf_counter()
        pipeline.link_all(home, run_id, tasks, workers)
        times["link"] = time.perf_counter() - t
        t = time.perf_counter()
        pipeline.publish_run(home, run_id)
        times["publish"] = time.perf_counter() - t
    times["cpu"] = _cpu() - cpu
    times["total"] = times["ingest"] + times["plan"] + times["link"] + times["publish"]
    times["link_total"] = times["plan"] + times["link"]
    times["peak_gib"] = max(mem.peak, mem.peak_child) / 2**30
    times["peak_pss_gib"] = max(mem.peak, mem.peak_child_pss) / 2**30  # a forked worker's shared pages shared out
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--boroughs", type=int, default=5)
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--changed", type=float, default=0.01, help="share of each CSV feed's rows changed on night 3")
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workers", type=int, default=0,
                    help="processes for feeds and link shards, as `councilmatch run` (0: one per core)")
    args = ap.parse_args()
    os.environ.pop("COUNCILMATCH_KEK", None)

    from anonymise.keys import init_keys
    from councilmatch.home import Home
    from orchestrate.parallel import default_workers
    from synthetic import generate

    if args.home.exists():
        shutil.rmtree(args.home)
    home = Home.resolve(args.home)
    generate(home, boroughs=args.boroughs, people=args.people, seed=args.seed)
    init_keys(home, dev_kek=True)  # a throwaway bench home
    shutil.copytree(home.landing, home.root / "bench-originals")
    records = None
    workers = args.workers or default_workers()

    results = {}
    root, full_root = str(home.root), str(home.root) + "-full"
    results["night 1: first night (full, models trained)"] = _fresh(_night, root, "20261101T020000", False, workers)
    from anonymise import at_rest

    pooled = sum(len(at_rest.read_table(p, columns=["record_id"], home=home))
                 for p in home.pseudonymised.rglob("*.parquet"))
    records = pooled
    results["night 2: no new extract (incremental)"] = _fresh(_night, root, "20261102T020000", False, workers)
    changed = _resend_changed(home, "20261103", args.changed, args.seed)

    ingest3, ingest3_cpu, outcomes = _fresh(_ingest, root, "20261103T020000", workers)
    resent = [o for o in outcomes if o["status"] == "ingested"]
    skipped = sum(o.get("rows_skipped", 0) for o in resent)
    resent_rows = sum(o["rows_in"] for o in resent)
    full_home = Home.resolve(Path(full_root))
    if full_home.root.exists():
        shutil.rmtree(full_home.root)
    shutil.copytree(home.root, full_home.root)
    inc = _fresh(_night, root, "20261103T020000", False, workers, False)
    full = _fresh(_night, full_root, "20261103T020000", True, workers, False)
    for night in (inc, full):  # both link after the same ingest
        night["ingest"] = ingest3
        night["total"] += ingest3
        night["cpu"] += ingest3_cpu
    results[f"night 3: {args.changed:.0%} of rows changed (incremental)"] = inc
    results["night 3 again, re-linked in full (same model)"] = full
    a = at_rest.read_frame(home.flags_path("20261103T020000"), home=home)
    b = at_rest.read_frame(full_home.flags_path("20261103T020000"), home=full_home)
    same = a.equals(b)

    print(f"\n{args.boroughs} boroughs × {args.people:,} people: {records:,} pseudonymised records; "
          f"night 3 changed {changed:,} rows; {len(resent)} feeds re-sent {resent_rows:,} rows, of which "
          f"{skipped:,} were skipped as unchanged (not validated again); "
          f"incremental flags == full flags: {same} ({len(a)} flags); load average at the end "
          f"{os.getloadavg()[0]:.1f}; {workers} worker processes\n")
    print("| night | ingest s | plan s | link s | publish s | total s (wall) | CPU s | plan+link vs full re-link "
          "| peak GiB (RSS) | peak GiB (PSS) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = results["night 1: first night (full, models trained)"]
    ref = full["link_total"]
    for name, r in results.items():
        print(f"| {name} | {r['ingest']:.2f} | {r['plan']:.2f} | {r['link']:.2f} | {r['publish']:.2f} | "
              f"{r['total']:.2f} ({r['total'] / base['total']:.0%} of night 1) | "
              f"{r['cpu']:.2f} ({r['cpu'] / base['cpu']:.0%}) | {r['link_total'] / ref:.0%} | "
              f"{r['peak_gib']:.2f} | {r['peak_pss_gib']:.2f} |")


if __name__ == "__main__":
    main()
