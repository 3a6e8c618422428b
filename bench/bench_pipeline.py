"""End-to-end benchmark: generate boroughs, then the nightly job stage by stage.

Prints wall time and peak resident memory per stage (sampled every 50 ms), and
records per second. Not a test: run it by hand and copy the figures into
docs/benchmarks.md.

    .venv/bin/python bench/bench_pipeline.py --boroughs 10 --people 525000 --home /tmp/cm-bench
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil


class PeakMemory:
    """Samples memory in a background thread: `peak` is this process's maximum RSS, `peak_child`
    the largest RSS any of its worker or reader processes reached (each process's own figure).

    A worker is forked: its RSS counts the pages it still shares with this process (the pool the
    plan read, copy-on-write), which a separate Airflow task would not have. `peak_child_pss`
    is the largest proportional set size (shared pages divided among their sharers): the
    memory a worker really adds."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self.peak_child = 0
        self.peak_child_pss = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            for child in self._proc.children(recursive=True):
                try:
                    full = child.memory_full_info()
                except psutil.Error:  # finished meanwhile
                    continue
                self.peak_child = max(self.peak_child, full.rss)
                self.peak_child_pss = max(self.peak_child_pss, getattr(full, "pss", full.rss))
            time.sleep(self.interval)

    @contextmanager
    def measure(self) -> Iterator["PeakMemory"]:
        self.peak = self._proc.memory_info().rss
        self.peak_child = self.peak_child_pss = 0
        self._stop.clear()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boroughs", type=int, default=10)
    parser.add_argument("--people", type=int, default=525_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, default=Path("/tmp/councilmatch-bench"))
    parser.add_argument("--keep", action="store_true", help="reuse an already generated home")
    parser.add_argument("--workers", type=int, default=0,
                        help="processes for feeds and link shards, as `councilmatch run` (0: one per core)")
    args = parser.parse_args()

    from anonymise.keys import init_keys
    from orchestrate import pipeline
    from orchestrate.parallel import default_workers
    from councilmatch.home import Home
    from synthetic import generate

    if args.home.exists() and not args.keep:
        shutil.rmtree(args.home)
    home = Home.resolve(args.home)
    mem = PeakMemory()
    rows: list[tuple[str, float, float]] = []
    workers = args.workers or default_workers()

    def stage(name: str, fn):  # noqa: ANN001
        with mem.measure():
            t = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - t
        peak = max(mem.peak, mem.peak_child) / 2**30
        rows.append((name, seconds, peak))
        print(f"{name:<22} {seconds:8.2f} s   peak RSS {mem.peak / 2**30:6.2f} GiB "
              f"(largest worker or reader {mem.peak_child / 2**30:.2f} GiB, PSS "
              f"{mem.peak_child_pss / 2**30:.2f} GiB)", flush=True)
        return result

    if not args.keep:
        summary = stage("generate", lambda: generate(home, boroughs=args.boroughs, people=args.people, seed=args.seed))
        print(f"generated: {sum(summary.records.values())} records")
        init_keys(home, dev_kek=True)
    run_id = pipeline.make_run_id()
    print(f"workers: {workers}")
    feeds = stage("ingest+pseudonymise", lambda: pipeline.ingest_all(home, run_id, workers))
    records = sum(int(f.get("rows_in", 0)) for f in feeds)
    shards = stage("plan+train", lambda: pipeline.plan_link(home, run_id))
    stage("link", lambda: pipeline.link_all(home, run_id, shards, workers))
    published = stage("publish", lambda: pipeline.publish_run(home, run_id))
    stage("report", lambda: pipeline.write_report(home, run_id))

    pipeline_seconds = sum(s for name, s, _ in rows if name != "generate")
    print(f"records={records} flags={published['flags']} per_match_type={published['per_match_type']}")
    print(f"pipeline_seconds={pipeline_seconds:.1f} records_per_second={records / pipeline_seconds:,.0f} "
          f"peak_gib_per_process={max(p for _, _, p in rows):.2f}")


if __name__ == "__main__":
    main()
