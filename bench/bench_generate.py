"""Benchmark: records per second generating about a million records (10 boroughs).

    .venv/bin/python bench/bench_generate.py [--people 525000] [--boroughs 10] [--seed 1] [--noise-profile NAME] [--keep DIR]

Prints the time of each step, the total, records/second and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from councilmatch.home import Home
from synthetic import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=525_000, help="population (525,000 gives about 1M records with 10 boroughs)")
    ap.add_argument("--boroughs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--noise-profile", default="default", help="noise profile (default, heldout, or a YAML file)")
    ap.add_argument("--keep", type=Path, default=None, help="write here and keep it (default: a temporary folder)")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-generate-"))
    steps: list[tuple[str, float, float]] = []
    last = [time.perf_counter(), time.process_time()]

    def progress(msg: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        steps.append((msg, now - last[0], cpu - last[1]))
        last[:] = [now, cpu]

    t0, cpu0 = time.perf_counter(), time.process_time()
    summary = generate(Home.resolve(root), args.boroughs, args.people, args.seed, progress=progress,
                       noise_profile=args.noise_profile)
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    steps.append(("(end)", time.perf_counter() - last[0], time.process_time() - last[1]))

    # time spent *before* each announced step belongs to the previous one
    phases: dict[str, list[float]] = {}
    names = ["(start)"] + [m for m, _, _ in steps[:-1]]
    for name, (_, dt, dcpu) in zip(names, steps):
        word = name.split(" ")
        key = " ".join(word[:2]) if word[0] in ("render", "write") else name
        acc = phases.setdefault(key, [0.0, 0.0])
        acc[0] += dt
        acc[1] += dcpu
    size = sum(p.stat().st_size for p in (root / "landing").rglob("*") if p.is_file())
    print(f"generate --boroughs {args.boroughs} --people {args.people:,} --seed {args.seed} --noise-profile {args.noise_profile}")
    print(f"  {'step':<34} {'wall s':>7} {'CPU s':>7}")
    for name, (dt, dcpu) in phases.items():
        if dt >= 0.05:
            print(f"  {name:<34} {dt:7.2f} {dcpu:7.2f}")
    print(f"records written      {summary.total_records:,} (+ truth), {summary.invalid:,} invalid, landing {size / 1e6:.0f} MB")
    print(f"total                {total:.2f} s wall, {cpu:.2f} s CPU (this process)")
    print(f"records per second   {summary.total_records / total:,.0f}")
    print(f"peak memory (RSS)    {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
