"""The direction of dependencies (docs/architecture.md, "Layers"), checked on every run.

The contracts live once, in ``pyproject.toml`` (``[tool.importlinter]``); these tests run
``lint-imports`` on the code as it is, and on a copy with a planted leak to prove the
contracts bite. Two rules import-linter cannot express are checked here by reading the code:
no ``try: import <our own module> except ...`` fallbacks, and DAG files that import only
Airflow, the orchestration layer and the foundation.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("councilmatch", "ingest", "anonymise", "matching", "review", "evaluation", "synthetic",
            "orchestrate", "privacy_attacks")
PRODUCTION = ("councilmatch", "ingest", "anonymise", "matching", "review", "orchestrate", "dags", "plugins")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_import_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_contracts_catch_a_leak(tmp_path: Path) -> None:
    """A stage that imports the generator, a stage that imports the layer above it, and the foundation
    importing a stage: each breaks a contract, and the report names the module."""
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "ingest" / "leak.py").write_text("from synthetic.flags import make_flags\n")
    (tmp_path / "anonymise" / "upward.py").write_text("def f():\n    from matching import run\n")
    (tmp_path / "councilmatch" / "tangle.py").write_text("import review.store\n")
    (tmp_path / "matching" / "airflow_kek.py").write_text("from airflow.sdk import BaseHook\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    for module in ("ingest.leak", "anonymise.upward", "councilmatch.tangle", "matching.airflow_kek"):
        assert module in result.stdout, (module, result.stdout)


def _py_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py")) if "__pycache__" not in p.parts]


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def test_no_import_fallbacks_for_our_own_modules() -> None:
    """``try: import ingest.x except ...: <fallback>`` hides a broken layer behind a silent default."""
    offenders = []
    for path in _py_files(*PRODUCTION, "evaluation", "synthetic"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Try):
                continue
            for stmt in node.body:
                for sub in ast.walk(stmt):
                    if any(name.split(".")[0] in PACKAGES for name in _imported(sub)):
                        offenders.append(f"{path.relative_to(ROOT)}:{sub.lineno}")
    assert offenders == []


def test_the_fallback_check_finds_one(tmp_path: Path) -> None:
    source = "try:\n    from matching.matchtype import load_matchtypes\nexcept Exception:\n    pass\n"
    found = [sub for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Try)
             for stmt in node.body for sub in ast.walk(stmt) if _imported(sub)]
    assert len(found) == 1


ALLOWED_IN_DAGS = {"airflow", "pendulum", "orchestrate", "councilmatch", "__future__"}


@pytest.mark.parametrize("path", _py_files("dags", "plugins"), ids=lambda p: p.name)
def test_dags_and_plugins_stay_thin(path: Path) -> None:
    """A DAG file is wiring: Airflow, the orchestration layer and the foundation, nothing else of ours."""
    ours = {name.split(".")[0] for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            for name in _imported(node)} - set(sys.stdlib_module_names)
    assert ours <= ALLOWED_IN_DAGS, ours - ALLOWED_IN_DAGS
