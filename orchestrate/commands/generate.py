"""``councilmatch generate``: synthetic borough extracts with ground truth."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrate.commands.options import HomeOption, resolve_home


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""

    @app.command("generate")
    def generate_command(
        boroughs: Annotated[int, typer.Option("--boroughs", help="How many London boroughs (Camden, Hackney, Islington, ... in that order).", min=1, max=33)] = 3,
        people: Annotated[int, typer.Option("--people", help="Population size across all boroughs.", min=100)] = 5000,
        seed: Annotated[int, typer.Option("--seed", help="Random seed: same arguments give the same bytes.")] = 1,
        start_date: Annotated[Optional[datetime], typer.Option("--start-date", formats=["%Y-%m-%d"], help="Extract date (the 'as at' day of the snapshots). Default 2026-11-01.")] = None,
        home: HomeOption = None,
        noise_profile: Annotated[str, typer.Option("--noise-profile", help="Noise profile: 'default' (tune on it), 'heldout' (report on it), or a YAML file (see synthetic/noise_profiles.yaml).")] = "default",
    ) -> None:
        """Write realistic borough extracts, their feed definitions, and ground truth (truth/)."""
        from synthetic.generate import generate, steps
        from synthetic.noise import load_profile

        try:
            profile = load_profile(noise_profile)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--noise-profile") from exc
        h = resolve_home(home)
        console = Console(stderr=True)
        with Progress(TextColumn("{task.description:<40}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("starting", total=steps(boroughs))
            summary = generate(h, boroughs, people, seed, extract_date=start_date.date() if start_date else None,
                               progress=lambda msg: bar.update(task, advance=1, description=msg), noise_profile=profile)
            bar.update(task, completed=steps(boroughs), description="done")
        table = Table(title=f"Generated {summary.total_records:,} records for {len(summary.councils)} boroughs in {h.root} "
                            f"(noise profile {summary.noise_profile})")
        table.add_column("data set")
        table.add_column("records", justify="right")
        for dataset, n in summary.records.items():
            table.add_row(dataset, f"{n:,}")
        table.add_row("invalid rows (in truth)", f"{summary.invalid:,}")
        Console().print(table)
        flags = Table(title="Planted scenarios and expected flags")
        for c in ("match type", "fraud", "near miss", "expected flags"):
            flags.add_column(c, justify="right" if c != "match type" else "left")
        for m, n in summary.expected_flags.items():
            flags.add_row(m, str(summary.scenarios.get(f"{m}/fraud", 0)), str(summary.scenarios.get(f"{m}/near_miss", 0)), str(n))
        Console().print(flags)
        if summary.stale_feeds:
            console.print(f"[yellow]warning:[/] {len(summary.stale_feeds)} feed(s) in {h.feeds} were not written by this run "
                          f"and are not covered by truth/ (e.g. {summary.stale_feeds[0]}); use a fresh --home for evaluation.")
