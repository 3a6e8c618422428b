"""Commands: ``councilmatch matchtypes list | check [FILE]``, ``councilmatch link ...``,
``councilmatch evaluate febrl4 | febrl4-nossn | febrl3 | febrl3-nossn | csv | synthetic``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from councilmatch.cli_common import HomeOption, resolve_home

console = Console()

matchtypes_app = typer.Typer(help="Fraud match types (matching/matchtypes/*.yaml + the home's matchtypes/).",
                             no_args_is_help=True)
evaluate_app = typer.Typer(help="Linkage accuracy, measured through pseudonymisation.", no_args_is_help=True)
link_app = typer.Typer(help="Linking steps of a run (what the nightly DAG calls).", no_args_is_help=True)

Threshold = Annotated[float, typer.Option(help="Match probability at or above which a pair is linked.")]


@matchtypes_app.command("list")
def matchtypes_list(home: HomeOption = None) -> None:
    """List the match types in force for this home."""
    from matching.matchtype import MatchTypeError, load_matchtypes, source_of

    h = resolve_home(home)
    try:
        types = load_matchtypes(h)
    except MatchTypeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1)
    table = Table("id", "priority", "left ↔ right", "scope", "link", "conditions", "source")
    for mt in types.values():
        table.add_row(mt.id, str(mt.priority), f"{mt.left} ↔ {mt.right}", mt.scope, mt.link,
                      ", ".join(mt.conditions), source_of(h, mt.id))
    console.print(table)


@matchtypes_app.command("check")
def matchtypes_check(
    file: Annotated[Optional[Path], typer.Argument(help="A match type YAML file (default: all in force).")] = None,
    home: HomeOption = None,
) -> None:
    """Validate match type files; errors name the file, line and key."""
    from matching.matchtype import MatchTypeError, load_file, load_matchtypes

    try:
        if file is not None:
            mt = load_file(file)
            console.print(f"[green]ok[/green] {file}: {mt.id} ({mt.title})")
        else:
            types = load_matchtypes(resolve_home(home))
            console.print(f"[green]ok[/green] {len(types)} match types: {', '.join(types)}")
    except (MatchTypeError, OSError) as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1)


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


def _febrl(name: str, threshold: float) -> None:
    from matching.evaluate import evaluate_febrl

    m = evaluate_febrl(name, threshold)
    console.print(f"{name}: {m.true_positives} of {m.true_pairs} true pairs found", highlight=False)
    print(m.line())


@evaluate_app.command("febrl4")
def ev_febrl4(threshold: Threshold = 0.5) -> None:
    """FEBRL4 (5,000 × 5,000 linkage) with soc_sec_id."""
    _febrl("febrl4", threshold)


@evaluate_app.command("febrl4-nossn")
def ev_febrl4_nossn(threshold: Threshold = 0.5) -> None:
    """FEBRL4 without soc_sec_id."""
    _febrl("febrl4-nossn", threshold)


@evaluate_app.command("febrl3")
def ev_febrl3(threshold: Threshold = 0.5) -> None:
    """FEBRL3 (5,000 records deduplication) with soc_sec_id."""
    _febrl("febrl3", threshold)


@evaluate_app.command("febrl3-nossn")
def ev_febrl3_nossn(threshold: Threshold = 0.5) -> None:
    """FEBRL3 without soc_sec_id."""
    _febrl("febrl3-nossn", threshold)


@evaluate_app.command("csv")
def ev_csv(
    data: Annotated[Path, typer.Option(help="Labelled CSV (deduplicated alone, or the left file).")],
    id_column: Annotated[str, typer.Option(help="Record id column.")],
    truth_column: Annotated[str, typer.Option(help="True entity id column: same value = same person.")],
    map: Annotated[str, typer.Option(help="canonical=column[+column],... e.g. forenames=first,surname=last,"
                                          "dob=dob,address_lines=street+town,postcode=pc")],
    right: Annotated[Optional[Path], typer.Option(help="Second CSV: link data to it instead of deduplicating.")] = None,
    threshold: Threshold = 0.5,
) -> None:
    """Score the default linkage on any labelled CSV (one file: dedupe; two: link)."""
    from matching.evaluate import evaluate_csv, parse_map

    try:
        mapping = parse_map(map)
        m = evaluate_csv(data, right, id_column, truth_column, mapping, threshold)
    except (ValueError, OSError) as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2)
    print(m.line())


@evaluate_app.command("synthetic")
def ev_synthetic(home: HomeOption = None) -> None:
    """Score a synthetic home's latest flags against truth/ per match type and overall."""
    from matching.evaluate import evaluate_synthetic

    try:
        rep = evaluate_synthetic(resolve_home(home))
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1)
    table = Table("match type", "precision", "recall", "f1", "flags", "expected")
    for mt, m in rep.per_type.items():
        table.add_row(mt, f"{m.precision:.4f}", f"{m.recall:.4f}", f"{m.f1:.4f}", str(m.pairs), str(m.true_pairs))
    console.print(f"flags: {rep.flags_file}", highlight=False)
    console.print(table)
    console.print(f"near-misses flagged: {rep.near_misses_flagged} of {rep.near_misses}")
    print(rep.overall.line())


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""
    app.add_typer(matchtypes_app, name="matchtypes")
    app.add_typer(link_app, name="link")
    app.add_typer(evaluate_app, name="evaluate")
