"""`budcluster credentials`: seal credentials on this machine and save them as blocks.

Secrets are read from files, the environment or a hidden prompt, never from argv
(argv is visible to every user in `ps`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from budcluster.cli.errors import CREDENTIALS_EXIT_CODES, UsageError, exits_on_error
from budcluster.errors import ConfigurationError

if TYPE_CHECKING:
    from blocks._sealed import SealedCredentialsBlock

app = typer.Typer(
    help="Add and list encrypted credential blocks (kubeconfigs, host inventories, S3, AWS, Azure).",
    no_args_is_help=True,
)

OverwriteOption = typer.Option(False, "--overwrite", help="Replace a block of the same name.")


def _save(block: SealedCredentialsBlock, name: str, overwrite: bool) -> None:
    try:
        block.save(name, overwrite=overwrite)
    except ValueError as exc:
        if "already" in str(exc).lower():
            raise ConfigurationError(
                f"a {type(block).__name__} block named '{name}' already exists; "
                "pass --overwrite to replace it."
            ) from None
        raise
    fingerprints = ", ".join(f"{k}={v}" for k, v in block.fingerprints.items())
    typer.echo(f"saved {block.get_block_type_slug()}/{name} ({fingerprints or 'no secrets'})")


def _secret(env_var: str, label: str) -> str:
    """A secret from the environment, else a hidden prompt; never from argv."""
    value = os.environ.get(env_var)
    if value:
        return value
    if not sys.stdin.isatty():
        raise UsageError(f"set {env_var} (or run in a terminal to be prompted for {label}).")
    return str(typer.prompt(label, hide_input=True))


def _read_text(path: Path, what: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{what} {path} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8."
        ) from None


@app.command("add-kubeconfig")
@exits_on_error(CREDENTIALS_EXIT_CODES)
def add_kubeconfig(
    name: str = typer.Argument(..., help="Block name, e.g. the cluster's name."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Kubeconfig file."),
    context: str | None = typer.Option(
        None, "--context", help="Context to use; default: current-context."
    ),
    overwrite: bool = OverwriteOption,
) -> None:
    """Seal a kubeconfig and save it as a Bud Kubeconfig Credentials block."""
    from blocks.kubeconfig import KubeconfigCredentials

    text = _read_text(file, "kubeconfig")
    block = KubeconfigCredentials.from_kubeconfig(name, text, context)
    _save(block, name, overwrite)


@app.command("add-hosts")
@exits_on_error(CREDENTIALS_EXIT_CODES)
def add_hosts(
    name: str = typer.Argument(..., help="Block name for this group of servers."),
    inventory: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Ansible inventory (YAML or INI)."
    ),
    ssh_key: Path | None = typer.Option(
        None, "--ssh-key", exists=True, dir_okay=False, help="SSH private key file to seal."
    ),
    become_password: bool = typer.Option(
        False,
        "--become-password",
        help="Also seal a become password (from BUDCLUSTER_BECOME_PASSWORD or a prompt).",
    ),
    known_hosts: Path | None = typer.Option(
        None,
        "--known-hosts",
        exists=True,
        dir_okay=False,
        help="known_hosts file (ssh-keyscan output): ssh then accepts only these host keys.",
    ),
    overwrite: bool = OverwriteOption,
) -> None:
    """Save an Ansible inventory as a Bud Host Inventory block, with its SSH key sealed."""
    from blocks.hosts import HostInventory

    password = _secret("BUDCLUSTER_BECOME_PASSWORD", "Become password") if become_password else None
    block = HostInventory.from_inventory(
        name,
        _read_text(inventory, "inventory"),
        ssh_private_key=_read_text(ssh_key, "SSH key") if ssh_key else None,
        become_password=password,
        known_hosts=_read_text(known_hosts, "known_hosts") if known_hosts else None,
    )
    _save(block, name, overwrite)


@app.command("add-s3")
@exits_on_error(CREDENTIALS_EXIT_CODES)
def add_s3(
    name: str = typer.Argument(..., help="Block name for this registry."),
    endpoint: str = typer.Option(
        ..., "--endpoint", help="S3 endpoint URL, e.g. https://minio.local:9000."
    ),
    bucket: str = typer.Option(..., "--bucket", help="Bucket that holds the models."),
    region: str | None = typer.Option(None, "--region", help="Region, if the endpoint needs one."),
    overwrite: bool = OverwriteOption,
) -> None:
    """Save an S3-compatible registry. Keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a prompt."""
    from blocks.s3 import S3Registry

    access_key_id = _secret("AWS_ACCESS_KEY_ID", "Access key id")
    secret_access_key = _secret("AWS_SECRET_ACCESS_KEY", "Secret access key")
    block = S3Registry.from_keys(
        name,
        bucket=bucket,
        endpoint_url=endpoint,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
    )
    _save(block, name, overwrite)


@app.command("add-aws")
@exits_on_error(CREDENTIALS_EXIT_CODES)
def add_aws(
    name: str = typer.Argument(..., help="Block name for these AWS credentials."),
    region: str | None = typer.Option(None, "--region", help="Default region (else AWS_REGION)."),
    overwrite: bool = OverwriteOption,
) -> None:
    """Save AWS keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or a prompt."""
    from blocks.cloud import AwsCredentials

    access_key_id = _secret("AWS_ACCESS_KEY_ID", "Access key id")
    secret_access_key = _secret("AWS_SECRET_ACCESS_KEY", "Secret access key")
    block = AwsCredentials.from_keys(
        name,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
        region=region or os.environ.get("AWS_REGION") or None,
    )
    _save(block, name, overwrite)


@app.command("add-azure")
@exits_on_error(CREDENTIALS_EXIT_CODES)
def add_azure(
    name: str = typer.Argument(..., help="Block name for this service principal."),
    overwrite: bool = OverwriteOption,
) -> None:
    """Save an Azure service principal from AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or prompts)."""
    from blocks.cloud import AzureCredentials

    def plain(var: str, label: str) -> str:
        return os.environ.get(var) or str(typer.prompt(label))

    tenant_id = plain("AZURE_TENANT_ID", "Tenant id")
    subscription_id = plain("AZURE_SUBSCRIPTION_ID", "Subscription id")
    client_id = plain("AZURE_CLIENT_ID", "Client id")
    client_secret = _secret("AZURE_CLIENT_SECRET", "Client secret")
    block = AzureCredentials.from_secret(
        name,
        tenant_id=tenant_id,
        subscription_id=subscription_id,
        client_id=client_id,
        client_secret=client_secret,
    )
    _save(block, name, overwrite)


@app.command("list")
@exits_on_error(CREDENTIALS_EXIT_CODES)
def list_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List stored credentials: names, types, key ids and fingerprints, never secrets."""
    from blocks.registry import list_credentials

    problems: dict[str, str] = {}
    credentials = list_credentials(problems)
    # A block edited without the key is named, not listed; the rest still show.
    for label, reason in problems.items():
        typer.echo(f"error: {label}: {reason}", err=True)
    if as_json:
        rows = [
            {
                "name": c.name,
                "type": c.block_type.get_block_type_slug(),
                "key_ids": sorted(set(c.block.key_ids().values())),
                "fingerprints": c.block.fingerprints,
            }
            for c in credentials
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not credentials:
        typer.echo("no credentials stored")
        return
    for c in credentials:
        prints = ", ".join(f"{k}={v}" for k, v in c.block.fingerprints.items())
        kids = ",".join(sorted(set(c.block.key_ids().values())))
        typer.echo(f"{c.name:<24} {c.block_type.get_block_type_slug():<28} key {kids}  {prints}")
