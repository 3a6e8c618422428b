"""Retention: delete sensitive data once it is past the period the home keeps it for.

Days per kind come from ``settings.yaml`` (``retention:``, see
``councilmatch.settings.Retention``; every kind has a default):

==================  ======================  ===========================================
kind                where                   what is purged
==================  ======================  ===========================================
raw_archive         ``archive/``            encrypted raw extracts older than N days
quarantine          ``quarantine/``         rejected rows (encrypted) older than N days
vault               ``vault/<council>/      extract entries (``.enc`` + ``.index.parquet``)
                    <dataset>/``            older than N days, except each folder's newest
                                            (the live extract's identifiers, needed to
                                            re-identify open flags); data keys never
closed_flags        review store            review items closed for more than N days
                                            (with their councils' decisions)
==================  ======================  ===========================================

A file's age is its modification time. Purged review items leave one audit
entry (counts only). Every purge writes a report to
``reports/retention/<timestamp>.json`` listing what went (paths relative to the
home, no identifiers). ``--dry-run`` lists without deleting. Running it twice
removes nothing the second time.

Note: a closed "no issue" decision stops suppressing its flag once purged, so
a pair still matching after the retention period is raised again for a fresh look.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import typer

from councilmatch.fileio import atomic_write
from councilmatch.home import Home
from councilmatch.settings import load_settings
from orchestrate.commands.options import HomeOption, resolve_home

ACTOR = "retention"


@dataclass
class Purged:
    """What one kind lost (or would lose, in a dry run)."""
    kind: str
    days: int
    cutoff: str
    removed: list[str] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0  # past retention but kept on purpose (the newest vault file of a folder)
    note: str = ""

    @property
    def count(self) -> int:
        return len(self.removed)


def _files_older_than(folder: Path, cutoff: float) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime < cutoff)


def _remove_empty_dirs(folder: Path) -> None:
    if not folder.exists():
        return
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()


def _purge_files(home: Home, kind: str, folder: Path, days: int, now: datetime, dry_run: bool) -> Purged:
    cutoff = now - timedelta(days=days)
    result = Purged(kind, days, cutoff.isoformat(timespec="seconds"))
    for p in _files_older_than(folder, cutoff.timestamp()):
        _remove(home, result, [p], dry_run)
    if not dry_run:
        _remove_empty_dirs(folder)
    return result


def _remove(home: Home, result: Purged, paths: list[Path], dry_run: bool) -> None:
    for p in paths:
        if not p.exists():
            continue
        result.bytes += p.stat().st_size
        result.removed.append(str(p.relative_to(home.root)))
        if not dry_run:
            p.unlink()


def _purge_vault(home: Home, days: int, now: datetime, dry_run: bool) -> Purged:
    """Vault entries are ``vault/<council>/<dataset>/<extract_id>.enc`` plus its ``.index.parquet``.

    The newest entry of each folder is kept whatever its age (it holds the live
    extract's identifiers); council data keys and ``audit.log`` are never touched.
    """
    cutoff = now - timedelta(days=days)
    result = Purged("vault", days, cutoff.isoformat(timespec="seconds"))
    if not home.vault.exists():
        return result
    for folder in sorted(p for p in home.vault.glob("*/*") if p.is_dir()):
        entries = sorted(folder.glob("*.enc"), key=lambda p: (p.stat().st_mtime, p.name))
        for blob in entries[:-1]:
            if blob.stat().st_mtime < cutoff.timestamp():
                index = blob.with_name(blob.name[: -len(".enc")] + ".index.parquet")
                _remove(home, result, [blob, index], dry_run)
        if entries and entries[-1].stat().st_mtime < cutoff.timestamp():
            result.kept += 1
    return result


def _purge_closed_flags(home: Home, days: int, now: datetime, dry_run: bool) -> Purged:
    """Delete review items closed (every council decided) longer than ``days`` ago."""
    from review import audit as review_audit
    from review.store import purge_closed_flags

    cutoff = now - timedelta(days=days)
    result = Purged("closed_flags", days, cutoff.isoformat(timespec="seconds"))
    db_url = home.review_db_url
    review_audit.bind(db_url, home.root)
    expired, result.note = purge_closed_flags(db_url, cutoff, dry_run=dry_run, actor=ACTOR)
    result.removed = [f"review_item:{fid}" for fid in expired]
    return result


def purge(home: Home | Path | str, *, dry_run: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Purge every kind past its retention; returns counts per kind and the report's path."""
    home = home if isinstance(home, Home) else Home.resolve(home)
    now = now or datetime.now(timezone.utc)
    days = load_settings(home).retention
    results = [
        _purge_files(home, "raw_archive", home.archive, days.raw_archive_days, now, dry_run),
        _purge_files(home, "quarantine", home.quarantine, days.quarantine_days, now, dry_run),
        _purge_vault(home, days.vault_days, now, dry_run),
        _purge_closed_flags(home, days.closed_flag_days, now, dry_run),
    ]
    report_dir = home.reports / "retention"
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S") + ("-dry-run" if dry_run else "")
    report_path = report_dir / f"{stamp}.json"
    detail = {"at": now.isoformat(timespec="seconds"), "dry_run": dry_run,
              "kinds": [asdict(r) | {"count": r.count} for r in results]}
    atomic_write(report_path, json.dumps(detail, indent=2), mode=0o644)
    return {
        "dry_run": dry_run,
        "report": str(report_path),
        "removed": {r.kind: r.count for r in results},
        "bytes": {r.kind: r.bytes for r in results},
        "kept": {r.kind: r.kept for r in results if r.kept},
    }


# ---------------------------------------------------------------------------
# Command line: councilmatch retention purge
# ---------------------------------------------------------------------------

retention_app = typer.Typer(help="Delete data past its retention period (settings.yaml: retention).",
                            no_args_is_help=True)


@retention_app.command("purge")
def purge_command(
    home: HomeOption = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; delete nothing."),
    now: Optional[str] = typer.Option(None, help="Pretend it is this ISO time (for checking a policy)."),
) -> None:
    """Purge raw archives, quarantine, vault files and closed flags past their retention."""
    from rich.console import Console
    from rich.table import Table

    from review.store.publish import as_utc

    when = as_utc(now) if now else None
    result = purge(resolve_home(home), dry_run=dry_run, now=when)
    table = Table(title="Retention purge" + (" (dry run: nothing deleted)" if dry_run else ""))
    for col in ("kind", "removed", "bytes", "kept"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, n in result["removed"].items():
        table.add_row(kind, str(n), str(result["bytes"][kind]), str(result["kept"].get(kind, 0)))
    console = Console()
    console.print(table)
    console.print(f"report: {result['report']}")


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
