"""Link-only benchmark on a big synthetic pseudonymised frame (no ingest, no pseudonymisation).

Builds N tenancy records across several councils directly as pseudonymised columns
(tokens drawn from Zipf-like name and birth-date distributions, keyed-Bloom-like random
filters per distinct value, a share of people holding a second tenancy elsewhere with a
typo or a missing field), writes them to a throwaway home, then times the matching
stage exactly as the nightly DAG runs it: plan (train) → link_shard × n → collect_flags.

    .venv/bin/python bench/bench_linkage.py --records 1000000 --shards 4
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, ".")

from councilmatch.contracts import (BLOOM_BYTES, EDIT_BYTES, FORENAME_WORD_BYTES, NICKNAME_BYTES,  # noqa: E402
                                    NON_IDENTIFYING, TOKEN_COLUMNS)
from anonymise.encodings import to_bytes_column  # noqa: E402
from councilmatch.home import Home  # noqa: E402


class Peak:
    def __init__(self) -> None:
        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def __enter__(self) -> "Peak":
        self.peak = self.proc.memory_info().rss
        self._stop.clear()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def _zipf_tokens(rng: np.random.Generator, n: int, distinct: int, s: float) -> np.ndarray:
    """Token codes 1..distinct with frequency ∝ rank^-s (s < 1: the commonest name holds
    ~2-3 % of records, like SMITH or OLIVER in the UK)."""
    p = np.arange(1, distinct + 1, dtype=float) ** -s
    return rng.choice(np.arange(1, distinct + 1), size=n, p=p / p.sum())


def _blooms(rng: np.random.Generator, codes: np.ndarray, nbytes: int, typo: np.ndarray) -> np.ndarray:
    """One random filter per distinct code (≈ 35 % of bits set); typo rows lose/gain a few bits."""
    uniq, inv = np.unique(codes, return_inverse=True)
    table = (rng.random((len(uniq), nbytes * 8)) < 0.35)
    bits = table[inv]
    if typo.any():
        rows = np.flatnonzero(typo)
        flip = rng.integers(0, nbytes * 8, size=(len(rows), 6))
        bits[rows[:, None], flip] ^= True
    return np.packbits(bits, axis=1)


def _neighbourhoods(rng: np.random.Generator, codes: np.ndarray, nbytes: int, typo: np.ndarray) -> np.ndarray:
    """One random sorted set of 4-byte entries per distinct code (like a name's one-edit
    neighbourhood); typo rows keep one entry and redraw the rest (one keystroke away)."""
    slots = nbytes // 4
    uniq, inv = np.unique(codes, return_inverse=True)
    table = rng.integers(1, 2**32, size=(len(uniq), slots), dtype=np.uint64).astype(np.uint32)
    table[:, 7:] = 0  # a six-letter name: itself and six deletions
    entries = table[inv]
    if typo.any():
        rows = np.flatnonzero(typo)
        entries[rows, 1:7] = rng.integers(1, 2**32, size=(len(rows), 6), dtype=np.uint64).astype(np.uint32)
    entries[:, :7].sort(axis=1)
    return entries.astype(">u4").view(np.uint8).reshape(len(codes), nbytes)


def synthetic_tenancies(n_records: int, councils: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_people = int(n_records / 1.02)
    people = pd.DataFrame({
        "forename": _zipf_tokens(rng, n_people, 5_000, 0.7),
        "surname": _zipf_tokens(rng, n_people, 60_000, 0.8),
        "dob": rng.integers(0, 70 * 365, n_people),
        "nino": np.where(rng.random(n_people) < 0.6, np.arange(1, n_people + 1), 0),
        "council": rng.integers(0, councils, n_people),
    })
    doubles = people.sample(n_records - n_people, random_state=seed).copy()
    doubles["council"] = (doubles["council"] + 1 + rng.integers(0, councils - 1, len(doubles))) % councils
    recs = pd.concat([people, doubles], ignore_index=True)
    n = len(recs)
    typo = np.zeros(n, dtype=bool)
    typo[n_people:] = rng.random(n - n_people) < 0.3

    def tok(purpose: int, values: np.ndarray) -> np.ndarray:
        v = values.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(purpose * 7919)
        v ^= v >> np.uint64(31)
        out = v.view(np.int64).copy()
        out[values == 0] = 0
        return out

    sur = recs["surname"].to_numpy()
    sur_typo = np.where(typo, sur + 10_000_000, sur)  # a typo gives another exact token
    frame = pd.DataFrame({
        "council": np.char.add("E090000", (recs["council"].to_numpy() + 10).astype(str)),
        "dataset": "tenancy",
        "record_id": np.char.add("T", np.arange(n).astype(str)),
        "extract_id": "bench", "key_id": "k1",
    })
    dob = recs["dob"].to_numpy() + 1
    cols = {c: np.zeros(n, dtype=np.int64) for c in TOKEN_COLUMNS}
    cols.update({
        "t_nino": tok(1, recs["nino"].to_numpy()), "t_dob": tok(2, dob), "t_dob_unordered": tok(3, dob),
        "t_yob": tok(4, dob // 365 + 1), "t_forename": tok(5, recs["forename"].to_numpy()),
        "t_surname": tok(5, sur_typo), "t_forename_canon": tok(6, recs["forename"].to_numpy()),
        "t_forename_phon": tok(7, recs["forename"].to_numpy() // 3 + 1), "t_surname_phon": tok(7, sur // 3 + 1),
        "t_initial": tok(8, recs["forename"].to_numpy() % 26 + 1),
        "t_name_sorted": tok(9, recs["forename"].to_numpy() * 1_000_003 + sur_typo),
    })
    for c, v in cols.items():
        frame[c] = v
    for c, codes in (("bf_forenames", recs["forename"].to_numpy()), ("bf_surname", sur),
                     ("bf_address", rng.integers(1, n, n))):
        m = _blooms(rng, codes, BLOOM_BYTES[c], typo if c == "bf_surname" else np.zeros(n, bool))
        frame[c] = to_bytes_column(m)  # fixed-length bytes, as the store holds them
    for c, codes in (("ed_forename", recs["forename"].to_numpy()), ("ed_surname", sur)):
        frame[c] = to_bytes_column(_neighbourhoods(rng, codes, EDIT_BYTES[c], typo if c == "ed_surname"
                                                   else np.zeros(n, bool)))
    nino = recs["nino"].to_numpy()
    ed_nino = _neighbourhoods(rng, nino, EDIT_BYTES["ed_nino"], np.zeros(n, bool))
    ed_nino[nino == 0] = 0  # no NINO: no neighbourhood
    frame["ed_nino"] = to_bytes_column(ed_nino)
    # a nickname neighbourhood per forename code (no nicknames drawn: each name meets only itself)
    frame["nk_forename"] = to_bytes_column(_neighbourhoods(rng, recs["forename"].to_numpy(), NICKNAME_BYTES["nk_forename"],
                                                           np.zeros(n, bool)))
    # every forename word: one per forename code (no middle names drawn); its initial; no bare initials
    words = np.zeros((n, FORENAME_WORD_BYTES["nf_words"] // 4), dtype=">u4")
    words[:, 0] = recs["forename"].to_numpy() * 2_654_435_761 % 2**32 | 1
    initials = np.zeros((n, FORENAME_WORD_BYTES["nf_initials"] // 4), dtype=">u4")
    initials[:, 0] = recs["forename"].to_numpy() % 26 + 1
    frame["nf_words"] = to_bytes_column(words.view(np.uint8).reshape(n, -1))
    frame["nf_bare"] = to_bytes_column(np.zeros((n, FORENAME_WORD_BYTES["nf_bare"]), dtype=np.uint8))
    frame["nf_initials"] = to_bytes_column(initials.view(np.uint8).reshape(n, -1))
    for c in NON_IDENTIFYING:
        frame[c] = pd.NaT if c in ("period_end", "date_of_death", "last_used") else None
    frame["period_start"] = pd.Timestamp("2020-01-01")
    frame["discount"] = pd.array([pd.NA] * n, dtype="boolean")
    frame["amount"] = np.nan
    return frame


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--councils", type=int, default=8)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--match-type", default="tenancy_two_boroughs")
    args = ap.parse_args()

    from matching.run import collect_flags, link_shard, plan, run_dir

    root = Path(tempfile.mkdtemp(prefix="cm-bench-link-"))
    try:
        home = Home.resolve(root)
        t0 = time.perf_counter()
        frame = synthetic_tenancies(args.records, args.councils)
        for council, part in frame.groupby("council"):
            path = home.pseudonymised_path("tenancy", council, "20260101T000000-bench")
            path.parent.mkdir(parents=True, exist_ok=True)
            part.to_parquet(path, index=False)
        print(f"built {len(frame):,} pseudonymised tenancy records in {time.perf_counter() - t0:.1f}s "
              f"({frame.memory_usage(deep=True).sum() / 2**20:.0f} MiB in memory)")
        del frame
        run_id = "20260102T000000"
        with Peak() as mem:
            t = time.perf_counter()
            tasks = [x for x in plan(home, run_id, args.shards) if x["match_type"] == args.match_type]
            t_plan = time.perf_counter() - t
        print(f"plan (load + train {len({x['match_type'] for x in tasks})} match type): {t_plan:.1f}s, "
              f"peak RSS {mem.peak / 2**20:.0f} MiB")
        total_c = 0
        t_link = 0.0
        peak_link = 0
        for task in tasks:
            with Peak() as mem:
                t = time.perf_counter()
                out = link_shard(home, run_id, **task)
                dt = time.perf_counter() - t
            t_link += dt
            peak_link = max(peak_link, mem.peak)
            total_c += out["candidates"]
            print(f"  shard {task['shard']}/{task['shards']}: {out['candidates']:,} candidate pairs, "
                  f"{out['flags']:,} flags, {dt:.1f}s, peak RSS {mem.peak / 2**20:.0f} MiB")
        # collect only this match type's shards
        import json
        (run_dir(home, run_id) / "plan.json").write_text(json.dumps({"tasks": tasks}))
        t = time.perf_counter()
        flags = collect_flags(home, run_id)
        t_collect = time.perf_counter() - t
        print(f"link: {total_c:,} candidate pairs in {t_link:.1f}s "
              f"({total_c / max(t_link, 1e-9):,.0f} pairs/s incl. loading inputs per shard), "
              f"peak RSS {peak_link / 2**20:.0f} MiB")
        print(f"collect: {len(flags):,} flags in {t_collect:.2f}s")
        print(f"records={args.records} shards={args.shards} plan_s={t_plan:.1f} link_s={t_link:.1f} "
              f"pairs={total_c} flags={len(flags)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
