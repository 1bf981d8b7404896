"""`budcluster keys`: create and rotate the project's encryption keys."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
import yaml

from budcluster.cli.errors import UsageError, exits_on_error
from budcluster.crypto import Keyring, init_keys, rotate_active_key
from budcluster.crypto.keyring import require_bindings, retire_previous_keys
from budcluster.crypto.secret_manifest import DEFAULT_KEYS_SECRET, keys_secret_manifest
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


@app.command("k8s-secret")
@exits_on_error()
def k8s_secret_command(
    namespace: str = typer.Option(
        ..., "--namespace", "-n", help="Namespace the Kubernetes worker's flow-run pods run in."
    ),
    name: str = typer.Option(
        DEFAULT_KEYS_SECRET, "--name", help="The Secret's name: the pool's crypto_keys_secret."
    ),
    directory: Path | None = DirOption,
    output: str | None = typer.Option(
        None, "--output", "-o", help="Print the manifest on stdout as yaml or json."
    ),
    output_file: Path | None = typer.Option(
        None, "--file", help="Write the manifest to this file (created mode 0600)."
    ),
    apply: bool = typer.Option(
        False, "--apply", help="Create or replace the Secret on the cluster of --kubeconfig."
    ),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="Default: $KUBECONFIG, else ~/.kube/config."
    ),
    context: str | None = typer.Option(None, "--context", help="Default: its current-context."),
) -> None:
    """The keys as a Kubernetes Secret for the Kubernetes work pool's flow-run pods.

    The pool's job template mounts it read-only (mode 0400) at the path BUDCLUSTER_KEYS_DIR
    names there. The private key leaves this machine only in the Secret: on stdout with
    -o, in a 0600 file with --file, or straight to the API server with --apply; nothing
    else prints it. Rerun after `keys rotate` and after `keys reseal` retires a key.
    """
    chosen = [
        flag for flag, on in (("-o", output), ("--file", output_file), ("--apply", apply)) if on
    ]
    if len(chosen) != 1:
        raise UsageError(
            "choose exactly one of -o yaml|json (stdout), --file PATH (mode 0600) or --apply "
            f"(to the cluster); got {', '.join(chosen) or 'none'}"
        )
    if output not in (None, "yaml", "json"):
        raise UsageError(f"-o/--output: {output!r} is not yaml or json")
    manifest = keys_secret_manifest(_dir(directory), name=name, namespace=namespace)
    summary = (
        f"Secret {namespace}/{name}: {', '.join(manifest['data'])} "
        f"(active key {manifest['metadata']['annotations']['budcluster.io/active-key-id']})"
    )
    if output:
        if sys.stdout.isatty():
            typer.echo(
                "warning: printing a private key to a terminal; redirect it to a file or "
                "pipe it to `kubectl apply -f -`",
                err=True,
            )
        typer.echo(_dump(manifest, output), nl=False)
    elif output_file is not None:
        from budcluster.crypto.files import write_private_file

        write_private_file(output_file, _dump(manifest, "yaml").encode())
        typer.echo(f"wrote {summary} to {output_file} (mode 0600)")
    else:
        replaced = _apply_secret(manifest, kubeconfig, context)
        typer.echo(f"{'replaced' if replaced else 'created'} {summary}")


def _dump(manifest: dict[str, Any], output: str) -> str:
    if output == "json":
        import json

        return json.dumps(manifest, indent=2) + "\n"
    return yaml.safe_dump(manifest, sort_keys=False)


def _apply_secret(manifest: dict[str, Any], kubeconfig: Path | None, context: str | None) -> bool:
    """Create the Secret, or replace it whole (a retired key must leave it, which a merge
    patch would not do). Returns whether it existed."""
    from budcluster.adapters import kubernetes as kube
    from budcluster.errors import ConfigurationError
    from budcluster.kubeconfig import parse_kubeconfig

    path = kubeconfig or Path(
        os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config"
    )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"--kubeconfig: cannot read {path}: {exc.strerror}; pass --kubeconfig PATH"
        ) from exc
    # Checked like every kubeconfig: nothing in it may run a program or read a file here.
    config, chosen = parse_kubeconfig(text, context=context, source=str(path))
    timeout_s = get_settings().http_timeout_s
    api = kube.api_client_from_kubeconfig(config, chosen, timeout_s=timeout_s)
    meta = manifest["metadata"]
    try:
        ref = kube.ObjectRef("Secret", meta["name"], meta["namespace"])
        existing = kube.get_object(api, ref, timeout_s=timeout_s)
        if existing is None:
            kube.apply_objects(api, [manifest], meta["name"], timeout_s=timeout_s)
            return False
        body = kube.with_release_label(manifest, meta["name"])
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        kube.request_json(
            api,
            "PUT",
            f"/api/v1/namespaces/{meta['namespace']}/secrets/{meta['name']}",
            what=f"replace Secret/{meta['name']}",
            body=body,
            query=[("fieldManager", kube.FIELD_MANAGER)],
            timeout_s=timeout_s,
        )
        return True
    finally:
        api.close()  # type: ignore[no-untyped-call]


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
