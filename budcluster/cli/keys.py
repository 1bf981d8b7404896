"""`budcluster keys`: create and rotate the project's encryption keys."""

from __future__ import annotations

from pathlib import Path

import typer

from budcluster.cli.errors import exits_on_error
from budcluster.crypto import Keyring, init_keys, rotate_active_key
from budcluster.crypto.keyring import require_bindings, retire_previous_keys
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
@exits_on_error()
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
    keyring = init_keys(target, force=force)
    typer.echo(f"created keys in {target} (active key id {keyring.active_key_id})")


@app.command("status")
@exits_on_error()
def status_command(directory: Path | None = DirOption) -> None:
    """Show the active key id, previous keys still kept, and the Prefect APIs that hold
    credentials sealed with these keys."""
    from budcluster.crypto.workspaces import read_ledger

    keyring = Keyring.load(_dir(directory))
    ledger = read_ledger(keyring.directory)
    typer.echo(f"active key: {keyring.active_key_id}")
    for kid in sorted(keyring.previous):
        typer.echo(f"previous key: {kid} (kept until no credential needs it)")
    for workspace, kids in sorted(ledger.items()):
        typer.echo(f"workspace {workspace}: credentials under {', '.join(sorted(kids))}")


TrustUnboundOption = typer.Option(
    False,
    "--trust-unbound",
    help=(
        "Also bind blocks that have no binding, taking their fields as they are now. Check "
        "those fields first: a block edited through the Prefect API loses its binding."
    ),
)


@app.command("rotate")
@exits_on_error()
def rotate_command(
    directory: Path | None = DirOption, trust_unbound: bool = TrustUnboundOption
) -> None:
    """Re-seal every stored credential under a new RSA key and fresh data keys.

    Safe to interrupt: the old key stays in crypto-keys/previous/ until every
    credential has been re-sealed and verified; rerun `keys reseal` to finish. A previous
    key is kept while any block on this Prefect API names it, or while another Prefect API
    these keys sealed blocks for has not been re-sealed (`keys reseal` there).
    """
    target = _dir(directory)
    old_id, new_id = rotate_active_key(target)
    typer.echo(f"new active key {new_id} (previous {old_id} kept until re-sealing ends)")
    _reseal_and_retire(target, trust_unbound)


@app.command("reseal")
@exits_on_error()
def reseal_command(
    directory: Path | None = DirOption, trust_unbound: bool = TrustUnboundOption
) -> None:
    """Re-seal this Prefect API's credentials under the active key, without a new key.

    For each other Prefect API (PREFECT_API_URL) that holds credentials sealed with these
    keys, after `keys rotate` on one of them; also finishes an interrupted rotation.
    """
    _reseal_and_retire(_dir(directory), trust_unbound)


@app.command("forget-workspace")
@exits_on_error()
def forget_workspace_command(
    api_url: str = typer.Argument(..., help="The Prefect API URL as `keys rotate` printed it."),
    directory: Path | None = DirOption,
) -> None:
    """Stop keeping keys for a Prefect API that is gone (its credentials are lost with it)."""
    from budcluster.crypto.workspaces import forget_workspace

    known = forget_workspace(_dir(directory), api_url.rstrip("/"))
    typer.echo(f"forgot {api_url}" if known else f"{api_url} was not recorded; nothing to do")


def _reseal_and_retire(target: Path, trust_unbound: bool) -> None:
    from blocks.registry import key_ids_referenced, reseal_all, verify_all
    from blocks.workspace import current_workspace
    from budcluster.crypto.workspaces import replace_use, users_of

    keyring = Keyring.load(target)
    # Keys that bound every block they sealed never meet a genuine unbound block:
    # one without a binding was stripped, and binding it would launder the edit.
    report = reseal_all(keyring, accept_unbound=trust_unbound or not keyring.bindings_required)
    for label in report.resealed:
        typer.echo(f"re-sealed {label}")
    for label in report.bound:
        typer.echo(
            f"bound {label}: it had no binding, so its fields were taken as they are; "
            f"check them (`prefect block inspect {label}`)"
        )
    # Verify before anything is deleted: every secret must open with the active key.
    problems = {**verify_all(keyring), **report.failed}
    referenced = key_ids_referenced()
    workspace = current_workspace()
    replace_use(target, workspace, set(referenced))
    if problems:
        for label, reason in sorted(problems.items()):
            typer.echo(f"error: {label}: {reason}", err=True)
        typer.echo(
            f"error: no key retired: {len(problems)} credential(s) above are not re-sealed; "
            "fix or add them again, then run `budcluster keys reseal`.",
            err=True,
        )
        raise typer.Exit(1)
    if not keyring.bindings_required:
        require_bindings(target)
    kept = users_of(target, set(keyring.previous))
    retired = retire_previous_keys(target, still_needed=set(kept))
    for kid, workspaces in kept.items():
        here = ", ".join(referenced.get(kid, []))
        others = [w for w in workspaces if w != workspace]
        if here:
            typer.echo(
                f"kept previous key {kid}: still used here by {here} (types `keys rotate` "
                "does not re-seal; re-seal or remove them, then run `budcluster keys reseal`)"
            )
        if others:
            typer.echo(
                f"kept previous key {kid}: credentials sealed with it may be on "
                f"{', '.join(others)}; run `budcluster keys reseal` with PREFECT_API_URL set to "
                "each (or `budcluster keys forget-workspace URL` for one that is gone)"
            )
    typer.echo(
        f"re-sealing complete on {workspace}: {len(report.resealed)} re-sealed, "
        f"{len(report.bound)} bound, {len(report.already_current)} already current, "
        f"retired keys: {', '.join(retired) or 'none'}"
    )
