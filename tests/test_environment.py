"""The one settings object for environment variables (councilmatch.environment)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from councilmatch.environment import Environment, environment, markdown_table, variable

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ("councilmatch", "ingest", "anonymise", "matching", "review", "orchestrate", "evaluation",
              "synthetic", "dags", "plugins")


def test_the_operations_doc_table_is_the_model() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- environment table: generated, do not edit by hand -->\n(.*?)<!-- end environment table -->",
                      doc, re.S)
    assert found, "docs/operations.md lost its environment table"
    assert found.group(1) == markdown_table()
    for name in Environment.model_fields:
        assert f"`{variable(name)}`" in found.group(1)


def test_every_councilmatch_variable_the_code_names_is_a_field() -> None:
    """A new COUNCILMATCH_* variable read anywhere must be added to the model (and so to the doc)."""
    known = {variable(name) for name in Environment.model_fields}
    named = set()
    for folder in PRODUCTION:
        for path in (ROOT / folder).rglob("*.py"):
            named |= set(re.findall(r"\bCOUNCILMATCH_[A-Z_]+\b", path.read_text(encoding="utf-8")))
    assert named - known == set()


def test_no_module_reads_councilmatch_variables_itself() -> None:
    offenders = []
    for folder in PRODUCTION:
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "environment.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"(environ\.get\(|getenv\(|environ\[)\s*[\"']COUNCILMATCH_", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert offenders == []


def test_values_are_parsed_and_checked(monkeypatch) -> None:
    monkeypatch.setenv("COUNCILMATCH_HOME", "")
    monkeypatch.setenv("COUNCILMATCH_PRODUCTION", "Yes")
    monkeypatch.setenv("COUNCILMATCH_DEV_KEK", "maybe")
    monkeypatch.setenv("COUNCILMATCH_TASK_RETRIES", "5")
    env = environment()
    assert env.home is None and env.production is True and env.dev_kek is False and env.task_retries == 5
    monkeypatch.setenv("COUNCILMATCH_TASK_RETRIES", "-1")
    with pytest.raises(ValidationError, match="task_retries"):
        environment()


def test_secrets_never_print(monkeypatch) -> None:
    monkeypatch.setenv("COUNCILMATCH_KEK", "c2VjcmV0LWtlay12YWx1ZS0xMjM0NTY3ODkwMTIzNA==")
    monkeypatch.setenv("COUNCILMATCH_REVIEW_SECRET", "a-very-private-session-secret")
    env = environment()
    for shown in (str(env), repr(env), env.model_dump_json()):
        assert "c2VjcmV0" not in shown and "very-private" not in shown
    assert env.kek.get_secret_value().startswith("c2VjcmV0")


def test_the_generator_prints_the_table() -> None:
    out = subprocess.run([sys.executable, "-m", "councilmatch.environment"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out == markdown_table()
