"""Cost of encryption at rest: the same night on the same generated home, encrypted and plain.

Generates one home, then runs the whole night (ingest+pseudonymise, plan+train, link,
publish, report) on fresh copies of it, alternating encrypted and plain
(``anonymise.at_rest._ENCRYPT``, a benchmark-only switch), and times both the
stages and the time spent inside ``anonymise.at_rest`` (encrypting, decrypting and
the Parquet/JSON I/O it wraps). Not a test: run it by hand, copy the figures into
docs/benchmarks.md.

    .venv/bin/python bench/bench_at_rest.py --boroughs 4 --people 26000 --repeats 2 --root /tmp/cm-bench-at-rest
"""

from __future__ import annotations

import argparse
import base64
import functools
import os
import shutil
import statistics
import time
from pathlib import Path


def _timed_at_rest(counter: dict[str, float], cpu: dict[str, float]) -> None:
    """Wrap the at_rest entry points so the (wall and CPU) time spent in them is added up per function."""
    from anonymise import at_rest

    for name in ("write_table", "read_table", "read_metadata", "write_json", "read_json"):
        fn = getattr(at_rest, name)
        fn = getattr(fn, "__wrapped__", fn)

        @functools.wraps(fn)
        def wrapper(*a, _fn=fn, _name=name, **k):  # noqa: ANN002, ANN003
            t, c = time.perf_counter(), time.process_time()
            try:
                return _fn(*a, **k)
            finally:
                counter[_name] = counter.get(_name, 0.0) + time.perf_counter() - t
                cpu[_name] = cpu.get(_name, 0.0) + time.process_time() - c

        setattr(at_rest, name, wrapper)


def night(base: Path, target: Path, encrypt: bool) -> dict[str, float]:
    from anonymise import at_rest
    from anonymise.keys import init_keys
    from orchestrate import pipeline
    from councilmatch.home import Home

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(base, target)
    home = Home.resolve(target)
    init_keys(home)
    at_rest._ENCRYPT = encrypt
    counter: dict[str, float] = {}
    cpu: dict[str, float] = {}
    _timed_at_rest(counter, cpu)
    times: dict[str, float] = {}
    run_id = pipeline.make_run_id()
    cpu_start = time.process_time()

    def stage(name: str, fn):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t
        return out

    feeds = stage("ingest+pseudonymise", lambda: [pipeline.ingest_feed(home, f, run_id)
                                                  for f in pipeline.discover_feeds(home)])
    shards = stage("plan+train", lambda: pipeline.plan_link(home, run_id))
    stage("link", lambda: [pipeline.link_shard(home, run_id, s["match_type"], s["shard"], s["shards"]) for s in shards])
    published = stage("publish", lambda: pipeline.publish_run(home, run_id))
    stage("report", lambda: pipeline.write_report(home, run_id))
    times["night"] = sum(times.values())
    times["cpu"] = time.process_time() - cpu_start
    times["in_at_rest"] = sum(counter.values())
    times["cpu_in_at_rest"] = sum(cpu.values())
    times["records"] = float(sum(int(f.get("rows_in", 0)) for f in feeds))
    times["flags"] = float(published["flags"])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boroughs", type=int, default=4)
    parser.add_argument("--people", type=int, default=26_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path("/tmp/councilmatch-bench-at-rest"))
    args = parser.parse_args()

    os.environ.setdefault("COUNCILMATCH_KEK", base64.b64encode(os.urandom(32)).decode())
    from synthetic import generate

    base = args.root / "base"
    if not base.exists():
        from councilmatch.home import Home

        summary = generate(Home(base), boroughs=args.boroughs, people=args.people, seed=args.seed)
        print(f"generated {sum(summary.records.values())} records", flush=True)
    warm = night(base, args.root / "warm-up", True)  # imports, JIT compilation, first connections: not counted
    print(f"warm-up night {warm['night']:.1f} s (discarded)", flush=True)
    shutil.rmtree(args.root / "warm-up")
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i in range(args.repeats):
        for encrypt in (True, False) if i % 2 == 0 else (False, True):
            # a new folder each night: the review store's engine (cached per database URL in this
            # process) must not find the last night's trail in a home of the same path
            target = args.root / f"{'enc' if encrypt else 'plain'}-{i}"
            t = night(base, target, encrypt)
            shutil.rmtree(target)
            results[encrypt].append(t)
            print(f"{'encrypted' if encrypt else 'plain    '} night {t['night']:7.1f} s (CPU {t['cpu']:.1f} s)  "
                  f"in at_rest {t['in_at_rest']:6.2f} s (CPU {t['cpu_in_at_rest']:.2f} s)  "
                  + "  ".join(f"{k} {v:.1f}" for k, v in t.items()
                              if k not in ("night", "cpu", "in_at_rest", "cpu_in_at_rest")), flush=True)
    enc = statistics.median(r["night"] for r in results[True])
    plain = statistics.median(r["night"] for r in results[False])
    io_enc = statistics.median(r["in_at_rest"] for r in results[True])
    io_plain = statistics.median(r["in_at_rest"] for r in results[False])
    print(f"records={int(results[True][0]['records'])} flags enc/plain={int(results[True][0]['flags'])}/"
          f"{int(results[False][0]['flags'])}")
    print(f"median night: encrypted {enc:.1f} s, plain {plain:.1f} s, overhead {100 * (enc - plain) / plain:+.1f}%")
    print(f"median time in at_rest I/O: encrypted {io_enc:.2f} s, plain {io_plain:.2f} s, "
          f"encryption cost {io_enc - io_plain:.2f} s = {100 * (io_enc - io_plain) / plain:+.1f}% of the plain night")
    c_enc = statistics.median(r["cpu"] for r in results[True])
    c_plain = statistics.median(r["cpu"] for r in results[False])
    ci_enc = statistics.median(r["cpu_in_at_rest"] for r in results[True])
    ci_plain = statistics.median(r["cpu_in_at_rest"] for r in results[False])
    print(f"median CPU: night encrypted {c_enc:.1f} s, plain {c_plain:.1f} s ({100 * (c_enc - c_plain) / c_plain:+.1f}%); "
          f"in at_rest encrypted {ci_enc:.2f} s, plain {ci_plain:.2f} s "
          f"(encryption {ci_enc - ci_plain:.2f} s = {100 * (ci_enc - ci_plain) / c_plain:+.1f}% of the plain night's CPU)")


if __name__ == "__main__":
    main()
