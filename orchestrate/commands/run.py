"""``councilmatch run``: the whole nightly job in this process, with the DAG's own functions."""

from __future__ import annotations

from typing import Any, Iterable, Optional

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from orchestrate.commands.options import HomeOption, counts_table, resolve_home

console = Console()


def _progress(items: list, label: str) -> Iterable[Any]:
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(label, total=len(items))
        for item in items:
            yield item
            progress.advance(task)


def run(
    home: HomeOption = None,
    run_id: Optional[str] = typer.Option(None, help="Run id (default: the current UTC time)."),
    full: bool = typer.Option(False, "--full", help="Re-link the whole pool instead of only what changed "
                                                     "since the last run (the saved models are still reused)."),
    retrain: bool = typer.Option(False, "--retrain", help="Re-train every match type's model tonight "
                                                          "(otherwise weekly, or on drift; see settings.yaml models:)."),
) -> None:
    """Run the nightly job in-process: ingest, pseudonymise, link, flag, publish, report.

    Links incrementally by default: only records added, changed or removed since the last run."""
    from orchestrate.pipeline import run_all

    summary = run_all(resolve_home(home), run_id=run_id, progress=_progress, full=full, retrain=retrain)
    print_summary(summary)
    if any(f.get("status") == "failed" for f in summary["feeds"]):
        raise typer.Exit(1)


def print_summary(summary: dict[str, Any]) -> None:
    feeds = Table(title=f"Run {summary['run_id']}: feeds")
    for col in ("feed", "status", "rows in", "accepted", "quarantined"):
        feeds.add_column(col, justify="left" if col in ("feed", "status") else "right")
    for f in summary["feeds"]:
        feeds.add_row(f["feed_id"], f.get("status", ""), str(f.get("rows_in", 0)),
                      str(f.get("accepted", 0)), str(f.get("quarantined", 0)))
    console.print(feeds)
    for f in summary["feeds"]:
        if f.get("error"):
            console.print(f"[red]{f['feed_id']}[/red]: {f['error']}")
    for f in summary["feeds"]:  # a feed whose shape changed since its previous extract (ingest.quality)
        for alert in (f.get("quality") or {}).get("alerts", []):
            console.print(f"[yellow]data-quality alert[/yellow] {f['feed_id']}: {alert}")

    console.print(counts_table("Flags per match type", "match type", summary["published"]["per_match_type"],
                               value="flags", fmt="{}"))

    console.print(counts_table("Time per stage", "stage", summary["timings"], value="seconds", fmt="{:.2f}"))
    store = summary["published"]["review_store"]
    console.print(f"flags: {summary['published']['flags']} ({store}) -> {summary['published']['flags_path']}")
    console.print(f"report: {summary['report']['html']}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
