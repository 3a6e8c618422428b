"""Pair-page latency while bursts of concurrent bad sign-ins hit the review app (finding 12).

Starts the app under uvicorn (one worker, SQLite, a throwaway store) in-process, signs
one investigator in, then fires BURSTS bursts of N simultaneous bad sign-ins (each from
its own forwarded address, so the per-address limit does not cut them short) and times
one pair page during each. Not a test: run it by hand.

    .venv/bin/python bench/bench_signin_burst.py [--burst 24] [--bursts 5]
"""

from __future__ import annotations

import argparse
import re
import secrets
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from anonymise.keys import init_keys
from councilmatch.home import Home
from review.app import create_app
from review.auth import add_user
from review.db import migrate, writing
from review.store import publish_flags
from synthetic.flags import make_flags

COUNCIL = "E09000007"
PASSWORD = "correct horse battery"


def _token(client: httpx.Client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--burst", type=int, default=24)
    ap.add_argument("--bursts", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="signin-burst-"))
    url = f"sqlite:///{tmp / 'review.db'}"
    flags = make_flags(90, [COUNCIL, "E09000012"], run_id="r1", seed=7)
    init_keys(Home(tmp), dev_kek=True)  # the store seals notes, amounts and evidence under the home's keys
    publish_flags(url, flags)
    migrate(url)
    with writing(url) as s:
        add_user(s, username="u", council=COUNCIL, role="investigator", password=PASSWORD, actor="bench")
    app = create_app(db_url=url, secret_key=secrets.token_urlsafe(32), secure_cookies=False,
                     reidentifier=lambda *a, **k: {"surname": "X"}, proxies="127.0.0.1")
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    me = httpx.Client(base_url=base, timeout=120)
    me.post("/login", data={"username": "u", "password": PASSWORD, "csrf_token": _token(me)})
    fid = flags[flags.left_council == COUNCIL].flag_id.iloc[0]

    def pair() -> float:
        t = time.perf_counter()
        assert me.get(f"/flags/{fid}").status_code == 200
        return time.perf_counter() - t

    idle = [pair() for _ in range(10)]
    loaded = []
    for rnd in range(args.bursts):
        barrier = threading.Barrier(args.burst + 1)

        def attacker(i: int, rnd: int = rnd, barrier: threading.Barrier = barrier) -> None:
            a = httpx.Client(base_url=base, headers={"x-forwarded-for": f"10.{rnd}.{i // 250}.{i % 250 + 1}"},
                             timeout=120)
            token = _token(a)
            barrier.wait()
            a.post("/login", data={"username": f"x{i}", "password": "bad", "csrf_token": token})

        threads = [threading.Thread(target=attacker, args=(i,)) for i in range(args.burst)]
        for t in threads:
            t.start()
        barrier.wait()
        time.sleep(0.05)
        loaded.append(pair())
        for t in threads:
            t.join()
    server.should_exit = True
    print(f"pair page: idle median {statistics.median(idle):.3f} s; during {args.bursts} bursts of {args.burst} "
          f"concurrent bad sign-ins median {statistics.median(loaded):.3f} s, max {max(loaded):.3f} s")


if __name__ == "__main__":
    main()
