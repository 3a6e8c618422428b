"""The thief: a copy of the whole data home, without the KEK, after a full night.

`councilmatch run` on a small generated home with the KEK outside it (COUNCILMATCH_KEK).
Then every file under the home outside vault/ and keys/ is attacked with what a
thief has: no Parquet file opens without keys, no JSON parses to anything holding a
token, filter, date or amount, and no file holds one in any encoding we can think of
(text, little/big-endian int64 and float64, nanosecond timestamps), nor a clear record id.
The key-custody commands (change-kek, rotate -> re-pseudonymise) are tested end to end
on copies of the same home.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from councilmatch.home import Home

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "orchestrate.cli"]
RUN_ID = "20261101T020000"
EXEMPT = {"vault", "keys"}


def new_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def cli(*args: str, home: Path, kek: str | None, extra: dict | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COUNCILMATCH_KEK", "AIRFLOW_HOME")
           and not k.startswith("AIRFLOW_CONN_")}
    env["COLUMNS"] = "200"
    if kek:
        env["COUNCILMATCH_KEK"] = kek
    env.update(extra or {})
    return subprocess.run([*CLI, *args, "--home", str(home)], capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("thief")
    home = root / "home"
    kek = new_kek()
    assert cli("generate", "--boroughs", "2", "--people", "600", "--seed", "3", home=home, kek=kek).returncode == 0
    truth = root / "truth"  # the generator's answers are not part of the hub: kept outside the home
    shutil.move(str(home / "truth"), truth)
    assert cli("keys", "init", home=home, kek=kek).returncode == 0
    assert not (home / "keys" / "dev-kek").exists(), "the KEK lives outside the home"
    done = cli("run", "--run-id", RUN_ID, home=home, kek=kek)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"home": Home.resolve(home), "kek": kek, "truth": truth, "root": root}


# ---------------------------------------------------------------------------
# What the thief looks for
# ---------------------------------------------------------------------------


def _secrets(night: dict) -> dict:
    """Everything a thief must not get, taken from the decrypted store (with the KEK) and from truth."""
    os.environ["COUNCILMATCH_KEK"] = night["kek"]
    try:
        from anonymise.pseudonymised import read_pseudonymised
        from councilmatch.contracts import BLOOM_BYTES, TOKEN_COLUMNS

        home: Home = night["home"]
        frames = [read_pseudonymised(p, home) for p in home.pseudonymised.rglob("*.parquet")]
    finally:
        del os.environ["COUNCILMATCH_KEK"]
    store = pd.concat(frames, ignore_index=True)
    records = pd.read_parquet(night["truth"] / "records.parquet")
    people = pd.read_parquet(night["truth"] / "people.parquet")
    tokens = np.unique(store[list(TOKEN_COLUMNS)].to_numpy().ravel())
    tokens = tokens[tokens != 0]
    # a filter's first 8 bytes as needle, unless nearly empty: a prefix with one or two bits set
    # (0x0200000000000000) also turns up by chance in any binary file header
    blooms = np.array([np.frombuffer(b[:8], "<i8")[0] for c in BLOOM_BYTES for b in store[c]
                       if sum(bin(x).count("1") for x in b[:8]) >= 8], dtype=np.int64)
    dates = pd.concat([records[c] for c in ("period_start", "period_end", "last_used", "date_of_death")]
                      + [pd.to_datetime(people["dob"])] if "dob" in people else [])
    dates = pd.to_datetime(dates.dropna()).drop_duplicates()
    amounts = records["amount"].dropna()
    amounts = amounts[amounts != 0].drop_duplicates()
    binary = np.unique(np.concatenate([
        tokens, blooms, dates.to_numpy(dtype="datetime64[ns]").astype(np.int64),
        amounts.to_numpy(dtype="float64").view(np.int64)]))
    text = {f"{d:%Y-%m-%d}" for d in dates} | {f"{d:%d/%m/%Y}" for d in dates}
    # A night's own date (first_seen/last_seen of flags, run ids) is not a person's: the thief knows
    # when the nights ran. It only matters when it equals some record's date by chance.
    text -= {f"{pd.Timestamp(r[:8]):%Y-%m-%d}" for r in (RUN_ID, "20261102T020000")}
    text |= {f"{a:.2f}" for a in amounts if a >= 100} | {str(int(a)) for a in amounts if a >= 1000 and a == int(a)}
    text |= {str(t) for t in tokens}
    text |= {r for r in records["record_id"].astype(str) if len(r) >= 6}
    return {"binary": binary, "text": text, "tokens": tokens, "dates": dates}


def _binary_hits(blob: bytes, needles: np.ndarray) -> int:
    """Count 8-byte windows (any offset, either byte order) equal to a needle."""
    if len(blob) < 8:
        return 0
    raw = np.frombuffer(blob, dtype=np.uint8)
    hits = 0
    for off in range(8):
        n = (len(raw) - off) // 8
        if n <= 0:
            continue
        chunk = raw[off: off + 8 * n]
        for dt in ("<i8", ">i8"):
            hits += int(np.isin(chunk.view(dt), needles, assume_unique=False).sum())
    return hits


def _text_hits(blob: bytes, needles: set[str]) -> list[str]:
    text = blob.decode("latin-1")
    found = []
    for n in needles:
        if n in text and re.search(r"(?<![0-9A-Za-z.])" + re.escape(n) + r"(?![0-9A-Za-z])", text):
            found.append(n)
    return found


def scanned(home: Home) -> list[Path]:
    return sorted(p for p in home.root.rglob("*") if p.is_file() and p.relative_to(home.root).parts[0] not in EXEMPT)


def attack(home: Home, secrets: dict) -> list[str]:
    """What a thief recovers from the home, file by file (empty = nothing)."""
    problems = []
    for path in scanned(home):
        rel = str(path.relative_to(home.root))
        blob = path.read_bytes()
        if blob[:4] == b"PAR1" or blob[-4:] == b"PAR1":
            problems.append(f"{rel}: plain Parquet")
        if blob[:4] == b"PARE":
            try:
                pq.read_table(path)
                problems.append(f"{rel}: encrypted Parquet opened without keys")
            except OSError:
                pass
        if path.suffix == ".db":  # SQLite: every text value as the application sees it
            import sqlite3

            con = sqlite3.connect(path)
            dump = "\n".join(con.iterdump()).encode()
            con.close()
            blob = blob + b"\n" + dump
        try:
            json.loads(path.read_bytes())
            if rel.startswith("store/"):  # run state, models, manifests: encrypted, never plain JSON
                problems.append(f"{rel}: plain JSON in the store")
        except (ValueError, UnicodeDecodeError):
            pass  # does not parse: the text and binary scans below still apply (reports are plain by design)
        found = _text_hits(blob, secrets["text"])
        if found:
            problems.append(f"{rel}: holds {sorted(found)[:5]}")
        n = _binary_hits(path.read_bytes(), secrets["binary"])
        if n:
            problems.append(f"{rel}: holds {n} token/filter/date/amount value(s) in binary form")
    return problems


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_the_attack_finds_planted_values(night: dict, tmp_path: Path) -> None:
    """The attack must be able to fail: plain Parquet, a JSON date, a raw token, a clear record id."""
    secrets = _secrets(night)
    fake = Home(tmp_path / "fake")
    (fake.store / "runs").mkdir(parents=True)
    pd.DataFrame({"t": secrets["tokens"][:3]}).to_parquet(fake.store / "a.parquet")
    (fake.store / "runs" / "x.json").write_text(json.dumps({"when": f"{secrets['dates'].iloc[5]:%Y-%m-%d}"}))
    (fake.store / "blob.bin").write_bytes(b"\x00\x01\x02" + secrets["tokens"][7:8].astype(">i8").tobytes())
    rid = next(r for r in secrets["text"] if r[:2].isalpha() and r[2:].isdigit())
    (fake.root / "log.txt").write_text(f"processing {rid}\n")
    problems = "\n".join(attack(fake, secrets))
    assert "a.parquet: plain Parquet" in problems
    assert "x.json: holds" in problems and "x.json: plain JSON in the store" in problems
    assert "blob.bin: holds 1 " in problems and "log.txt: holds" in problems


def test_a_thief_without_the_kek_gets_nothing(night: dict) -> None:
    home: Home = night["home"]
    files = scanned(home)
    parts = {p.relative_to(home.root).parts[0] for p in files}
    assert {"store", "reports", "archive"} <= parts, parts
    assert sum(p.suffix == ".parquet" for p in files) >= 20 and sum(p.suffix == ".json" for p in files) >= 20
    assert attack(home, _secrets(night)) == []


def test_store_files_do_not_open_with_the_keys_folder_but_another_kek(night: dict, monkeypatch) -> None:
    from anonymise import at_rest
    from anonymise.errors import KeyringError

    home: Home = night["home"]
    flags = home.flags_path(RUN_ID)
    monkeypatch.setenv("COUNCILMATCH_KEK", new_kek())
    with pytest.raises(KeyringError):
        at_rest.read_table(flags, home=home)
    monkeypatch.setenv("COUNCILMATCH_KEK", night["kek"])
    assert at_rest.read_table(flags, home=home).num_rows > 0


def _copy(night: dict, name: str) -> Path:
    target = night["root"] / name
    shutil.copytree(night["home"].root, target)
    return target


def _read_everything(home: Path, kek: str) -> str:
    """A child process that decrypts every store file, run state file and the keyring."""
    code = (
        "import sys\n"
        "from councilmatch.home import Home\n"
        "from anonymise import at_rest\n"
        "from anonymise.keys import load_keyring\n"
        "h = Home(__import__('pathlib').Path(sys.argv[1]))\n"
        "load_keyring(h)\n"
        "n = 0\n"
        "for p in sorted(h.store.rglob('*')):\n"
        "    if p.suffix == '.parquet': at_rest.read_table(p, home=h); n += 1\n"
        "    elif p.suffix == '.json': at_rest.read_json(p, h); n += 1\n"
        "print('read', n)\n"
    )
    env = {**os.environ, "COUNCILMATCH_KEK": kek}
    out = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True, env=env, timeout=300)
    return out.stdout + out.stderr


def test_change_kek_end_to_end(night: dict) -> None:
    home = _copy(night, "kek-change")
    old, new = night["kek"], new_kek()
    before = {p: p.read_bytes() for p in (home / "store").rglob("*") if p.is_file()}
    done = cli("keys", "change-kek", home=home, kek=old, extra={"COUNCILMATCH_NEW_KEK": new})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "re-wrapped" in done.stdout
    assert all(p.read_bytes() == b for p, b in before.items()), "no data file is rewritten"
    assert re.search(r"read (\d+)", _read_everything(home, new)), "the new KEK reads everything"
    failed = _read_everything(home, old)
    assert "read " not in failed and "WrongKEKError" in failed, failed[-500:]
    # and a night still runs under the new KEK (nothing re-ingested: feeds are unchanged)
    again = cli("run", "--run-id", "20261102T020000", home=home, kek=new)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ingested" not in {f["status"] for f in _feeds(home, new, "20261102T020000")}


def _feeds(home: Path, kek: str, run_id: str) -> list[dict]:
    os.environ["COUNCILMATCH_KEK"] = kek
    try:
        from orchestrate import run_state

        return run_state.load_feeds(Home(home), run_id)
    finally:
        del os.environ["COUNCILMATCH_KEK"]


def _store_key_ids(home: Path, kek: str) -> set[str]:
    os.environ["COUNCILMATCH_KEK"] = kek
    try:
        from anonymise.pseudonymised import file_metadata

        h = Home(home)
        newest = {}
        for p in sorted(h.pseudonymised.rglob("*.parquet")):
            newest[p.parent] = p
        return {file_metadata(p, h)["key_id"] for p in newest.values()}
    finally:
        del os.environ["COUNCILMATCH_KEK"]


def test_rotate_repseudonymises_from_the_archive(night: dict) -> None:
    home = _copy(night, "rotate")
    kek = night["kek"]
    assert _store_key_ids(home, kek) == {"k1"}
    rotated = cli("keys", "rotate", home=home, kek=kek)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert "active key is now k2" in rotated.stdout and "re-pseudonymised 17 of 17" in rotated.stdout, rotated.stdout
    assert _store_key_ids(home, kek) == {"k2"}
    night2 = cli("run", "--run-id", "20261102T020000", home=home, kek=kek)
    assert night2.returncode == 0, night2.stdout + night2.stderr
    os.environ["COUNCILMATCH_KEK"] = kek
    try:
        from anonymise import at_rest

        h = Home(home)
        first = at_rest.read_frame(h.flags_path(RUN_ID), home=h)
        second = at_rest.read_frame(h.flags_path("20261102T020000"), home=h)
    finally:
        del os.environ["COUNCILMATCH_KEK"]
    assert set(second["key_id"]) == {"k2"}
    # the record references do not depend on the key version: the same pairs are the same flags
    assert len(set(first["flag_id"]) & set(second["flag_id"])) >= 0.9 * len(first)


def test_next_night_repseudonymises_after_rotate_at_next_night(night: dict) -> None:
    home = _copy(night, "rotate-later")
    kek = night["kek"]
    rotated = cli("keys", "rotate", "--at-next-night", home=home, kek=kek)
    assert rotated.returncode == 0 and "next night" in rotated.stdout
    assert _store_key_ids(home, kek) == {"k1"}
    night2 = cli("run", "--run-id", "20261102T020000", home=home, kek=kek)
    assert night2.returncode == 0, night2.stdout + night2.stderr
    assert _store_key_ids(home, kek) == {"k2"}
