"""``check``: validate a catalogue file without running a flow.

Run as ``python -m budcluster.catalogue check [PATH]``. Exit 0 when the file is valid,
2 with the problems on stderr (one line each, naming the entry and the field) when not.
"""

from __future__ import annotations

from pathlib import Path

import typer

from budcluster.catalogue.schema import load_catalogue
from budcluster.errors import ConfigurationError

EXIT_INVALID = 2

app = typer.Typer(
    help="The model catalogue (deployments.yaml).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main() -> None:
    """Keeps ``check`` a subcommand (typer runs a lone command as the whole program)."""


@app.command()
def check(
    path: Path = typer.Argument(Path("deployments.yaml"), help="The catalogue file."),
) -> None:
    """Validate PATH: every problem is printed, naming the entry and the field."""
    try:
        catalogue = load_catalogue(path)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    count = len(catalogue.deployments)
    typer.echo(f"{path}: {count} entr{'y' if count == 1 else 'ies'}, valid")
