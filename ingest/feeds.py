"""Finding and loading feed definitions, and the extracts waiting for them.

``load_feed`` reads YAML with line marks so that every problem names the file,
the line and the key a data officer has to fix.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from councilmatch.contracts import DATASETS, DATE_FIELDS, MAPPABLE_FIELDS
from councilmatch.councils import CENTRAL, LONDON_BOROUGHS
from councilmatch.fileio import YamlModelError, YamlProblem, parse_yaml_model, yaml_key, yaml_line
from councilmatch.home import Home
from ingest.feed import ALLOWED_ENCODINGS, FeedDefinition

#: Extract file suffixes a feed format accepts in its landing folder.
EXTRACT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".txt", ".tsv"),
    "xlsx": (".xlsx", ".xlsm", ".xls"),
    "parquet": (".parquet",),
    "pseudonymised": (".parquet",),
}
#: Suffixes of files still being written (never picked as the newest extract).
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", ".lock")


@dataclass(frozen=True)
class Problem:
    key: str
    line: int | None
    message: str


class FeedDefinitionError(ValueError):
    """A feed YAML file is unreadable or inconsistent; the message names file, line and key."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path = path
        self.problems = problems
        lines = [f"{path}:{p.line if p.line else '?'}: {p.key}: {p.message}" for p in problems]
        super().__init__("invalid feed definition\n  " + "\n  ".join(lines))


class _FeedLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: ``YES``, ``Y``, ``ON``, ``NO`` stay text."""


_FeedLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FeedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _date_format_problem(fmt: str) -> str | None:
    if not isinstance(fmt, str) or not fmt:
        return "empty date format"
    if not re.search(r"%[dj]", fmt) or not re.search(r"%[mbB]", fmt) and "%j" not in fmt or not re.search(r"%[Yy]", fmt):
        return f"date format {fmt!r} needs a day (%d), a month (%m, %b or %B) and a year (%Y or %y)"
    probe = datetime(2001, 11, 23)
    try:
        if datetime.strptime(probe.strftime(fmt), fmt).date() != probe.date():
            return f"date format {fmt!r} does not round-trip a date"
    except ValueError as exc:
        return f"date format {fmt!r} is not valid ({exc})"
    return None


def _semantic_problems(feed: FeedDefinition, node: yaml.Node) -> list[Problem]:
    problems: list[Problem] = []

    def add(loc: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(yaml_key(loc), yaml_line(node, loc), message))

    if feed.council not in LONDON_BOROUGHS and feed.council != CENTRAL:
        add(("council",), f"{feed.council!r} is not a London borough ONS code (E09000001..E09000033) or {CENTRAL!r}")
    spec = DATASETS.get(feed.dataset)
    if spec is None:
        add(("dataset",), f"unknown data set {feed.dataset!r}; known: {', '.join(DATASETS)}")
    allowed = {"record_id"} | (set(spec.required) | set(spec.optional) if spec else set(MAPPABLE_FIELDS))
    for field, cols in feed.columns.items():
        if field not in MAPPABLE_FIELDS:
            add(("columns", field), f"{field!r} is not a canonical field; mappable: {', '.join(MAPPABLE_FIELDS)}")
        elif field not in allowed:
            add(("columns", field), f"{field!r} is not a field of data set {feed.dataset!r}; allowed: {', '.join(sorted(allowed))}")
        names = [cols] if isinstance(cols, str) else cols
        if not names or any(not str(c).strip() for c in names):
            add(("columns", field), "empty source column name")
    required = ("record_id",) + (spec.required if spec else ())
    # a council that pseudonymises at source sends tokens, not columns: nothing to map
    missing = [f for f in required if f not in feed.columns] if feed.format != "pseudonymised" else []
    if missing:
        add(("columns",), f"data set {feed.dataset!r} requires mapping {', '.join(missing)}")
    for i, field in enumerate(feed.mandatory):
        if field not in feed.columns and feed.format != "pseudonymised":
            add(("mandatory", i), f"{field!r} is mandatory but not mapped in columns")
    for i, field in enumerate(feed.quarantine_invalid):
        if field not in feed.columns and feed.format != "pseudonymised":
            add(("quarantine_invalid", i), f"{field!r} is not mapped in columns")
    if (p := _date_format_problem(feed.date_format)) is not None:
        add(("date_format",), p)
    for field, fmt in feed.date_formats.items():
        if field not in DATE_FIELDS:
            add(("date_formats", field), f"{field!r} is not a date field; date fields: {', '.join(DATE_FIELDS)}")
        elif (p := _date_format_problem(fmt)) is not None:
            add(("date_formats", field), p)
    try:
        codec = codecs.lookup(feed.encoding).name
    except LookupError:
        codec = None
    if codec not in ALLOWED_ENCODINGS.values():
        add(("encoding",), f"unknown encoding {feed.encoding!r}; use one of {', '.join(ALLOWED_ENCODINGS)}")
    if len(feed.delimiter) != 1:
        add(("delimiter",), f"delimiter must be one character, got {feed.delimiter!r}")
    overlap = {v.upper() for v in feed.true_values} & {v.upper() for v in feed.false_values}
    if overlap:
        add(("false_values",), f"values in both true_values and false_values: {', '.join(sorted(overlap))}")
    return problems


def _problem(p: YamlProblem, node: yaml.Node | None) -> Problem:
    """A shared YAML problem in the words a data officer reads."""
    if p.kind == "yaml":
        hint = ' (put date formats in quotes: date_format: "%d/%m/%Y")' if "'%'" in p.detail else ""
        return Problem("(yaml)", p.line, p.detail + hint)
    if p.kind == "not_a_mapping":
        return Problem("(top level)", 1, "expected a mapping of keys (council, dataset, columns, ...)")
    # drop pydantic's union branch names so the key reads like the YAML
    key_loc = tuple(part for part in p.loc if not (isinstance(part, str) and ("[" in part or part in ("str", "int"))))
    return Problem(yaml_key(key_loc), yaml_line(node, key_loc), "unknown key" if p.kind == "extra_forbidden" else p.message)


def parse_feed(text: str, path: Path) -> FeedDefinition:
    """Validate feed YAML text (``path`` only names it in errors)."""
    try:
        feed, node = parse_yaml_model(text, FeedDefinition, path, loader=_FeedLoader)
    except YamlModelError as exc:
        raise FeedDefinitionError(path, [_problem(p, exc.node) for p in exc.problems]) from None
    problems = _semantic_problems(feed, node)
    if problems:
        raise FeedDefinitionError(path, problems)
    return feed


def load_feed(path: Path) -> FeedDefinition:
    """Read and validate one feed YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedDefinitionError(path, [Problem("(file)", None, f"cannot read: {exc}")]) from exc
    return parse_feed(text, path)


def feed_path(home: Home, feed_id: str) -> Path:
    council, _, dataset = feed_id.partition("/")
    return Home.resolve(home.root if isinstance(home, Home) else home).feeds / council / f"{dataset}.yaml"


def load_feeds(home: Home, *, invalid: dict[Path, FeedDefinitionError] | None = None) -> dict[str, FeedDefinition]:
    """Every feed under ``feeds/<council>/<dataset>.yaml``, keyed by feed id.

    A bad file raises, unless ``invalid`` is given: then bad files are collected
    there and the good feeds still load (one broken feed must not stop the others).
    """
    home = home if isinstance(home, Home) else Home.resolve(home)
    feeds: dict[str, FeedDefinition] = {}
    if not home.feeds.is_dir():
        return feeds
    for path in sorted(home.feeds.glob("*/*.yaml")) + sorted(home.feeds.glob("*/*.yml")):
        try:
            feed = load_feed(path)
            if (feed.council, feed.dataset) != (path.parent.name, path.stem):
                key = "council" if feed.council != path.parent.name else "dataset"
                line = yaml_line(yaml.compose(path.read_text(encoding="utf-8"), Loader=_FeedLoader), (key,))
                raise FeedDefinitionError(path, [Problem(
                    key, line, f"file must be feeds/{feed.council}/{feed.dataset}.yaml to match its council and dataset")])
        except FeedDefinitionError as exc:
            if invalid is None:
                raise
            invalid[path] = exc
            continue
        feeds[feed.feed_id] = feed
    return feeds


def landing_dir(home: Home, feed: FeedDefinition) -> Path:
    home = home if isinstance(home, Home) else Home.resolve(home)
    return home.landing / feed.council / feed.dataset


def _is_candidate(path: Path, feed: FeedDefinition) -> bool:
    name = path.name.lower()
    return (
        path.is_file()
        and not name.startswith((".", "~$", "_"))
        and not name.endswith(PARTIAL_SUFFIXES)
        and name.endswith(EXTRACT_SUFFIXES[feed.format])
    )


def list_extracts(home: Home, feed: FeedDefinition) -> list[Path]:
    """Extracts in the feed's landing folder, oldest first: by name (extracts carry their date),
    then modification time (same name in another case or with another suffix)."""
    folder = landing_dir(home, feed)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _is_candidate(p, feed)]
    return sorted(found, key=lambda p: (p.stem.casefold(), p.stat().st_mtime, p.name))


def newest_extract(home: Home, feed: FeedDefinition) -> Path | None:
    """The newest extract (highest name, then latest mtime); hidden and partial files are ignored."""
    found = list_extracts(home, feed)
    return found[-1] if found else None
