"""The foundation's file I/O (councilmatch.fileio): the one atomic write, write-once and YAML loader."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from councilmatch.fileio import YamlModelError, atomic_write, atomic_write_with, load_yaml_model, staged, write_once
from councilmatch.home import Home
from councilmatch.settings import load_settings


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    atomic_write(target, "old")

    def half_then_crash(tmp: str) -> None:
        Path(tmp).write_text("half a fi")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write_with(target, half_then_crash)
    assert target.read_text() == "old" and _hidden(tmp_path) == []
    atomic_write(target, "new", mode=0o640)
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_inside_staged_nothing_appears_until_the_end(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with staged():
            atomic_write(tmp_path / "a", b"a")
            assert not (tmp_path / "a").exists()
            raise RuntimeError("the feed failed")
    assert list(tmp_path.iterdir()) == []


def _race(path: str, payload: bytes, barrier, out) -> None:
    barrier.wait()
    write_once(Path(path), payload)
    out.put(Path(path).read_bytes())


def test_write_once_two_processes_agree_on_one_file(tmp_path: Path) -> None:
    """Two processes creating the same key at once: the first wins, both read the winner's bytes."""
    ctx = multiprocessing.get_context("fork")
    target = tmp_path / "keys" / "datakey.enc"
    for _ in range(5):
        target.unlink(missing_ok=True)
        barrier, out = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(target), bytes([i]) * 64, barrier, out)) for i in (1, 2)]
        for p in procs:
            p.start()
        seen = {out.get(timeout=30) for _ in procs}
        for p in procs:
            p.join(30)
        assert len(seen) == 1 and seen == {target.read_bytes()}
        assert stat.S_IMODE(target.stat().st_mode) == 0o600 and _hidden(target.parent) == []
    write_once(target, b"attacker's key")  # an existing file is never replaced
    assert target.read_bytes() in (bytes([1]) * 64, bytes([2]) * 64)


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(ge=1)


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    items: list[Inner] = []


def test_yaml_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: a\nitems:\n  - days: 3\n  - days: 0\n    colour: red\n")
    with pytest.raises(YamlModelError) as err:
        load_yaml_model(path, Outer)
    text = str(err.value)
    assert f"{path}:4: items[1].days: Input should be greater than or equal to 1" in text
    assert f"{path}:5: items[1].colour: Extra inputs are not permitted" in text
    path.write_text("name: [unclosed\n")
    with pytest.raises(YamlModelError, match=rf"{path}:\d+: \(top level\): ") as err:
        load_yaml_model(path, Outer)
    assert err.value.problems[0].kind == "yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(YamlModelError, match="expected a mapping"):
        load_yaml_model(path, Outer)


def test_settings_yaml_errors_name_the_line(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.settings_file.write_text("raw_extracts: archive\nretention:\n  vault_days: soon\n")
    with pytest.raises(ValueError, match=r"settings.yaml:3: retention.vault_days"):
        load_settings(home)
    home.settings_file.write_text("retention:\n  quarantine_days: -5\n")
    with pytest.raises(ValueError, match=r"settings.yaml:2: retention.quarantine_days"):
        load_settings(home)
    home.settings_file.write_text("")
    assert load_settings(home).raw_extracts == "archive"


def test_settings_are_parsed_again_only_when_the_file_changed(tmp_path: Path, monkeypatch) -> None:
    """Every encrypted read asks the settings (is this home production?): the file is read each
    time, parsed only when its text changed, and every caller gets its own copy."""
    import councilmatch.settings as settings_module

    home = Home.resolve(tmp_path / "home")
    home.root.mkdir(parents=True)
    assert load_settings(home).raw_extracts == "archive"  # no file: the defaults
    home.settings_file.write_text("raw_extracts: delete\n")
    parsed = []
    real = settings_module.load_yaml_model
    monkeypatch.setattr(settings_module, "load_yaml_model", lambda *a, **k: parsed.append(1) or real(*a, **k))
    first = load_settings(home)
    first.raw_extracts = "keep"  # a caller's own copy
    assert load_settings(home).raw_extracts == "delete" and len(parsed) == 1
    home.settings_file.write_text("raw_extracts: keep\n")  # same size, same instant: the text decides
    assert load_settings(home).raw_extracts == "keep" and len(parsed) == 2
    home.settings_file.write_text("raw_extracts: [\n")
    with pytest.raises(ValueError, match="settings.yaml"):
        load_settings(home)
    home.settings_file.unlink()
    assert load_settings(home).raw_extracts == "archive"


def _tree(node: object) -> object:
    """A YAML node tree as plain data, with each node's tag and line (what error messages use)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        return (node.tag, node.start_mark.line, [(_tree(k), _tree(v)) for k, v in node.value])
    if isinstance(node, yaml.SequenceNode):
        return (node.tag, node.start_mark.line, [_tree(v) for v in node.value])
    return (node.tag, node.start_mark.line, node.value)


def test_yaml_is_parsed_by_libyaml_with_the_loaders_own_rules() -> None:
    """Feeds and match types are parsed on libyaml's C parser (eight times faster than PyYAML's
    Python one), keeping the loader's resolvers: the feed loader's YAML 1.2 booleans, every line."""
    import yaml
    from yaml.cyaml import CParser

    from councilmatch import fileio
    from ingest.feeds import _FeedLoader

    pytest.importorskip("yaml._yaml")
    texts = [p.read_text() for p in sorted(Path("matching/matchtypes").glob("*.yaml"))]
    texts.append("council: A\nflags: [YES, yes, 'no', true, On]\nwhen: 2026-01-02\nref: &r {x: 1}\n"
                 "again: *r\nnote: |\n  two\n  lines\nnumber: 012\nempty:\n")
    for loader in (yaml.SafeLoader, _FeedLoader):
        fast = fileio._on_libyaml(loader)
        assert issubclass(fast, CParser) and issubclass(fast, loader)
        for text in texts:
            slow_node, slow_data = fileio._parse(loader, text)
            fast_node, fast_data = fileio._parse(fast, text)
            assert fast_data == slow_data and _tree(fast_node) == _tree(slow_node)
    _, data = fileio._parse(fileio._on_libyaml(_FeedLoader), texts[-1])
    assert data["flags"] == ["YES", "yes", "no", True, "On"]  # YAML 1.2: only true/false are booleans


def test_a_yaml_error_is_worded_as_pyyaml_words_it(tmp_path: Path) -> None:
    """libyaml words some errors its own way; the message stays the documented loader's."""
    path = tmp_path / "x.yaml"
    path.write_text("name: a\nitems: b: c\n")
    with pytest.raises(YamlModelError) as err:
        load_yaml_model(path, Outer)
    assert err.value.problems[0].message == "mapping values are not allowed here"
    assert err.value.problems[0].line == 2
