"""Peak memory per process of the linking stage, as Airflow runs it: plan in one process,
each link shard in its own.

The nightly DAG's ``plan_link`` and every ``link_shard`` are separate task processes on
the Celery workers, so what sizes a worker is the peak RSS of *one* such process, not of a
whole night in one process (``bench_linkage.py`` measures that). This script generates N
pseudonymised tenancy records directly (``bench_linkage.synthetic_tenancies``: no ingest,
no HMAC), writes them to a throwaway home as the store holds them (encrypted, one extract per
council), then runs each stage as a child process and reads the child's own peak RSS from
the kernel (``wait4`` → ``ru_maxrss``), with its wall and CPU time.

    .venv/bin/python bench/bench_scaleout.py --records 1000000 --shards 4 [--keep DIR]

Prints one line per process and a summary line ``records=… plan_peak_mib=… shard_peak_mib=…``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

RUN_ID = "20260102T000000"
NIGHT2 = "20260103T020000"
MATCH_TYPE = "tenancy_two_boroughs"


def _stage(argv: list[str]) -> None:
    """Run inside a child process: one stage on the home given."""
    from councilmatch.home import Home

    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["generate", "plan", "shard", "collect", "change"])
    ap.add_argument("--run-id", default=RUN_ID)
    ap.add_argument("--changed", type=float, default=0.01)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--home", required=True)
    ap.add_argument("--records", type=int, default=0)
    ap.add_argument("--councils", type=int, default=8)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--training-max-records", type=int, default=None)
    args = ap.parse_args(argv)
    home = Home(Path(args.home))
    out: dict = {}
    if args.stage == "generate":
        from anonymise.keys import init_keys
        from anonymise.pseudonymised import write_pseudonymised
        from bench_linkage import synthetic_tenancies
        from matching.minimisation import store_policy

        home.ensure()
        init_keys(home, dev_kek=True)
        # in parts of at most a million records (the generator holds ~6 GiB per million), each
        # part in its own councils with its own seed
        parts = -(-args.records // 1_000_000)
        done = 0
        for part in range(parts):
            n = args.records // parts + (1 if part < args.records % parts else 0)
            frame = synthetic_tenancies(n, args.councils, seed=part + 1).assign(extract_id="20260101T000000-bench")
            if part:
                code = frame["council"].str[-2:].astype(int) + part * args.councils
                frame["council"] = "E090" + code.map("{:05d}".format)
                frame["record_id"] = f"P{part}-" + frame["record_id"]
            policy = store_policy(home)
            for _, rows in frame.groupby("council"):
                write_pseudonymised(home, rows.reset_index(drop=True), policy)
            done += len(frame)
            del frame
        out = {"records": done}
    elif args.stage == "plan":
        from councilmatch.settings import Models
        from matching.run import plan

        settings = Models(**({"training_max_records": args.training_max_records}
                             if args.training_max_records else {}))
        first = args.run_id == RUN_ID
        tasks = plan(home, args.run_id, args.shards, full=first or args.full, retrain=first, settings=settings)
        out = {"tasks": tasks}
    elif args.stage == "shard":
        from matching.run import link_shard

        out = link_shard(home, args.run_id, MATCH_TYPE, args.shard, args.shards)
    elif args.stage == "collect":
        from matching.run import collect_flags

        out = {"flags": len(collect_flags(home, args.run_id))}
    elif args.stage == "change":
        # every council re-sends its extract with a share of its records changed (a benign change,
        # a new period start: the rows are dirty, their agreement patterns are not, so no drift):
        # the next night links incrementally
        import numpy as np
        import pandas as pd

        from anonymise import at_rest
        from anonymise.pseudonymised import read_pseudonymised, to_table
        from matching.run import newest_extracts

        changed = 0
        for path in newest_extracts(home):
            frame = read_pseudonymised(path, home)
            rows = np.random.default_rng(len(frame)).random(len(frame)) < args.changed
            frame.loc[rows, "period_start"] = pd.Timestamp("2022-02-02")
            frame["extract_id"] = "20260103T000000-bench"
            at_rest.write_table(home.pseudonymised_path("tenancy", frame["council"].iloc[0], "20260103T000000-bench"),
                                to_table(frame), home)
            changed += int(rows.sum())
        out = {"changed": changed}
    print("RESULT " + json.dumps(out, default=str), flush=True)


def _child(args: list[str]) -> tuple[dict, float, float, float]:
    """Run a stage as a child; its result, wall s, CPU s and peak RSS (MiB, from the kernel)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"stage {args[0]} failed ({proc.returncode}):\n{stdout[-3000:]}")
    result = json.loads(next(line for line in stdout.splitlines() if line.startswith("RESULT "))[7:])
    return result, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--councils", type=int, default=8)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--night2", type=float, default=0.0,
                    help="then a second, incremental night with this share of records changed (e.g. 0.01)")
    ap.add_argument("--shard-limit", type=int, default=None,
                    help="link only the first N shards (0: plan only); no collect then")
    ap.add_argument("--training-max-records", type=int, default=None,
                    help="settings.yaml models.training_max_records (default: the shipped default)")
    ap.add_argument("--keep", help="keep the generated home in this folder (and reuse it if it is there)")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cm-bench-scaleout-"))
    home = str(root / "home")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    try:
        if args.keep and (root / "home" / "store" / "pseudonymised").is_dir():
            print(f"reusing the records generated in {home}")
        else:
            res, wall, cpu, peak = _child(["generate", "--home", home, "--records", str(args.records),
                                           "--councils", str(args.councils)])
            print(f"generate {res['records']:,} pseudonymised tenancies (not part of a night): "
                  f"wall {wall:.1f}s cpu {cpu:.1f}s peak RSS {peak:.0f} MiB")
        cap = ["--training-max-records", str(args.training_max_records)] if args.training_max_records else []
        res, wall, cpu, plan_peak = _child(["plan", "--home", home, "--shards", str(args.shards), *cap])
        tasks = [t for t in res["tasks"] if t["match_type"] == MATCH_TYPE]
        plan_wall = wall
        print(f"plan (read pool, record index, train {MATCH_TYPE}; training_max_records "
              f"{args.training_max_records or 'default'}): wall {wall:.1f}s cpu {cpu:.1f}s "
              f"peak RSS {plan_peak:.0f} MiB")
        shard_peaks, pairs, link_wall, link_cpu = [], 0, 0.0, 0.0
        limited = args.shard_limit is not None and args.shard_limit < len(tasks)
        for t in tasks[:args.shard_limit] if limited else tasks:
            res, wall, cpu, peak = _child(["shard", "--home", home, "--shard", str(t["shard"]),
                                           "--shards", str(t["shards"])])
            shard_peaks.append(peak)
            pairs += res["candidates"]
            link_wall += wall
            link_cpu += cpu
            print(f"  link shard {t['shard'] + 1}/{t['shards']}: {res['records_read']:,} records read, "
                  f"{res['candidates']:,} candidate pairs, "
                  f"{res['flags']:,} flags, wall {wall:.1f}s cpu {cpu:.1f}s peak RSS {peak:.0f} MiB")
        flags = None
        if not limited:
            res, wall, cpu, coll_peak = _child(["collect", "--home", home])
            flags = res["flags"]
            print(f"collect: {flags:,} flags, wall {wall:.1f}s peak RSS {coll_peak:.0f} MiB")
        if args.night2 and not limited:
            res, wall, cpu, peak = _child(["change", "--home", home, "--changed", str(args.night2)])
            print(f"night 2: every council re-sends its extract, {res['changed']:,} records changed")
            res, wall, cpu, peak = _child(["plan", "--home", home, "--shards", str(args.shards),
                                           "--run-id", NIGHT2, *cap])
            tasks2 = [t for t in res["tasks"] if t["match_type"] == MATCH_TYPE]
            print(f"night 2 plan (incremental): {len(tasks2)} shard task(s), wall {wall:.1f}s cpu {cpu:.1f}s "
                  f"peak RSS {peak:.0f} MiB")
            for t in tasks2:
                res, wall, cpu, peak = _child(["shard", "--home", home, "--shard", str(t["shard"]),
                                               "--shards", str(t["shards"]), "--run-id", NIGHT2])
                print(f"  night 2 link shard {t['shard'] + 1}/{t['shards']} ({res['mode']}): "
                      f"{res['records_read']:,} records read, {res['candidates']:,} candidate pairs, "
                      f"{res['flags']:,} flags, wall {wall:.1f}s cpu {cpu:.1f}s peak RSS {peak:.0f} MiB")
        print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(f"records={args.records} shards={args.shards} plan_s={plan_wall:.1f} plan_peak_mib={plan_peak:.0f} "
              f"link_s={link_wall:.1f} link_cpu_s={link_cpu:.1f} "
              f"shard_peak_mib={max(shard_peaks) if shard_peaks else 0:.0f} "
              f"shards_linked={len(shard_peaks)} pairs={pairs} flags={flags}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _stage(sys.argv[2:])
    else:
        main()
