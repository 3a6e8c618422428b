"""Load benchmark of the review app: 100k flags, 20 concurrent investigators on loopback.

Builds a throwaway data home (flags in the review store, one user per investigator,
and a real vault holding each council's side of the flags), starts
``councilmatch review serve`` in a subprocess, then has N investigators (asyncio +
httpx) sign in and alternate between queue pages (random page and filters) and
pair pages (a random flag of their council, re-identified from the vault). Prints
p50/p95/p99 page times per page type. Not a test: run it by hand.

    .venv/bin/python bench/bench_review_load.py [--flags 100000] [--users 20] [--requests 40]
                                                [--db-url postgresql+psycopg://...] [--no-vault]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from councilmatch.home import Home

COUNCILS = ["E09000007", "E09000012", "E09000019", "E09000022", "E09000028"]
PASSWORD = "benchmark password 1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(home: Home, n_flags: int, n_users: int, vault: bool, env: dict) -> pd.DataFrame:
    from review.auth import add_user
    from review.db import engine_for, migrate, writing
    from synthetic.flags import make_flags
    from review.store import publish_flags

    t = time.perf_counter()
    flags = make_flags(n_flags, COUNCILS, run_id="2026-11-24", seed=1)
    db_url = env.get("COUNCILMATCH_REVIEW_DB_URL") or home.review_db_url
    from review import audit
    audit.bind(db_url, home.root)  # as `review serve --home` does: the audit key lives in the home
    from anonymise.keys import init_keys

    if not (home.keys / "keyring.json.enc").exists():
        init_keys(home, dev_kek=True)  # the store seals notes, amounts and evidence under the home's keys
    counts = publish_flags(db_url, flags)
    print(f"published {counts['new']:,} flags in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    again = publish_flags(db_url, flags)
    print(f"re-published (idempotent: unchanged={again['unchanged']:,}) in {time.perf_counter() - t:.1f} s")
    migrate(db_url)
    with writing(db_url) as s:
        for i in range(n_users):
            add_user(s, username=f"inv{i:02d}", council=COUNCILS[i % len(COUNCILS)], role="investigator",
                     password=PASSWORD, actor="bench")
    engine_for(db_url).dispose()
    if vault:
        from anonymise.keys import load_keyring
        from anonymise.vault import Vault

        t = time.perf_counter()
        v = Vault(home, load_keyring(home))
        for side in ("left", "right"):
            for (council, dataset), part in flags.groupby([f"{side}_council", f"{side}_dataset"]):
                if council not in COUNCILS:
                    continue
                ids = part[f"{side}_record_id"].drop_duplicates().to_numpy()
                v.store(council, f"{side}-{dataset}", pd.DataFrame({
                    "council": council, "dataset": dataset, "record_id": ids, "forenames": "ALEX",
                    "surname": "EXAMPLE", "postcode": "NW1 0TH"}))
        print(f"vaulted each council's records in {time.perf_counter() - t:.1f} s")
    return flags


async def investigator(base: str, username: str, flag_ids: list[str], n_requests: int,
                       times: dict[str, list[float]], errors: list[str], rng: random.Random,
                       think: float, everyone_in: asyncio.Barrier) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60, follow_redirects=False) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = await client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        if r.status_code != 303:
            errors.append(f"{username}: sign-in {r.status_code}")
        # Sign-in is deliberately slow (Argon2): measure pages only once everyone is in.
        await everyone_in.wait()
        if think:  # people do not all click at the same millisecond
            await asyncio.sleep(rng.uniform(0, think))
        for i in range(n_requests):
            if i % 2 == 0:
                params = {"page": rng.randint(1, 40)}
                if rng.random() < 0.3:
                    params["priority"] = rng.choice([1, 2, 3])
                if rng.random() < 0.2:
                    params["status"] = "new"
                kind, url = "queue", "/queue"
            else:
                params, kind, url = {}, "pair", f"/flags/{rng.choice(flag_ids)}"
            t = time.perf_counter()
            r = await client.get(url, params=params)
            times[kind].append(time.perf_counter() - t)
            times["trace"].append((time.perf_counter() - t, i, kind, username))
            if r.status_code != 200:
                errors.append(f"{username} {url}: {r.status_code}")
            if think:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


def summary(name: str, values: list[float]) -> str:
    ms = np.array(values) * 1000
    return (f"{name:<6} n={len(ms):>5}  p50={np.percentile(ms, 50):7.1f} ms  p95={np.percentile(ms, 95):7.1f} ms  "
            f"p99={np.percentile(ms, 99):7.1f} ms  max={ms.max():7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flags", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--requests", type=int, default=40, help="page requests per investigator")
    ap.add_argument("--db-url", default=None, help="review database (default: SQLite in the temp home)")
    ap.add_argument("--no-vault", action="store_true", help="skip the vault (pair pages show 'unavailable')")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument("--think", type=float, default=0.0,
                    help="seconds each investigator pauses between pages (0: back-to-back, a stress test)")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cm-bench-review-"))
    env = {k: v for k, v in os.environ.items() if k not in ("COUNCILMATCH_KEK",)}
    env.pop("COUNCILMATCH_REVIEW_DB_URL", None)
    if args.db_url:  # a fresh database on that server, dropped at the end
        from review.db import fresh_database

        args.db_url, drop_db = fresh_database(args.db_url, f"bench_review_{os.getpid()}")
        env["COUNCILMATCH_REVIEW_DB_URL"] = args.db_url
        os.environ["COUNCILMATCH_REVIEW_DB_URL"] = args.db_url
    home = Home.resolve(root / "home").ensure()
    proc = None
    try:
        flags = prepare(home, args.flags, args.users, not args.no_vault, env)
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "orchestrate.cli", "review", "serve", "--home",
                                 str(home.root), "--port", str(port), "--insecure-cookies",
                                 "--workers", str(args.workers)], env=env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit("the review server did not start") from None
                time.sleep(0.5)
        by_council = {c: flags.loc[(flags.left_council == c) | (flags.right_council == c), "flag_id"].tolist()
                      for c in COUNCILS}
        times: dict[str, list] = {"queue": [], "pair": [], "trace": []}
        errors: list[str] = []

        async def run() -> float:
            everyone_in = asyncio.Barrier(args.users + 1)
            tasks = [asyncio.create_task(investigator(base, f"inv{i:02d}", by_council[COUNCILS[i % len(COUNCILS)]],
                                                      args.requests, times, errors, random.Random(i), args.think,
                                                      everyone_in))
                     for i in range(args.users)]
            await everyone_in.wait()
            t = time.perf_counter()
            await asyncio.gather(*tasks)
            return time.perf_counter() - t

        elapsed = asyncio.run(run())
        total = len(times["queue"]) + len(times["pair"])
        print(f"{args.users} concurrent investigators, {total} pages in {elapsed:.1f} s "
              f"({total / elapsed:.1f} pages/s); store: {'PostgreSQL' if args.db_url else 'SQLite'}; "
              f"vault: {'off' if args.no_vault else 'on'}; workers: {args.workers}; think time: {args.think} s; "
              f"{os.cpu_count()} CPUs shared by server and clients")
        print(summary("queue", times["queue"]))
        print(summary("pair", times["pair"]))
        print(summary("all", times["queue"] + times["pair"]))
        slow = sorted(times["trace"], reverse=True)[:5]
        print("slowest: " + ", ".join(f"{k} #{i} of {u}: {s * 1000:.0f} ms" for s, i, k, u in slow))
        print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
        if args.db_url:
            drop_db()


if __name__ == "__main__":
    main()
