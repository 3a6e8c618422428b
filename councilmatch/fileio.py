"""Every file the hub writes goes through here: atomic writes, staged commits, and YAML read into pydantic.

* :func:`atomic_write` / :func:`atomic_write_with`: a temporary file in the same folder
  (hidden, ``.<name>.<random>.tmp``), flushed, given its mode, then renamed over the final
  name, so a reader never sees half a file and two writers never share a temporary name;
* :func:`write_once`: publish a file unless one is there already, race-free (hard link);
* :func:`staged`: one feed's outputs as one commit (below);
* :func:`load_yaml_model`: a YAML file validated by a pydantic model, each error with its line.

One feed's outputs as one commit: a feed writes its vault entry, its quarantine, its pseudonymised file and its
manifest. If any of these fails (a bad name, a full disk, an exception), none of
them may stay behind: a pseudonymised file without its vault entry would raise
flags nobody can re-identify. Inside ``with staged():`` the writers
(everything that writes through :func:`atomic_write` or :func:`atomic_write_with`) leave their finished temporary file (hidden,
``.tmp``) in place and register it here; on leaving the block without error
every file is renamed over its final name in write order, and a failure during
the renames restores what was there before. An exception inside the block
deletes the temporary files, so the home is as it was.

Write order matters for a crash in the middle of the renames (a few
milliseconds): the feed step writes the vault and the quarantine before the
pseudonymised file, and the manifest (the commit marker) last, so a crash can
leave a vault entry without a pseudonymised file (harmless) but never the reverse.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

_active: ContextVar["Staging | None"] = ContextVar("councilmatch_staging", default=None)


class Staging:
    """The temporary files of one commit, in write order."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def add(self, tmp: Path, final: Path) -> None:
        self.pending.append((Path(tmp), Path(final)))

    @property
    def targets(self) -> list[Path]:
        return [final for _, final in self.pending]

    def discard(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        self.pending.clear()

    def commit(self) -> None:
        """Rename every staged file over its final name; on any failure put everything back."""
        done: list[tuple[Path, Path | None]] = []
        tag = secrets.token_hex(4)
        try:
            for tmp, final in self.pending:
                backup = None
                if final.is_file() or final.is_symlink():
                    backup = final.with_name(f".{final.name}.{tag}.bak")
                    os.replace(final, backup)
                try:
                    os.replace(tmp, final)
                except BaseException:
                    if backup is not None:
                        os.replace(backup, final)
                    raise
                done.append((final, backup))
        except BaseException:
            for final, backup in reversed(done):  # the renames that happened, undone
                if backup is not None:
                    os.replace(backup, final)
                else:
                    final.unlink(missing_ok=True)
            self.discard()
            raise
        for _, backup in done:
            if backup is not None:
                try:
                    backup.unlink(missing_ok=True)
                except OSError:  # committed already; a stale hidden backup is harmless
                    pass
        self.pending.clear()


def place(tmp: Path, final: Path) -> None:
    """Give a finished temporary file its final name: now, or at the commit of the active ``staged()``."""
    staging = _active.get()
    if staging is None:
        os.replace(tmp, final)
    else:
        staging.add(Path(tmp), Path(final))


@contextmanager
def staged() -> Iterator[Staging]:
    """Everything written inside the block appears at once at its end, or not at all."""
    staging = Staging()
    token = _active.set(staging)
    try:
        yield staging
    except BaseException:
        staging.discard()
        raise
    finally:
        _active.reset(token)
    staging.commit()


# ---------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------


def atomic_write_with(path: Path, write: Callable[[str], None], mode: int = 0o600) -> Path:
    """Let ``write(tmp_path)`` fill a temporary file beside ``path``, then give it its final name.

    The rename happens now, or at the end of the active :func:`staged` block.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        place(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write(path: Path, data: bytes | str, mode: int = 0o600) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` via a fsynced temporary file and a rename."""
    blob = data.encode("utf-8") if isinstance(data, str) else data

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write_with(path, write, mode)


def write_once(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Publish ``data`` at ``path`` unless a file is already there, race-free.

    Written to a temporary file, then hard-linked into place: of two processes creating the
    same file at once, the first link wins and both go on to read that one file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won: use its file
    finally:
        Path(tmp).unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# YAML into pydantic, every problem with its line
# ---------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class YamlProblem:
    """One thing wrong with a YAML document: where (pydantic location and 1-based line) and what."""

    loc: tuple[Any, ...]
    line: int | None
    message: str
    #: pydantic's error type, or "yaml" (not YAML at all) or "not_a_mapping"
    kind: str
    #: for "yaml": the parser's whole report (what, where, and the text around it)
    detail: str = ""


class YamlModelError(ValueError):
    """A YAML document that does not parse or does not fit its model; ``problems`` has each one."""

    def __init__(self, source: str | Path, problems: list[YamlProblem], node: yaml.Node | None = None):
        self.source = str(source)
        self.problems = problems
        #: the parsed document (None when it is not YAML), for callers that place problems themselves
        self.node = node
        super().__init__("\n".join(f"{self.source}:{p.line or '?'}: {yaml_key(p.loc)}: {p.message}" for p in problems))


def yaml_key(loc: tuple[Any, ...]) -> str:
    """``columns.forenames[0]`` for a location; ``(top level)`` for the document itself."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def yaml_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node along ``loc`` (a pydantic error location or a key path).

    Parts that name no YAML key (pydantic's union branch names such as ``str``) are skipped.
    """
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _parse(loader: type, text: str) -> tuple[yaml.Node | None, Any]:
    reader = loader(text)
    try:
        node = reader.get_single_node()
        return node, reader.construct_document(node) if node is not None else None
    finally:
        reader.dispose()


@lru_cache(maxsize=None)
def _on_libyaml(loader: type[yaml.SafeLoader]) -> type:
    """``loader`` (its resolvers and constructors) on libyaml's C parser: the same documents and
    node marks, parsed about eight times faster (a night parses every feed and match type file,
    some twice); ``loader`` itself where PyYAML was built without libyaml."""
    if not getattr(yaml, "__with_libyaml__", False):
        return loader
    from yaml.constructor import SafeConstructor
    from yaml.cyaml import CParser
    from yaml.resolver import Resolver

    def __init__(self: Any, stream: str) -> None:  # noqa: N807 - as yaml.CSafeLoader's
        CParser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    return type(f"C{loader.__name__}", (CParser, loader), {"__init__": __init__})


def parse_yaml_model(text: str, model: type[M], source: str | Path,
                     loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> tuple[M, yaml.Node]:
    """``model`` from YAML ``text`` and the document's node tree (for later checks that need lines).

    Raises :class:`YamlModelError` naming ``source``, the line and the key of every problem.
    """
    try:  # parsed once: the node tree (for lines) and the data built from it
        try:
            node, data = _parse(_on_libyaml(loader), text)
        except yaml.YAMLError:  # libyaml words some errors differently: report the documented loader's
            node, data = _parse(loader, text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = YamlProblem((), mark.line + 1 if mark else None, str(getattr(exc, "problem", None) or exc), "yaml",
                              " ".join(str(exc).split()))
        raise YamlModelError(source, [problem]) from exc
    if not isinstance(data, dict):
        raise YamlModelError(source, [YamlProblem((), 1, "expected a mapping of keys to values", "not_a_mapping")],
                             node)
    try:
        return model.model_validate(data), node
    except ValidationError as exc:
        problems = [YamlProblem(tuple(err["loc"]), yaml_line(node, tuple(err["loc"])),
                                err["msg"], err["type"]) for err in exc.errors()]
        raise YamlModelError(source, problems, node) from None


def load_yaml_model(path: Path, model: type[M], loader: type[yaml.SafeLoader] = yaml.SafeLoader,
                    text: str | None = None) -> M:
    """``model`` from a YAML file (``text``: its text, read already); an empty file is the model's defaults."""
    text = Path(path).read_text(encoding="utf-8") if text is None else text
    if not text.strip():
        return model()
    return parse_yaml_model(text, model, path, loader)[0]
