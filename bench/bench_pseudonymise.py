"""Benchmark: tokenise + encode ~1M canonical records; prints records/second.

    .venv/bin/python bench/bench_pseudonymise.py [--records 1000000] [--seed 1] [--breakdown]

The canonical frame is built vectorised with realistic cardinalities (a few thousand
forenames and surnames, ~30k dates of birth, ~100k postcodes, a distinct NINO, email,
phone and bank account per record, ~40% distinct addresses), so the
unique-value work is what a real night would see. A throwaway keyring (random KEK)
lives in a temporary home.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _names(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """~n distinct upper-case names: Faker's en_GB lists plus blends of two of them
    (real registers hold tens of thousands of distinct surnames)."""
    from faker.providers.person.en_GB import Provider

    base = (list(Provider.first_names_male) + list(Provider.first_names_female)) if kind == "first" \
        else list(Provider.last_names)
    base = pd.Series(base).str.upper().str.replace(r"[^A-Z ]", "", regex=True)
    a = base.to_numpy()[rng.integers(0, len(base), 2 * n)]
    b = base.to_numpy()[rng.integers(0, len(base), 2 * n)]
    blends = pd.Series(a).str[:3] + pd.Series(b).str[2:]
    names = pd.unique(pd.concat([base, blends[blends.str.len() >= 3]]))
    return np.asarray(names[:n], dtype=object)


def _fmt(a: np.ndarray, width: int) -> pd.Series:
    return pd.Series(a).astype(str).str.zfill(width)


def canonical_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = _names(5000, "first", rng)
    last = _names(20000, "last", rng)
    fi = rng.zipf(1.3, n) % len(first)
    si = rng.zipf(1.2, n) % len(last)
    middle = np.where(rng.random(n) < 0.3, first[rng.integers(0, len(first), n)], None)
    forenames = pd.Series(first[fi]).where(pd.isna(middle), pd.Series(first[fi]) + " " + pd.Series(middle))
    letters = np.array(list("ABCEGHJKLMNPRSTWXYZ"))
    m = 100_000  # postcode pool
    outward = pd.Series(np.array(["E", "N", "NW", "SE", "SW", "W", "EC", "WC"])[rng.integers(0, 8, m)]) + \
        pd.Series(rng.integers(1, 20, m)).astype(str)
    postcode_pool = (outward + " " + pd.Series(rng.integers(1, 10, m)).astype(str)
                     + pd.Series(letters[rng.integers(0, 19, m)]) + pd.Series(letters[rng.integers(0, 19, m)]))
    pc = postcode_pool.to_numpy()[rng.integers(0, m, n)]
    streets = pd.Series(last[rng.integers(0, len(last), 3000)]) + np.array([" ROAD", " STREET", " AVENUE"])[np.arange(3000) % 3]
    address = (np.where(rng.random(n) < 0.3, "FLAT " + pd.Series(rng.integers(1, 30, n)).astype(str) + " ", "")
               + pd.Series(rng.integers(1, 200, n)).astype(str) + " "
               + pd.Series(streets.to_numpy()[rng.integers(0, 3000, n)]) + " LONDON")
    ids = np.arange(n)
    nino = (pd.Series(letters[rng.integers(0, 19, n)]) + pd.Series(letters[rng.integers(0, 19, n)])
            + _fmt((ids * 7_919) % 10**6, 6) + pd.Series(np.array(list("ABCD"))[rng.integers(0, 4, n)]))
    return pd.DataFrame({
        "council": "E09000007", "dataset": "payroll",
        "record_id": "R" + _fmt(ids, 7),
        "forenames": forenames.astype("string"),
        "first_name": pd.Series(first[fi], dtype="string"),
        "middle_names": pd.Series(middle, dtype="string"),
        "surname": pd.Series(last[si], dtype="string"),
        "previous_surname": pd.Series(np.where(rng.random(n) < 0.05, last[rng.integers(0, len(last), n)], None), dtype="string"),
        "dob": pd.to_datetime("1940-01-01") + pd.to_timedelta(rng.integers(0, 29_000, n), unit="D"),
        "nino": nino.astype("string"),
        "address_lines": address.astype("string"),
        "postcode": pd.Series(pc, dtype="string"),
        "uprn": pd.Series(rng.integers(10**8, 10**11, n)).astype(str).astype("string"),
        "email": ("u" + _fmt(ids, 7) + "@example.org").astype("string"),
        "phone": ("07" + _fmt((ids * 104_729 + 17) % 10**9, 9)).astype("string"),
        "bank_sort_code": _fmt(rng.integers(0, 10**6, n), 6).astype("string"),
        "bank_account": _fmt((ids * 48_271 + 12_345) % 10**8, 8).astype("string"),
        "period_start": pd.Timestamp("2024-04-01"), "period_end": pd.NaT, "date_of_death": pd.NaT, "last_used": pd.NaT,
        "discount": pd.Series(pd.NA, index=range(n), dtype="boolean"), "amount": 1000.0,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--breakdown", action="store_true", help="also time token and Bloom columns separately")
    args = parser.parse_args()

    os.environ["COUNCILMATCH_KEK"] = base64.b64encode(os.urandom(32)).decode()
    from anonymise.keys import init_keys, load_keyring
    from anonymise.pseudonymised import write_pseudonymised
    from matching.minimisation import store_policy
    from anonymise.tokens import bloom_column, pseudonymise, token_column
    from councilmatch.contracts import BLOOM_BYTES, TOKEN_COLUMNS
    from councilmatch.home import Home

    t0 = time.perf_counter()
    frame = canonical_frame(args.records, args.seed)
    built = time.perf_counter() - t0
    print(f"built {len(frame):,} canonical records in {built:.1f} s "
          f"(distinct: surnames {frame.surname.nunique():,}, dob {frame.dob.nunique():,}, "
          f"postcodes {frame.postcode.nunique():,}, addresses {frame.address_lines.nunique():,})")

    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp))
        init_keys(home, dev_kek=True)
        keyring = load_keyring(home)

        if args.breakdown:
            cache: dict = {}
            cpu = time.process_time()
            for c in TOKEN_COLUMNS:
                token_column(frame, c, keyring, cache)
            tokens, cpu = time.process_time() - cpu, time.process_time()
            for c in BLOOM_BYTES:
                bloom_column(frame, c, keyring, cache)
            blooms = time.process_time() - cpu
            print(f"  CPU: {len(TOKEN_COLUMNS)} token columns {tokens:.1f} s, {len(BLOOM_BYTES)} Bloom columns {blooms:.1f} s")

        t, cpu = time.perf_counter(), time.process_time()
        out = pseudonymise(frame, keyring, "bench")
        total, cpu = time.perf_counter() - t, time.process_time() - cpu
        t = time.perf_counter()
        path = write_pseudonymised(home, out, store_policy(home))
        written = time.perf_counter() - t
        size = path.stat().st_size / 2**20
    print(f"pseudonymise(): {len(frame):,} records in {total:.1f} s wall = {len(frame) / total:,.0f} records/s "
          f"(CPU {cpu:.1f} s = {len(frame) / cpu:,.0f} records per CPU-second; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"write_pseudonymised(): {written:.1f} s, {size:.0f} MiB Parquet")
    import resource

    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")


if __name__ == "__main__":
    main()
