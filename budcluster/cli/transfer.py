"""``budcluster model``: hash a model directory, or copy a model with verification."""

from __future__ import annotations

from pathlib import Path

import typer

from budcluster.cli.errors import MODEL_EXIT_CODES, exits_on_error
from budcluster.transfer.console import run_transfer_command
from budcluster.transfer.manifest import build_manifest
from budcluster.transfer.progress import human_bytes

app = typer.Typer(help="Model files: sha256 manifests and verified, resumable transfers.")


@app.command()
@exits_on_error(MODEL_EXIT_CODES)
def manifest(
    directory: Path = typer.Argument(..., help="The model directory to hash."),
    workers: int = typer.Option(4, "--workers", min=1, help="Files hashed at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Print every file's path, size and sha256, and the manifest's own sha256."""
    result = build_manifest(directory, workers=workers)
    if as_json:
        typer.echo(result.to_json(), nl=False)
        return
    for entry in result.files:
        typer.echo(f"{entry.sha256}  {entry.size:>14}  {entry.path}")
    typer.echo(
        f"{len(result.files)} files, {human_bytes(result.total_bytes)}; "
        f"manifest sha256 {result.sha256()}"
    )


@app.command()
@exits_on_error(MODEL_EXIT_CODES)
def transfer(
    source_uri: str = typer.Argument(
        ..., help="A directory, file:///path, s3://bucket/prefix or hf://org/name[@revision]."
    ),
    dest_dir: Path = typer.Argument(..., help="Where the model goes (created if missing)."),
    workers: int = typer.Option(4, "--workers", min=1, help="Files copied at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON line."),
) -> None:
    """Copy a model, verify every file's sha256, write the manifest last; reruns resume.

    S3 keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the endpoint from
    BUDCLUSTER_S3_ENDPOINT_URL. A progress bar is drawn on stderr when it is a terminal.
    """
    code = run_transfer_command(source_uri, dest_dir, workers=workers, as_json=as_json)
    if code:
        raise typer.Exit(code)
