"""`budcluster keys`: create and rotate the project's encryption keys."""

from __future__ import annotations

from pathlib import Path

import typer

from budcluster.crypto import CryptoError, Keyring, init_keys, rotate_active_key
from budcluster.crypto.keyring import retire_previous_keys
from budcluster.settings import get_settings

app = typer.Typer(
    help=(
        "Create and rotate the keys that seal credentials. Keys live in crypto-keys/ "
        "(BUDCLUSTER_KEYS_DIR); back them up: without them stored credentials are lost."
    ),
    no_args_is_help=True,
)

DirOption = typer.Option(
    None, "--dir", help="Key directory. Default: BUDCLUSTER_KEYS_DIR, else ./crypto-keys."
)


def _dir(directory: Path | None) -> Path:
    return directory or get_settings().keys_dir


@app.command("init")
def init_command(
    directory: Path | None = DirOption,
    force: bool = typer.Option(
        False, "--force", help="Overwrite existing keys (credentials sealed with them are lost)."
    ),
) -> None:
    """Create an RSA-4096 private key and a 256-bit symmetric key, both mode 0600.

    The RSA key wraps each credential's AES-256-GCM data key; the symmetric key
    keys the HMAC fingerprints that `credentials list` shows. Refuses to overwrite
    existing keys unless --force is given.
    """
    target = _dir(directory)
    try:
        keyring = init_keys(target, force=force)
    except CryptoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created keys in {target} (active key id {keyring.active_key_id})")


@app.command("status")
def status_command(directory: Path | None = DirOption) -> None:
    """Show the active key id and any previous keys still kept for rotation."""
    try:
        keyring = Keyring.load(_dir(directory))
    except CryptoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"active key: {keyring.active_key_id}")
    for kid in sorted(keyring.previous):
        typer.echo(f"previous key: {kid} (kept until no credential needs it)")


@app.command("rotate")
def rotate_command(directory: Path | None = DirOption) -> None:
    """Re-seal every stored credential under a new RSA key and fresh data keys.

    Safe to interrupt: the old key stays in crypto-keys/previous/ until every
    credential has been re-sealed and verified; rerun the command to finish.
    """
    from blocks.registry import key_ids_in_use, list_credentials, reseal_all

    target = _dir(directory)
    try:
        old_id, new_id = rotate_active_key(target)
        typer.echo(f"new active key {new_id} (previous {old_id} kept until re-sealing ends)")
        keyring = Keyring.load(target)
        report = reseal_all(keyring)
        for label in report.resealed:
            typer.echo(f"re-sealed {label}")
        # Verify before anything is deleted: every secret must open with the active key.
        for credential in list_credentials():
            for name in credential.block._sealed_fields:
                credential.block._open(name, keyring)
        retired = retire_previous_keys(target, still_needed=key_ids_in_use() - {new_id})
    except CryptoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"rotation complete: {len(report.resealed)} re-sealed, "
        f"{len(report.already_current)} already current, retired keys: "
        f"{', '.join(retired) or 'none'}"
    )
