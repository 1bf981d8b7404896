"""`budcluster blocks`: register the project's Prefect block types."""

from __future__ import annotations

import typer

from budcluster.cli.errors import exits_on_error

app = typer.Typer(help="Prefect block types of this project.", no_args_is_help=True)


@app.command("register")
@exits_on_error()
def register_command() -> None:
    """Register (or update) the credential block types on the configured Prefect API."""
    from blocks.registry import register_block_types

    for slug in register_block_types():
        typer.echo(f"registered {slug}")
