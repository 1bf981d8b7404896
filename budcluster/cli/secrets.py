"""`budcluster secrets`: the per-process directories that hold secrets a tool needs as files."""

from __future__ import annotations

import typer

from budcluster.secretfiles import UnsafeSecretsDir, secrets_root, sweep_stale_secret_dirs

app = typer.Typer(
    help=(
        "Secrets that a tool only takes from a path (an SSH key, Ansible's extra vars, a "
        "client key) live in a private directory per process, removed when it ends."
    ),
    no_args_is_help=True,
)


@app.command("sweep")
def sweep_command() -> None:
    """Remove what processes killed before they could clean up (kill -9, OOM) left behind.

    Every flow run does this when it first needs such a file; run it after a crash when
    no run will follow soon. Directories of live processes are left alone.
    """
    root = secrets_root()
    try:
        removed = sweep_stale_secret_dirs(root)
    except UnsafeSecretsDir as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"removed {len(removed)} stale director{'y' if len(removed) == 1 else 'ies'} from {root}"
    )
