"""`budcluster cluster`: provision, destroy, approve and deregister clusters.

``provision`` and ``destroy`` start runs of the Prefect deployments of the same names (so
they run on the team's workers, with the plan, approval and logs in the Prefect UI);
``approve`` answers a run paused at its plan; ``deregister`` edits the results store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import typer
import yaml
from pydantic import ValidationError

from budcluster.cli.errors import CommandFailed, exits_on_error
from budcluster.errors import ConfigurationError

app = typer.Typer(
    help="Create and destroy EKS/AKS clusters with Terraform (through Prefect), or forget one.",
    no_args_is_help=True,
)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'request'}: {error['msg']}"
        for error in exc.errors()
    )


def _start(deployment: str, request: dict[str, Any]) -> None:
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_UI_URL

    try:
        run = cast(FlowRun, run_deployment(deployment, parameters={"request": request}, timeout=0))
    except Exception as exc:  # Prefect raises plain errors for a missing deployment or API
        raise CommandFailed(
            f"could not start {deployment}: {exc} (is PREFECT_API_URL set and "
            "`prefect deploy --all` done?)"
        ) from None
    typer.echo(f"started {deployment}: flow run {run.id}")
    ui = PREFECT_UI_URL.value()
    if ui:
        typer.echo(f"  {ui}/runs/flow-run/{run.id}")
    typer.echo(
        "  it pauses after the plan unless pre-approved: "
        f"budcluster cluster approve {run.id} [--reject] [--comment TEXT]"
    )


@app.command("provision")
@exits_on_error()
def provision(
    request_file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="The provision-cluster form as YAML or JSON."
    ),
    approve: bool = typer.Option(
        False, "--approve", help="Pre-approve the plan (approval.auto_approve)."
    ),
) -> None:
    """Check the form here, then start a provision-cluster run."""
    from budcluster.provisioning import ProvisionClusterRequest

    try:
        loaded = yaml.safe_load(request_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{request_file} is not UTF-8 YAML or JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{request_file} must hold a mapping (the form's fields)")
    if approve:
        approval = loaded.get("approval") or {}
        if not isinstance(approval, dict):
            raise ConfigurationError(
                f"{request_file}: approval must be a mapping (auto_approve, timeout_s)"
            )
        loaded["approval"] = {**approval, "auto_approve": True}
    try:
        request = ProvisionClusterRequest.model_validate(loaded)
    except ValidationError as exc:
        raise ConfigurationError(f"{request_file}: {_validation_message(exc)}") from None
    _start("provision-cluster/provision-cluster", request.model_dump(mode="json"))


@app.command("destroy")
@exits_on_error()
def destroy(
    name: str = typer.Argument(..., help="A cluster provision-cluster created."),
    force: bool = typer.Option(
        False, "--force", help="Destroy even while deployments are recorded on it."
    ),
    approve: bool = typer.Option(False, "--approve", help="Pre-approve the destroy plan."),
) -> None:
    """Start a destroy-cluster run."""
    from budcluster.provisioning import Approval, DestroyClusterRequest

    try:
        request = DestroyClusterRequest(
            name=name,
            force=force,
            approval=Approval(auto_approve=approve),
        )
    except ValidationError as exc:
        raise ConfigurationError(_validation_message(exc)) from None
    _start("destroy-cluster/destroy-cluster", request.model_dump(mode="json"))


@app.command("approve")
@exits_on_error()
def approve_run(
    flow_run_id: str = typer.Argument(..., help="The paused run's id."),
    reject: bool = typer.Option(False, "--reject", help="Reject the plan instead."),
    comment: str = typer.Option("", "--comment", help="Who decided, and why (recorded)."),
) -> None:
    """Answer a provision-cluster or destroy-cluster run paused at its plan."""
    from prefect.flow_runs import resume_flow_run

    try:
        run_id = UUID(flow_run_id)
    except ValueError:
        raise ConfigurationError(f"{flow_run_id!r} is not a flow run id (a UUID)") from None
    try:
        resume_flow_run(run_id, run_input={"approve": not reject, "comment": comment})
    except Exception as exc:  # Prefect's own errors: not paused, unknown run, bad input
        raise CommandFailed(f"could not answer flow run {run_id}: {exc}") from None
    typer.echo(f"{'rejected' if reject else 'approved'} the plan of flow run {run_id}")


@app.command("deregister")
@exits_on_error()
def deregister(
    name: str = typer.Argument(..., help="A registered cluster."),
    force: bool = typer.Option(
        False, "--force", help="Forget it even while deployments are recorded as running."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Forget a cluster in the results store (nodes, deployments, transfers); it is not touched."""
    from budcluster.store import Store
    from budcluster.store.clusters import deregister_cluster

    store = Store.from_settings()
    try:
        with store.session() as session:
            forgotten = deregister_cluster(session, name, force=force)
    finally:
        store.dispose()
    if as_json:
        typer.echo(json.dumps({"cluster": name, "forgotten_deployments": forgotten}))
    else:
        typer.echo(f"deregistered {name}; forgotten deployments: {', '.join(forgotten) or 'none'}")
