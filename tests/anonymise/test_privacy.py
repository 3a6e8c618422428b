"""Privacy: no clear identifier in any file the hub writes outside landing/, truth/, vault/,
quarantine/ and archive/ (store, manifests, flags, run state, review DB, reports, logs, keys)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from anonymise.keys import init_keys, load_keyring
from anonymise.pseudonymised import write_pseudonymised
from anonymise.quarantine import dispose_raw_extract, write_quarantine
from anonymise.tokens import pseudonymise
from anonymise.vault import Vault
from councilmatch.councils import COUNCIL_NAMES
from councilmatch.home import Home
from matching.minimisation import store_policy

CLEAR_DIRS = {"landing", "truth", "vault", "quarantine", "archive"}
DOB_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%Y", "%d %b %Y", "%d %B %Y")
NAME_COLUMNS = ("forenames", "first_name", "middle_names", "surname", "previous_surname")
_COUNCIL_WORDS = {w.upper() for name in COUNCIL_NAMES.values() for w in re.findall(r"[A-Za-z]+", name)}
_REPO = Path(__file__).resolve().parents[2]


def _string_literals(source: str) -> str:
    """Python string constants other than docstrings (what code can write to a file)."""
    import ast

    tree = ast.parse(source)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return "\n".join(n.value for n in ast.walk(tree)
                     if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings)


def _software_vocabulary() -> set[str]:
    """Words the software itself writes (match-type descriptions such as "Bill / William",
    templates, messages): a name that is also one of them cannot be told apart from it.
    Docstrings and comments are not written anywhere; the generator's name lists
    (synthetic/) and the tests are not part of the software that runs at the hub."""
    words: set[str] = set()
    for package in ("councilmatch", "ingest", "anonymise", "matching", "review"):
        for path in (_REPO / package).rglob("*"):
            if path.name == "nicknames.py":  # a lookup table, never written out
                continue
            if not path.is_file() or path.suffix not in {".py", ".yaml", ".yml", ".html", ".js", ".txt"}:
                continue
            text = path.read_text(errors="ignore")
            if path.suffix == ".py":
                try:
                    text = _string_literals(text)
                except SyntaxError:
                    pass
            words.update(re.findall(r"[A-Za-z]{4,}", text))
    return words


_VOCABULARY = _software_vocabulary()


def _add_text(out: set[str], value: object, *forms) -> None:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return
    s = str(value).strip()
    if s:
        out.update(f(s) for f in (forms or (lambda x: x,)))


def clear_values(frame: pd.DataFrame) -> set[str]:
    """Every clear identifier in a frame of people/records, in the forms a leak would take."""
    needles: set[str] = set()
    for col in NAME_COLUMNS:
        for v in frame.get(col, pd.Series(dtype=object)).dropna().astype(str):
            for word in re.findall(r"[A-Za-z']+", v):
                if len(word) >= 4 and word.upper() not in _COUNCIL_WORDS:
                    needles.update(form for form in (word, word.upper()) if form not in _VOCABULARY)
    for v in pd.to_datetime(frame.get("dob", pd.Series(dtype="datetime64[ns]")), errors="coerce").dropna():
        needles.update(v.strftime(f) for f in DOB_FORMATS)
    for v in frame.get("nino", pd.Series(dtype=object)).dropna().astype(str):
        compact = v.replace(" ", "").upper()
        needles.update({compact, " ".join([compact[:2], compact[2:4], compact[4:6], compact[6:8], compact[8:]])})
    for v in frame.get("postcode", pd.Series(dtype=object)).dropna().astype(str):
        needles.update({v.upper(), v.upper().replace(" ", "")})
    for col in ("email", "address_lines", "address_line_1"):
        for v in frame.get(col, pd.Series(dtype=object)).dropna().astype(str):
            needles.update({v, v.upper(), v.lower()})
    for col in ("phone", "bank_account", "uprn"):
        for v in frame.get(col, pd.Series(dtype=object)).dropna().astype(str):
            digits = re.sub(r"\D", "", v)
            if len(digits) >= 7:
                needles.add(digits)
    for v in frame.get("bank_sort_code", pd.Series(dtype=object)).dropna().astype(str):
        d = re.sub(r"\D", "", v)
        if len(d) == 6:  # a bare 6-digit run is too common in floats/timings: dashed form
            needles.add(f"{d[:2]}-{d[2:4]}-{d[4:]}")
    return {n for n in needles if len(n) >= 4}


def _parquet_text(path: Path) -> bytes:
    """Decoded text of every string/date column and the metadata (compression hides raw bytes).

    Hub files are encrypted at rest; this scan is the insider's, who holds the KEK and decrypts
    them (the thief's scan, without the KEK, is tests/e2e/test_thief.py)."""
    from anonymise import at_rest

    table = at_rest.read_table(path) if at_rest.is_encrypted_parquet(path) else pq.read_table(path)
    parts = [str(table.schema.metadata or {})]
    for name in table.column_names:
        col = table.column(name).to_pandas()
        if pd.api.types.is_datetime64_any_dtype(col):
            parts.append("\n".join(col.dropna().dt.strftime("%Y-%m-%d")))
        elif col.dtype == object and not col.map(lambda v: isinstance(v, bytes)).any():
            parts.append("\n".join(col.dropna().astype(str)))
    return "\n".join(parts).encode()


def scanned_files(home: Home) -> list[Path]:
    return [p for p in home.root.rglob("*") if p.is_file()
            and p.relative_to(home.root).parts[0] not in CLEAR_DIRS]


def find_leaks(home: Home, needles: set[str]) -> list[tuple[str, str]]:
    encoded = [(n, n.encode()) for n in needles]
    hits = []
    from anonymise import at_rest

    for path in scanned_files(home):
        if path.suffix == ".parquet" and at_rest.is_encrypted_parquet(path):
            # its bytes are ciphertext, where a four-letter name turns up by chance (JAKE in one
            # full run in a dozen or so); what it holds is read decrypted, every cell and the metadata
            blob = _parquet_text(path)
        else:
            blob = path.read_bytes()
            if path.suffix == ".parquet":
                blob += b"\n" + _parquet_text(path)
        for text, needle in encoded:
            if needle in blob and re.search(rb"(?<![A-Za-z0-9])" + re.escape(needle) + rb"(?![A-Za-z0-9])", blob):
                hits.append((str(path.relative_to(home.root)), text))
    return hits


def test_scanner_finds_a_planted_leak(home, people, helpers) -> None:
    """The scan must be able to fail: a clear value in a log, a JSON and a Parquet is found."""
    canonical = helpers.canonical_frame(people[:5])
    needles = clear_values(canonical)
    home.logs.mkdir(exist_ok=True)
    (home.logs / "x.log").write_text(f"processing {canonical.loc[1, 'nino']}\n")
    pd.DataFrame({"a": [canonical.loc[2, "email"]] * 50}).to_parquet(home.store / "x.parquet", compression="zstd")
    (home.reports).mkdir(exist_ok=True)
    (home.reports / "r.json").write_text(f'{{"dob": "{canonical.loc[3, "dob"]:%d/%m/%Y}"}}')
    from anonymise import at_rest  # encrypted at rest as the hub writes: found once decrypted

    at_rest.write_table(home.store / "sealed.parquet", pa.table({"a": [canonical.loc[4, "nino"]] * 50}), home)
    leaked = {t for _, t in find_leaks(home, needles)}
    assert canonical.loc[1, "nino"] in leaked and canonical.loc[2, "email"] in leaked
    assert f"{canonical.loc[3, 'dob']:%d/%m/%Y}" in leaked
    assert canonical.loc[4, "nino"] in leaked


def test_no_clear_identifier_outside_the_clear_folders(home, people, helpers) -> None:
    """Hand-made raw extracts -> ingest -> pseudonymise -> store, vault, quarantine, archive."""
    from ingest.extract import ingest_extract
    from ingest.feeds import load_feed

    keyring = load_keyring(home)
    bad = ["EBAD", "Zebedee Quentin", "Quillfeather", "31/02/1980", "XX", "9 Nowhere Lane", "London",
           "E1 6AN", "zq@example.org", "07700900999", "112233", "44556677", "01/04/2024"]
    inputs = []
    for council, group, prefix in ((helpers.CAMDEN, people[:25], "C"), (helpers.HACKNEY, people[15:], "H")):
        feed_path, extract = helpers.write_payroll(home, council, group, prefix=prefix, extra_rows=[bad])
        result = ingest_extract(load_feed(feed_path), extract)
        assert len(result.quarantined) >= 1
        frame = pseudonymise(result.accepted, keyring, result.extract_id)
        write_pseudonymised(home, frame, store_policy(home))
        Vault(home, keyring).store(council, result.extract_id, result.accepted)
        write_quarantine(home, keyring, council, "payroll", result.extract_id, result.quarantined)
        dispose_raw_extract(home, keyring, extract, "archive")
        inputs.append(result.accepted)
    raw_people = pd.DataFrame([vars(p) for p in people]).rename(columns={"street": "address_line_1",
                                                                        "sort_code": "bank_sort_code",
                                                                        "account": "bank_account"})
    bad_row = pd.DataFrame([{"forenames": bad[1], "surname": bad[2], "email": bad[8], "phone": bad[9],
                             "bank_account": bad[11], "address_line_1": bad[5]}])
    needles = clear_values(pd.concat([raw_people, bad_row, *inputs], ignore_index=True))
    assert len(needles) > 300
    assert scanned_files(home), "nothing was written outside the clear folders"
    assert find_leaks(home, needles) == []


def test_no_clear_identifier_after_a_full_run(tmp_path) -> None:
    """Generator -> orchestrate.pipeline.run_all (ingest, pseudonymise, match, publish, report)."""
    from orchestrate.pipeline import run_all
    from ingest.extract import ingest_extract
    from ingest.feeds import load_feeds, newest_extract
    from synthetic.generate import generate

    home = Home(tmp_path / "full")
    generate(home, 2, 600, seed=3)  # large enough that every extract has rows
    init_keys(home)
    # the inputs as rendered (typos, nicknames, formats) plus the generator's clean truth
    frames = [pd.read_parquet(home.truth / "people.parquet"), pd.read_parquet(home.truth / "addresses.parquet")]
    for feed in load_feeds(home).values():
        result = ingest_extract(feed, newest_extract(home, feed))
        frames.append(result.accepted)
    needles = clear_values(pd.concat(frames, ignore_index=True))
    # Period dates and dates of death are kept by design (match types need them); a date of
    # birth that happens to equal one of them cannot be told apart from it in the store.
    # The store keeps them generalised (anonymise.minimise: month-shrunk periods), so those forms too.
    from anonymise.minimise import generalise

    policy = store_policy(home)
    kept = frames[2:] + [generalise(f, policy.get(str(f["dataset"].iloc[0]), {})) for f in frames[2:] if len(f)]
    kept_dates = {f"{d:{fmt}}" for frame in kept for col in ("period_start", "period_end", "date_of_death", "last_used")
                  for d in frame[col].dropna() for fmt in DOB_FORMATS}
    needles -= kept_dates
    assert len(needles) > 1000

    summary = run_all(home)
    assert summary["published"]["flags"] > 0
    written = {p.relative_to(home.root).parts[0] for p in scanned_files(home)}
    assert {"store", "reports"} <= written
    assert find_leaks(home, needles) == []
