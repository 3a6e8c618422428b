"""Encrypted side of ingest: quarantined rows and raw extracts after ingest.

Both hold clear data, so both are sealed under the council's data key (the same
envelope as the vault). Quarantine: ``quarantine/<council>/<dataset>/<extract_id>.enc``.
Raw extracts: archived encrypted under ``archive/`` (mirroring ``landing/``), deleted,
or kept, per the retention setting.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from anonymise.datakeys import safe_name, seal_for_council, unseal_for_council
from anonymise.errors import AnonymiseError
from anonymise.keys import Keyring
from councilmatch.fileio import atomic_write
from councilmatch.home import Home
from councilmatch.safepath import ensure_inside, path_inside

HUB = "hub"  # owner of files that do not sit under landing/<council>/


def quarantine_path(home: Home, council: str, dataset: str, extract_id: str) -> Path:
    return path_inside(home.quarantine, safe_name(council, "council"), safe_name(dataset, "dataset"),
                       f"{safe_name(extract_id, 'extract id')}.enc", what="quarantine file")


def _to_parquet(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of any quarantined frame: raw cells of mixed types become strings."""
    frame = frame.reset_index(drop=True)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        fixed = frame.copy()
        for c in fixed.columns:
            if fixed[c].dtype == object:
                fixed[c] = fixed[c].map(lambda v: None if v is None or v is pd.NA else str(v))
        table = pa.Table.from_pandas(fixed, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_quarantine(home: Home, keyring: Keyring, council: str, dataset: str, extract_id: str,
                     quarantined: pd.DataFrame) -> Path:
    """Seal the quarantined rows (with their reasons) of one extract; rewriting is idempotent."""
    path = quarantine_path(home, council, dataset, extract_id)
    blob = seal_for_council(home, keyring, council, _to_parquet(quarantined),
                            {"kind": "quarantine", "dataset": dataset, "extract_id": extract_id})
    return atomic_write(path, blob)


def read_quarantine(home: Home, keyring: Keyring, council: str, dataset: str, extract_id: str) -> pd.DataFrame:
    """The quarantined rows of one extract (raises TamperedError if the file was altered)."""
    path = quarantine_path(home, council, dataset, extract_id)
    if not path.exists():
        raise AnonymiseError(f"no quarantine file {path}")
    _, plain = unseal_for_council(home, keyring, council, path.read_bytes(), str(path))
    return pq.read_table(io.BytesIO(plain)).to_pandas()


def _owner_and_relative(home: Home, path: Path) -> tuple[str, Path]:
    try:
        rel = path.resolve().relative_to(home.landing.resolve())
    except ValueError:
        return HUB, Path(path.name)
    return (safe_name(rel.parts[0], "council") if len(rel.parts) > 1 else HUB), rel


def dispose_raw_extract(home: Home, keyring: Keyring, path: Path,
                        policy: Literal["archive", "delete", "keep"]) -> Path | None:
    """Apply the retention policy to a raw extract once it is ingested.

    archive: encrypted copy at ``archive/<path under landing>.enc``, then the raw file is
    removed (returns the archive path); delete: removed (None); keep: untouched (its path).
    """
    path = Path(path)
    if policy == "keep":
        return path
    if policy not in ("archive", "delete"):
        raise AnonymiseError(f"unknown raw-extract retention policy {policy!r} (archive | delete | keep)")
    if policy == "delete":
        path.unlink(missing_ok=True)
        return None
    council, rel = _owner_and_relative(home, path)
    target = ensure_inside(home.archive, home.archive / rel.parent / (rel.name + ".enc"), "archive file")
    if not path.exists():
        if target.exists():
            return target  # already archived on an earlier run
        raise AnonymiseError(f"raw extract {path} does not exist")
    blob = seal_for_council(home, keyring, council, path.read_bytes(),
                            {"kind": "archive", "name": rel.as_posix()})
    atomic_write(target, blob)
    path.unlink()
    return target


def read_archived(home: Home, keyring: Keyring, archived: Path) -> bytes:
    """The original bytes of an archived raw extract."""
    council, _ = _owner_and_relative(home, home.landing / Path(archived).relative_to(home.archive))
    _, plain = unseal_for_council(home, keyring, council, Path(archived).read_bytes(), str(archived))
    return plain
