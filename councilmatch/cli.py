"""The ``councilmatch`` command line: each stage package registers its own commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="councilmatch",
    help="Cross-council fraud data matching on keyed pseudonyms.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Cross-council fraud data matching on keyed pseudonyms."""


def _register() -> None:
    # One module per stage; each defines register(app).
    from synthetic import cli as synthetic_cli
    from ingest import cli as ingest_cli
    from anonymise import cli as anonymise_cli
    from matching import cli as matching_cli
    from evaluation import cli as evaluation_cli
    from review import cli as review_cli
    from councilmatch import demo, retention, run_cli

    for module in (synthetic_cli, ingest_cli, anonymise_cli, matching_cli, evaluation_cli, review_cli, run_cli,
                   retention, demo):
        module.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
