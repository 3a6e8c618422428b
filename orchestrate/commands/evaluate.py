"""`councilmatch evaluate …`: linkage accuracy on labelled data, always through pseudonymisation.

Every command ends with the line ``precision=P recall=R f1=F pairs=N seconds=S``
(``suite`` with its table). Only this package and the tests read ground truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from orchestrate.commands.options import HomeOption, resolve_home

console = Console()
evaluate_app = typer.Typer(help="Linkage accuracy, measured through pseudonymisation.", no_args_is_help=True)
Threshold = Annotated[float, typer.Option(help="Match probability at or above which a pair is linked.")]


def _refused(exc: Exception) -> typer.Exit:
    """A trained model that failed its fit check flags nothing (matching.training.DegenerateFit):
    say so in one line, not a traceback."""
    console.print(f"[red]the trained model failed its fit check, so nothing was linked: {exc}[/red]", highlight=False)
    return typer.Exit(1)


def _febrl(name: str, threshold: float) -> None:
    from evaluation.labelled import evaluate_febrl
    from matching.linker import DegenerateFit

    try:
        m = evaluate_febrl(name, threshold)
    except DegenerateFit as exc:
        raise _refused(exc)
    console.print(f"{name}: {m.true_positives} of {m.true_pairs} true pairs found", highlight=False)
    print(m.line())


def _register_febrl(name: str, doc: str) -> None:
    def command(threshold: Threshold = 0.5) -> None:
        _febrl(name, threshold)

    command.__doc__ = doc
    evaluate_app.command(name)(command)


for _set, _what in (("febrl1", "FEBRL1 (1,000 records deduplication)"), ("febrl2", "FEBRL2 (5,000 records deduplication)"),
                    ("febrl3", "FEBRL3 (5,000 records deduplication)"), ("febrl4", "FEBRL4 (5,000 × 5,000 linkage)")):
    _register_febrl(_set, f"{_what} with soc_sec_id.")
    _register_febrl(f"{_set}-nossn", f"{_what} without soc_sec_id.")


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
    from evaluation.labelled import evaluate_csv, parse_map
    from matching.linker import DegenerateFit

    try:
        mapping = parse_map(map)
        m = evaluate_csv(data, right, id_column, truth_column, mapping, threshold)
    except DegenerateFit as exc:
        raise _refused(exc)
    except (ValueError, OSError) as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2)
    print(m.line())


@evaluate_app.command("synthetic")
def ev_synthetic(home: HomeOption = None) -> None:
    """Score a synthetic home's latest flags against truth/ per match type and overall."""
    from evaluation.synthetic import evaluate_synthetic

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


@evaluate_app.command("suite")
def ev_suite(
    splink: Annotated[bool, typer.Option(help="Run Splink 5 on the same clear text (needs the bench extra).")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the independent perturbation sets.")] = 1,
    scale: Annotated[float, typer.Option(help="Size of the perturbation sets (1.0 = 10k records).")] = 1.0,
    noise: Annotated[float, typer.Option(min=0.0, help="Every per-record error rate of the perturbation sets "
                                         "times this (1.0 = the defaults; 2.0 = twice as noisy).")] = 1.0,
    hard: Annotated[float, typer.Option(min=0.0, help="Twins, namesakes and relatives times this "
                                        "(0 = none).")] = 1.0,
    out: Annotated[Optional[Path], typer.Option(help="Also write the table (Markdown) to this file.")] = None,
) -> None:
    """Every labelled evaluation in one table: FEBRL1–4 with and without the id, the independent
    perturbation sets, Splink beside each, and the calibration table."""
    from evaluation.suite import markdown, run_suite

    rows = run_suite(with_splink=splink, seed=seed, scale=scale, noise=noise, hard=hard,
                     progress=lambda name: console.print(f"[dim]… {name}[/dim]", highlight=False))
    text = markdown(rows)
    print(text)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    failed = [r.evaluation.name for r in rows if r.met is False]
    if failed:
        console.print(f"[red]below goal: {', '.join(failed)}[/red]", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(evaluate_app, name="evaluate")
