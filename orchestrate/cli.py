"""The ``councilmatch`` command line: one module per command group in ``orchestrate.commands``.

The stages are libraries; their commands live here, on top of them, so no stage imports
another stage's command line (or the generator) to offer a command.
"""

from __future__ import annotations

import typer

from orchestrate import demo, isolated_airflow, retention
from orchestrate.commands import evaluate, feeds, generate, keys, linking, review, run

app = typer.Typer(
    name="councilmatch",
    help="Cross-council fraud data matching on keyed pseudonyms.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Cross-council fraud data matching on keyed pseudonyms."""
    isolated_airflow.use_airflow_kek()


def _register() -> None:
    for module in (generate, feeds, keys, linking, evaluate, review, run, retention, demo):
        module.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
