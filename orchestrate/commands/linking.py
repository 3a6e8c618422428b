"""Commands: ``councilmatch matchtypes list | check [FILE]``, ``councilmatch link plan | shard | collect | all``.

(The ``councilmatch evaluate ...`` commands are ``orchestrate.commands.evaluate``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from orchestrate.commands.options import HomeOption, resolve_home

console = Console()

matchtypes_app = typer.Typer(help="Fraud match types (matching/matchtypes/*.yaml + the home's matchtypes/).",
                             no_args_is_help=True)
link_app = typer.Typer(help="Linking steps of a run (what the nightly DAG calls).", no_args_is_help=True)


@matchtypes_app.command("list")
def matchtypes_list(home: HomeOption = None) -> None:
    """List the match types in force for this home."""
    from matching.matchtype import load_matchtypes, MatchTypeError, source_of

    h = resolve_home(home)
    try:
        types = load_matchtypes(h)
    except MatchTypeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1)
    # ids are what officers type next (`matchtypes check`, YAML overrides): never wrapped
    table = Table(Column("id", no_wrap=True), "priority", "left ↔ right", "scope", "link", "conditions", "source")
    for mt in types.values():
        table.add_row(mt.id, str(mt.priority), f"{mt.left} ↔ {mt.right}", mt.scope, mt.link,
                      ", ".join(mt.conditions), source_of(h, mt.id))
    console.print(table)


@matchtypes_app.command("check")
def matchtypes_check(
    file: Annotated[Optional[Path], typer.Argument(help="A match type YAML file (default: all in force).")] = None,
    home: HomeOption = None,
) -> None:
    """Validate match type files; errors name the file, line and key. Advice (not an error): an
    identifier compared but not blocked on."""
    from matching.matchtype import load_file, load_matchtypes, MatchTypeError

    try:
        if file is not None:
            mt = load_file(file)
            types = {mt.id: mt}
            console.print(f"[green]ok[/green] {file}: {mt.id} ({mt.title})")
        else:
            types = load_matchtypes(resolve_home(home))
            console.print(f"[green]ok[/green] {len(types)} match types: {', '.join(types)}")
    except (MatchTypeError, OSError) as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1)
    for mt in types.values():
        for column in mt.linkage.unblocked_identifiers():
            console.print(f"[yellow]advice[/yellow] {mt.id}: compares {column} exactly but no blocking rule is "
                          + escape(f"[{column}]") + f" alone; pairs sharing only {column} are never compared",
                          highlight=False)


@link_app.command("plan")
def link_plan(run_id: str, shards: int = 4, home: HomeOption = None) -> None:
    """Fix a run's inputs and train each match type (store/runs/<run_id>/model/)."""
    from matching.run import plan

    tasks = plan(resolve_home(home), run_id, shards)
    console.print(f"{len(tasks)} shard tasks for {len({t['match_type'] for t in tasks})} match types")


@link_app.command("shard")
def link_shard_cmd(run_id: str, match_type: str, shard: int, shards: int, home: HomeOption = None) -> None:
    """Link one shard of one match type."""
    from matching.run import link_shard

    console.print(link_shard(resolve_home(home), run_id, match_type, shard, shards))


@link_app.command("collect")
def link_collect(run_id: str, home: HomeOption = None) -> None:
    """Union a run's shards into store/flags/<run_id>.parquet."""
    from matching.run import collect_flags

    h = resolve_home(home)
    flags = collect_flags(h, run_id)
    console.print(f"{len(flags)} flags -> {h.flags_path(run_id)}")


@link_app.command("all")
def link_all(run_id: str, shards: int = 4, home: HomeOption = None) -> None:
    """plan + every shard + collect, in this process."""
    from matching.run import collect_flags, link_shard, plan

    h = resolve_home(home)
    for task in plan(h, run_id, shards):
        link_shard(h, run_id, **task)
    flags = collect_flags(h, run_id)
    console.print(f"{len(flags)} flags -> {h.flags_path(run_id)}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""
    app.add_typer(matchtypes_app, name="matchtypes")
    app.add_typer(link_app, name="link")
