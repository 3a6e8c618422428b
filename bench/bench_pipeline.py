"""End-to-end benchmark: generate boroughs, then the nightly job stage by stage.

Prints wall time and peak resident memory per stage (the kernel's high-water marks), and
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
    """Peak memory of a stage, measured without slowing it: `peak` is this process's maximum RSS,
    `peak_child` the largest RSS any of its worker or reader processes reached (each process's own
    figure).

    Each figure is the kernel's own high-water mark (``VmHWM``): this process's is reset when a
    stage starts (``/proc/self/clear_refs``), a child's read every ``interval`` while it lives, so
    a peak between two samples is not missed. An earlier version sampled every process's
    ``smaps`` twenty times a second, and that walk of their page tables made the first night's
    ingest at 1M 6-10 s slower than without it (docs/benchmarks.md, session 46).

    A worker is forked: its RSS counts the pages it still shares with this process (the pool the
    plan read, copy-on-write), which a separate Airflow task would not have. `peak_child_pss`
    is the largest proportional set size (shared pages divided among their sharers): the
    memory a worker really adds. The kernel keeps no high-water mark of it, so it is sampled,
    once every ``pss_interval``: a lower bound of the true peak."""

    def __init__(self, interval: float = 0.1, pss_interval: float = 1.0) -> None:
        self.interval = interval
        self.pss_interval = pss_interval
        self.peak = 0
        self.peak_child = 0
        self.peak_child_pss = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    @staticmethod
    def _status_kib(pid: int | str, field: str) -> int:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field.encode() + b":"):
                    return int(line.split()[1])
        return 0

    @staticmethod
    def _pss(pid: int) -> int:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _sample(self) -> None:
        next_pss = 0.0
        while True:
            pss = time.monotonic() >= next_pss
            if pss:
                next_pss = time.monotonic() + self.pss_interval
            for child in self._proc.children(recursive=True):
                try:
                    self.peak_child = max(self.peak_child, self._status_kib(child.pid, "VmHWM") * 1024)
                    if pss:
                        self.peak_child_pss = max(self.peak_child_pss, self._pss(child.pid))
                except (OSError, ValueError):  # finished meanwhile
                    continue
            if self._stop.wait(self.interval):
                return

    @contextmanager
    def measure(self) -> Iterator["PeakMemory"]:
        try:  # "5" resets the peak RSS (Linux >= 4.0); else the peak since this process started
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self.peak_child = self.peak_child_pss = 0
        self._stop.clear()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = self._status_kib("self", "VmHWM") * 1024


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
