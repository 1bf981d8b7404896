"""`budcluster secrets`: the per-process directories that hold secrets a tool needs as files."""

from __future__ import annotations

import typer

from budcluster.cli.errors import exits_on_error
from budcluster.secretfiles import secrets_root, sweep_stale_secret_dirs

app = typer.Typer(
    help=(
        "Secrets that a tool only takes from a path (an SSH key, Ansible's extra vars, a "
        "client key) live in a private directory per process, removed when it ends."
    ),
    no_args_is_help=True,
)


@app.command("sweep")
@exits_on_error()
def sweep_command() -> None:
    """Remove what processes killed before they could clean up (kill -9, OOM) left behind.

    Every flow run does this when it first needs such a file; run it after a crash when
    no run will follow soon. Directories of live processes are left alone.
    """
    root = secrets_root()
    removed = sweep_stale_secret_dirs(root)
    typer.echo(
        f"removed {len(removed)} stale director{'y' if len(removed) == 1 else 'ies'} from {root}"
    )
