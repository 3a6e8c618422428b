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
    """Samples this process's RSS in a background thread; `peak` is the maximum seen."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    @contextmanager
    def measure(self) -> Iterator["PeakMemory"]:
        self.peak = self._proc.memory_info().rss
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
    args = parser.parse_args()

    from anonymise.keys import init_keys
    from orchestrate import pipeline
    from councilmatch.home import Home
    from synthetic import generate

    if args.home.exists() and not args.keep:
        shutil.rmtree(args.home)
    home = Home.resolve(args.home)
    mem = PeakMemory()
    rows: list[tuple[str, float, float]] = []

    def stage(name: str, fn):  # noqa: ANN001
        with mem.measure():
            t = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - t
        rows.append((name, seconds, mem.peak / 2**30))
        print(f"{name:<22} {seconds:8.2f} s   peak RSS {mem.peak / 2**30:6.2f} GiB", flush=True)
        return result

    if not args.keep:
        summary = stage("generate", lambda: generate(home, boroughs=args.boroughs, people=args.people, seed=args.seed))
        print(f"generated: {sum(summary.records.values())} records")
        init_keys(home, dev_kek=True)
    run_id = pipeline.make_run_id()
    feeds = stage("ingest+pseudonymise", lambda: [pipeline.ingest_feed(home, f, run_id) for f in pipeline.discover_feeds(home)])
    records = sum(int(f.get("rows_in", 0)) for f in feeds)
    shards = stage("plan+train", lambda: pipeline.plan_link(home, run_id))
    stage("link", lambda: [pipeline.link_shard(home, run_id, s["match_type"], s["shard"], s["shards"]) for s in shards])
    published = stage("publish", lambda: pipeline.publish_run(home, run_id))
    stage("report", lambda: pipeline.write_report(home, run_id))

    pipeline_seconds = sum(s for name, s, _ in rows if name != "generate")
    print(f"records={records} flags={published['flags']} per_match_type={published['per_match_type']}")
    print(f"pipeline_seconds={pipeline_seconds:.1f} records_per_second={records / pipeline_seconds:,.0f} "
          f"peak_gib={max(p for _, _, p in rows):.2f}")


if __name__ == "__main__":
    main()
