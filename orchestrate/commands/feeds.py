"""Data officers' commands: ``councilmatch feeds list | check | add``.

Exit codes of ``feeds check`` (and of ``feeds add``, which ends with a check):
0 the extract is usable, 1 it was read but no row was accepted, 2 the feed
definition or the extract is unusable (the message names the file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from anonymise.errors import AnonymiseError
from councilmatch.contracts import DATASETS, DATE_FIELDS
from councilmatch.councils import CENTRAL, COUNCIL_NAMES
from councilmatch.home import Home
from ingest.extract import IngestResult, ingest_extract
from ingest.feed import FeedDefinition
from ingest.feeds import FeedDefinitionError, feed_path, landing_dir, load_feed, load_feeds, newest_extract, parse_feed
from ingest.propose import feed_yaml, guess_date_format, propose_feed, read_sample_column, resolve_typed_columns
from ingest.quality import with_change
from ingest.read import ExtractError, describe_delimiter
from orchestrate.commands.options import HomeOption, counts_table, resolve_home

EXIT_OK, EXIT_NOTHING_ACCEPTED, EXIT_UNUSABLE = 0, 1, 2

feeds_app = typer.Typer(help="Feeds: list them, check an extract against its feed, add a feed from a sample.",
                        no_args_is_help=True)
console = Console(highlight=False)


def _fresh_console() -> None:
    """Size the console for this invocation (the terminal may differ from import time)."""
    global console
    console = Console(highlight=False)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(EXIT_UNUSABLE)


def _resolve_feed(home: Home, feed: str) -> FeedDefinition:
    """FEED is "<council>/<dataset>" or a path to the YAML file."""
    candidate = Path(feed)
    path = candidate if candidate.suffix in (".yaml", ".yml") or candidate.is_file() else feed_path(home, feed)
    if not path.is_file():
        _fail(f"no feed definition {path} (FEED is '<council>/<dataset>' or a path to its YAML)")
    try:
        return load_feed(path)
    except FeedDefinitionError as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


def _ingest_with_progress(feed: FeedDefinition, extract: Path) -> IngestResult:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"{extract.name}: starting")
        return ingest_extract(feed, extract, on_stage=lambda s: progress.update(task, description=f"{extract.name}: {s}"))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_quality(quality: dict) -> None:
    """The data-quality profile: per field missing / invalid / placeholder rates, duplicates, alerts."""
    if not quality.get("fields"):
        return
    if quality.get("set_missing"):
        console.print(counts_table("Optional values set to missing (the row is still matched; the vault keeps the "
                                   "value as sent)", "field: problem", quality["set_missing"]))
    table = Table(title=f"Data quality by field (missing and invalid: of {quality.get('rows_read', 0):,} rows read; "
                        f"placeholders: of {quality.get('accepted', 0):,} accepted)")
    for col in ("field", "missing", "invalid", "placeholders", "date style", "change since previous"):
        table.add_column(col, justify="right" if col in ("missing", "invalid", "placeholders") else "left")
    deltas = (quality.get("change") or {}).get("fields", {})
    for fld, f in quality["fields"].items():
        d = deltas.get(fld, {})
        moved = ", ".join(f"{k.removesuffix('_rate')} {v * 100:+.1f} pts" for k, v in d.items() if abs(v) >= 0.001)
        table.add_row(fld, _pct(f["missing_rate"]) + (" (not in header)" if f.get("not_in_header") else ""),
                      _pct(f["invalid_rate"]), _pct(f["placeholder_rate"]), f.get("date_style") or "", moved)
    console.print(table)
    console.print(f"duplicate record ids: {quality.get('duplicate_record_ids', 0):,}; "
                  f"duplicate records (same person details under another id): {quality.get('duplicate_records', 0):,}")
    change = quality.get("change") or {}
    if change.get("previous_extract"):
        console.print(f"compared with the previous extract {change['previous_extract']}: rows "
                      f"{change['rows_in']['before']:,} -> {change['rows_in']['now']:,}", soft_wrap=True)
    for alert in quality.get("alerts", []):
        console.print(f"[bold yellow]alert:[/] {alert}", soft_wrap=True)


def run_check(feed: FeedDefinition, extract: Path, show: int = 20, home: Home | None = None) -> int:
    """Ingest in memory (nothing written) and print what a data officer needs; returns the exit code.

    With ``home``, the profile is compared with the feed's previous ingested extract."""
    from anonymise.manifest import read_manifests

    try:
        result = _ingest_with_progress(feed, extract)
    except ExtractError as exc:
        console.print(f"[bold red]unusable extract:[/] {exc}", soft_wrap=True)
        return EXIT_UNUSABLE
    if home is not None:

        result.quality = with_change(read_manifests(home, feed.feed_id), result.extract_id, result.quality)
    m = result.manifest()
    console.print(f"[bold]{feed.feed_id}[/] version {feed.version}: {extract}", soft_wrap=True)
    summary = Table(show_header=False)
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("rows read", f"{m['rows_in']:,}")
    summary.add_row("accepted", f"[green]{m['accepted']:,}[/]")
    summary.add_row("quarantined", f"[{'red' if m['quarantined'] else 'green'}]{m['quarantined']:,}[/]")
    if m["blank_rows"]:
        summary.add_row("blank rows skipped", f"{m['blank_rows']:,}")
    summary.add_row("reconciled", "yes" if m["rows_in"] == m["accepted"] + m["quarantined"] else "[red]NO[/]")
    console.print(summary)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}", soft_wrap=True)
    if m["quarantine_reasons"]:
        console.print(counts_table("Quarantined by reason (a row may have several)", "reason", m["quarantine_reasons"]))
        where = "line" if result.header_offset == 1 else "row"
        rows = Table(title=f"First {min(show, m['quarantined'])} problem rows (row 1 = first data row; "
                           f"{where} = row + {result.header_offset})" if result.header_offset == 1
                     else f"First {min(show, m['quarantined'])} problem rows (row 1 = first row)")
        rows.add_column("row", justify="right")
        rows.add_column("record_id")
        rows.add_column("problems")
        for r in result.quarantined.head(show).itertuples():
            rows.add_row(str(r.row_number), "" if r.record_id is None or str(r.record_id) == "<NA>" else str(r.record_id), r.reasons)
        console.print(rows)
    print_quality(result.quality)
    if m["accepted"] == 0:
        console.print(f"[bold red]no row accepted[/] from {extract}")
        return EXIT_NOTHING_ACCEPTED
    console.print(f"[green]usable:[/] {m['accepted']:,} of {m['rows_in']:,} rows accepted")
    return EXIT_OK


def run_check_at_source(home: Home, feed: FeedDefinition, extract: Path) -> int:
    """A council's pre-pseudonymised file: the anonymise stage's strict acceptance check, nothing stored."""
    from anonymise.at_source import accept_at_source, at_source_metadata
    from anonymise.keys import load_keyring

    try:
        meta = at_source_metadata(extract)
        frame = accept_at_source(extract, load_keyring(home), feed)
    except AnonymiseError as exc:
        console.print(f"[bold red]unusable extract:[/] {exc}", soft_wrap=True)
        return EXIT_UNUSABLE
    console.print(f"[bold]{feed.feed_id}[/] (pseudonymised at source): {extract}", soft_wrap=True)
    console.print(f"rows read at the council {meta.get('rows_in', '?')}, accepted {len(frame):,}, "
                  f"quarantined at the council {meta.get('quarantined', '?')} (key {meta.get('key_id')})")
    reasons = (meta.get("manifest") or {}).get("quarantine_reasons") or {}
    for reason, count in reasons.items():
        console.print(f"  {reason}: {count:,}")
    if len(frame) == 0:
        console.print(f"[bold red]no row accepted[/] from {extract}")
        return EXIT_NOTHING_ACCEPTED
    console.print(f"[green]usable:[/] {len(frame):,} pseudonymised rows")
    return EXIT_OK


@feeds_app.command("list")
def list_feeds(home: HomeOption = None) -> None:
    """Every feed with its format, version, newest extract and last ingest counts."""
    from anonymise.manifest import read_manifests

    _fresh_console()
    h = resolve_home(home)
    invalid: dict[Path, FeedDefinitionError] = {}
    feeds = load_feeds(h, invalid=invalid)
    for exc in invalid.values():
        console.print(f"[bold red]invalid feed definition:[/] {exc}", soft_wrap=True)
    if not feeds and not invalid:
        console.print(f"no feeds in {h.feeds} (add one with 'councilmatch feeds add')")
        return
    table = Table(title=f"Feeds in {h.feeds}")
    for col in ("feed", "format", "version", "newest extract", "last ingest", "rows", "accepted", "quarantined"):
        table.add_column(col, justify="right" if col in ("version", "rows", "accepted", "quarantined") else "left")
    for feed_id, feed in feeds.items():
        newest = newest_extract(h, feed)
        manifests = read_manifests(h, feed_id)
        last = manifests[-1] if manifests else None
        table.add_row(
            feed_id, feed.format, str(feed.version), newest.name if newest else "[dim]none[/]",
            (last.get("extract_file") or last.get("extract") or last.get("extract_id", "?")) if last else "[dim]never[/]",
            f"{last['rows_in']:,}" if last else "", f"{last['accepted']:,}" if last else "",
            f"{last['quarantined']:,}" if last else "",
        )
    console.print(table)
    if invalid:
        raise typer.Exit(EXIT_UNUSABLE)


@feeds_app.command("check")
def check(
    feed: Annotated[str, typer.Argument(help="'<council>/<dataset>' or a path to the feed's YAML")],
    extract: Annotated[Optional[Path], typer.Argument(help="Extract to check (default: newest in the feed's landing folder)")] = None,
    show: Annotated[int, typer.Option(help="How many problem rows to list")] = 20,
    home: HomeOption = None,
) -> None:
    """Validate the feed YAML and dry-run an extract: counts, reasons, problem rows. Writes nothing."""
    _fresh_console()
    h = resolve_home(home)
    definition = _resolve_feed(h, feed)
    console.print(f"[green]feed definition OK:[/] {definition.feed_id} version {definition.version}")
    if extract is None:
        extract = newest_extract(h, definition)
        if extract is None:
            _fail(f"no extract in {landing_dir(h, definition)} (give one as EXTRACT)")
    if definition.format == "pseudonymised":
        raise typer.Exit(run_check_at_source(h, definition, extract))
    raise typer.Exit(run_check(definition, extract, show, home=h))


@feeds_app.command("add")
def add(
    council: Annotated[str, typer.Option(help="ONS code, e.g. E09000007, or 'central'")],
    dataset: Annotated[str, typer.Option(help=f"One of: {', '.join(DATASETS)}")],
    sample: Annotated[Path, typer.Option(help="A sample extract (CSV, XLSX or Parquet)", exists=True, dir_okay=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Accept every proposal without asking")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing feed definition")] = False,
    home: HomeOption = None,
) -> None:
    """Propose a feed from a sample's header and values, confirm it, write feeds/<council>/<dataset>.yaml, check it.

    With --yes only sure proposals are taken (a usual header name whose values fit); an unsure optional
    field is left unmapped, an unsure required one stops the command before anything is written."""
    _fresh_console()
    h = resolve_home(home)
    if dataset not in DATASETS:
        _fail(f"unknown data set {dataset!r}; known: {', '.join(DATASETS)}")
    if council not in COUNCIL_NAMES:
        _fail(f"{council!r} is not a London borough ONS code (E09000001..E09000033) or {CENTRAL!r}")
    target = h.feeds / council / f"{dataset}.yaml"
    if target.exists() and not force:
        _fail(f"{target} already exists (edit it, or use --force to replace it)")
    try:
        proposal = propose_feed(council, dataset, sample)
    except ExtractError as exc:
        _fail(str(exc))
    spec = DATASETS[dataset]
    required = ("record_id", *spec.required)
    if sample.suffix.lower() not in (".xlsx", ".xlsm", ".parquet"):
        console.print(f"sample {sample.name}: encoding [bold]{proposal.encoding}[/], "
                      f"delimiter [bold]{describe_delimiter(proposal.delimiter)}[/], {len(proposal.header)} columns")
    table = Table(title=f"Proposed mapping for {council}/{dataset} (samples masked: letters x/X, digits 9)")
    for col in ("canonical field", "source column(s)", "matched by", "samples", "fit", "blank", "required"):
        table.add_column(col, justify="right" if col in ("fit", "blank") else "left")
    for fld in dict.fromkeys(["record_id", *spec.required, *spec.optional]):
        p = proposal.fields.get(fld)
        shown = ", ".join(p.columns) if p else "[dim]-[/]"
        how = "" if p is None else (p.how if p.sure else f"[yellow]{p.how}[/]")
        table.add_row(fld, shown, how, " | ".join(p.samples) if p else "",
                      "" if p is None or p.fit is None else f"{100 * p.fit:.0f}%",
                      "" if p is None else f"{100 * p.blank:.0f}%", "yes" if fld in required else "")
    console.print(table)
    if proposal.unmapped:
        console.print(f"unmapped source columns: {', '.join(proposal.unmapped)}")

    def ask_columns(question: str) -> list[str]:
        """Column names typed by the officer, checked against the sample's header (blank: none)."""
        while True:
            answer = typer.prompt(question, default="", show_default=False)
            found, unknown = resolve_typed_columns(answer, proposal.header)
            if not unknown:
                return found
            console.print(f"[red]not in the sample's header:[/] {', '.join(repr(u) for u in unknown)}; "
                          f"header: {', '.join(proposal.header)}", soft_wrap=True)

    columns = dict(proposal.columns)
    if yes:
        unsure = [f for f in proposal.to_check if f in columns]
        unsure_required = [f for f in unsure if f in required]
        if unsure_required:
            _fail("not sure of required field(s) " + "; ".join(
                f"{f} <- {', '.join(proposal.fields[f].columns)} ({proposal.fields[f].how})" for f in unsure_required)
                + f". Nothing written: run without --yes to confirm or choose the columns for {sample}.")
        for fld in unsure:
            columns.pop(fld)
            console.print(f"[yellow]left unmapped[/] {fld} (proposed {', '.join(proposal.fields[fld].columns)}, "
                          f"not sure: {proposal.fields[fld].how}); run without --yes to confirm it", soft_wrap=True)
    else:
        for fld, src in list(columns.items()):
            p = proposal.fields[fld]
            shown = ", ".join(src) if isinstance(src, list) else src
            question = f"{fld} <- {shown}?" if p.sure else f"{fld} <- {shown}? (not sure: {p.how})"
            if not typer.confirm(question, default=p.sure):
                names = ask_columns(f"source column(s) for {fld}, comma-separated (blank: leave unmapped)")
                if names:
                    columns[fld] = names[0] if len(names) == 1 else names
                else:
                    columns.pop(fld)
    missing = [f for f in required if f not in columns]
    if missing and not yes:
        for fld in missing:
            names = ask_columns(f"required field {fld}: source column(s), comma-separated")
            if names:
                columns[fld] = names[0] if len(names) == 1 else names
        missing = [f for f in required if f not in columns]
    if missing:
        _fail(f"no column in {sample} found for required field(s) {', '.join(missing)}; "
              f"header: {', '.join(proposal.header)}. "
              + ("Rename the columns or run without --yes to choose them." if yes else "Nothing written."))
    for fld, src in columns.items():  # a date column the officer typed in: guess its format from its values
        typed = fld not in proposal.fields or proposal.fields[fld].source != src
        if fld in DATE_FIELDS and isinstance(src, str) and typed:
            guessed = guess_date_format(read_sample_column(sample, proposal, council, dataset, src))
            if guessed and guessed != proposal.date_format:
                proposal.date_formats[fld] = guessed
    proposal.date_formats = {f: v for f, v in proposal.date_formats.items() if f in columns}

    fmt = "xlsx" if sample.suffix.lower() in (".xlsx", ".xlsm") else "parquet" if sample.suffix.lower() == ".parquet" else "csv"
    kwargs: dict = {}
    if proposal.true_values:
        kwargs["true_values"] = proposal.true_values
    if proposal.false_values:
        kwargs["false_values"] = proposal.false_values
    feed = FeedDefinition(
        council=council, dataset=dataset, version=1, format=fmt, encoding=proposal.encoding,
        delimiter=proposal.delimiter, date_format=proposal.date_format, date_formats=proposal.date_formats,
        columns=columns, mandatory=[f for f in ("record_id", *spec.required) if f in columns], **kwargs,
    )
    text = feed_yaml(feed, sample.name)
    try:
        parse_feed(text, target)
    except FeedDefinitionError as exc:
        _fail(str(exc))
    console.print(f"date format: {feed.date_format}" + (f"; overrides: {feed.date_formats}" if feed.date_formats else ""))
    if not yes and not typer.confirm(f"write {target}?", default=True):
        raise typer.Exit(EXIT_UNUSABLE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    console.print(f"[green]wrote[/] {target}")
    raise typer.Exit(run_check(feed, sample))


def register(app: typer.Typer) -> None:
    """Add the ``feeds`` group to the main app."""
    app.add_typer(feeds_app, name="feeds")
