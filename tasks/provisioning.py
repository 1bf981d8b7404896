"""Tasks that create and destroy clusters with Terraform, and record what they did.

Every task opens the credentials block itself: the cloud keys live in the memory of the
one task that hands them to Terraform's environment, never in a task's parameters or
result (which Prefect may persist).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, cast

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from blocks.cloud import AwsCredentials, AzureCredentials
from blocks.kubeconfig import KubeconfigCredentials
from budcluster.adapters import s3
from budcluster.adapters.terraform import TerraformEngine, TerraformWorkspace, terraform_environment
from budcluster.errors import ConfigurationError, PermanentError
from budcluster.provisioning import (
    Approval,
    Cloud,
    PlanSummary,
    ProvisionClusterRequest,
    module_inputs,
    summarize_plan,
)
from budcluster.provisioning.kubeconfig import registration_kubeconfig
from budcluster.provisioning.modules import MODULES
from budcluster.provisioning.plan_summary import plan_markdown
from budcluster.settings import get_settings
from budcluster.store import provisionings
from tasks._logging import task_logger
from tasks._retry import unless_permanent
from tasks._store import results_store

# Outputs kept in the store and shown in the UI; the kubeconfig goes into a sealed block.
_RECORDED_OUTPUTS = (
    "cluster_name",
    "region",
    "location",
    "resource_group_name",
    "endpoint",
    "node_group_names",
    "node_pool_names",
)


class PlanDecision(RunInput):
    """The answer to a paused provision-cluster or destroy-cluster run."""

    approve: bool = Field(False, description="On: apply the plan shown above.")
    comment: str = Field("", max_length=500, description="Who decided, and why (recorded).")


class PlanRejected(PermanentError):
    """Nobody approved the plan (rejected, or no answer in time); nothing was changed."""


# --- the workspace ----------------------------------------------------------------------------


def _credentials(request: ProvisionClusterRequest) -> tuple[dict[str, str], dict[str, str]]:
    """(environment for Terraform, non-secret identity) from the request's credentials block."""
    block_type: type[AwsCredentials | AzureCredentials]
    block_type = AwsCredentials if request.cloud == Cloud.EKS else AzureCredentials
    try:
        block = cast(AwsCredentials | AzureCredentials, block_type.load(request.credentials_block))
    except ValueError as exc:
        raise ConfigurationError(
            f"credentials_block {request.credentials_block!r}: no {block_type.get_block_type_name()} "
            f"block of that name; add one with `budcluster credentials add-"
            f"{'aws' if request.cloud == Cloud.EKS else 'azure'}`"
        ) from exc
    env = block.as_environment()
    if isinstance(block, AwsCredentials):
        env.setdefault("AWS_REGION", request.region)
        return env, {}
    return env, {"subscription_id": block.subscription_id, "tenant_id": block.tenant_id}


@contextmanager
def _workspace(request: ProvisionClusterRequest) -> Iterator[TerraformWorkspace]:
    settings = get_settings()
    credentials_env, identity = _credentials(request)
    inputs = module_inputs(request, identity)
    directory = settings.data_dir / "terraform" / request.name
    workspace = TerraformWorkspace.prepare(
        directory,
        inputs.module,
        inputs.variables,
        engine=TerraformEngine.from_setting(settings.terraform_engine),
        env=terraform_environment(
            credentials_env,
            passthrough=settings.terraform_env_passthrough_names(),
        ),
        local_state=directory / "terraform.tfstate" if inputs.local_state else None,
        plugin_mirror=settings.terraform_plugin_mirror,
        timeout_s=settings.terraform_timeout_s,
    )
    workspace.init(inputs.backend_config)
    yield workspace


def _log_event(event: dict[str, Any]) -> None:
    # Progress lines only; diagnostics are raised as errors, and "outputs" events are not
    # logged because a module output could be sensitive.
    if event.get("type") in {
        "planned_change",
        "apply_start",
        "apply_progress",
        "apply_complete",
        "apply_errored",
        "change_summary",
        "resource_drift",
    }:
        task_logger(__name__).info("%s", event.get("@message", ""))


# --- tasks ------------------------------------------------------------------------------------


@task(
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=unless_permanent,
    timeout_seconds=300,
    task_run_name="state-bucket-{request.name}",
)
def resolve_state_bucket(request: ProvisionClusterRequest) -> ProvisionClusterRequest:
    """The request with its S3 state bucket named, the bucket created if it is missing."""
    if request.state.kind != "s3":
        return request
    credentials_env, _ = _credentials(request)
    region = request.state.region or request.region
    key_id, secret = credentials_env["AWS_ACCESS_KEY_ID"], credentials_env["AWS_SECRET_ACCESS_KEY"]
    token = credentials_env.get("AWS_SESSION_TOKEN")
    timeout_s = get_settings().http_timeout_s
    client = s3.make_s3_client(
        endpoint_url=None,
        region=region,
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=token,
        timeout_s=timeout_s,
    )
    if request.state.bucket:
        # The user's own bucket: created if missing, its settings otherwise left alone.
        bucket = request.state.bucket
        created = s3.ensure_state_bucket(client, bucket, region)
    else:
        account = s3.aws_account_id(
            region=region,
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=token,
            timeout_s=timeout_s,
        )
        bucket = s3.default_state_bucket(account, region)
        created = s3.ensure_state_bucket(
            client, bucket, region, expected_owner=account, harden_existing=True
        )
    if created:
        task_logger(__name__).info(
            "created state bucket %s (versioned, encrypted, no public access)", bucket
        )
    return request.model_copy(update={"state": request.state.model_copy(update={"bucket": bucket})})


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=60,
    task_run_name="record-{request.name}",
)
def record_provisioning(request: ProvisionClusterRequest) -> None:
    with results_store().session() as session:
        provisionings.start_provisioning(
            session,
            cluster_name=request.name,
            cloud=request.cloud.value,
            module=MODULES[request.cloud],
            credentials_block=request.credentials_block,
            request=request.model_dump(mode="json"),
        )


# No Prefect timeout on the tasks that run Terraform: the adapter interrupts each command
# after BUDCLUSTER_TERRAFORM_TIMEOUT_S with SIGINT, so Terraform saves its state and
# releases its lock; a Prefect timeout would abandon it mid-write instead.
@task(task_run_name="plan-{request.name}")
def plan_cluster(request: ProvisionClusterRequest, destroy: bool = False) -> PlanSummary:
    """init, then a plan saved to a file of this run's own; returns what it would do."""
    plan_file = f"{'destroy' if destroy else 'apply'}-{uuid.uuid4().hex}.tfplan"
    with _workspace(request) as workspace:
        workspace.plan(destroy=destroy, on_event=_log_event, plan_file=plan_file)
        summary = summarize_plan(workspace.show_plan(plan_file))
    task_logger(__name__).info("%s", summary.headline())
    return replace(summary, plan_file=plan_file)


def publish_plan(cluster: str, summary: PlanSummary, *, destroy: bool) -> str:
    """A markdown artifact with the counts and the resource table; returns its text."""
    text = plan_markdown(cluster, summary, destroy=destroy)
    create_markdown_artifact(
        markdown=text, key=f"terraform-plan-{cluster}", description=summary.headline()
    )
    if summary.changes:
        create_table_artifact(
            table=[c.as_row() for c in summary.changes],
            key=f"terraform-plan-resources-{cluster}",
            description=summary.headline(),
        )
    return text


def wait_for_approval(cluster: str, plan_text: str, approval: Approval, *, destroy: bool) -> str:
    """Pause the flow run until someone approves the plan; returns the recorded decision.

    Called from the flow (Prefect pauses flows, not tasks). Pre-approval skips the pause.
    """
    logger = task_logger(__name__)
    if approval.auto_approve:
        logger.info("plan pre-approved by the run's parameters (approval.auto_approve)")
        return "pre-approved (approval.auto_approve)"
    verb = "destroy" if destroy else "apply"
    logger.info(
        "waiting up to %d s for approval: Resume this run in the Prefect UI, or run "
        "`budcluster cluster approve <flow run id>`",
        approval.timeout_s,
    )
    form = PlanDecision.with_initial_data(
        description=f"{plan_text}\n\nTurn on **approve** and submit to {verb} `{cluster}`.",
        approve=False,
    )
    try:
        decision = pause_flow_run(wait_for_input=form, timeout=approval.timeout_s, poll_interval=3)
    except FlowPauseTimeout as exc:
        raise PlanRejected(
            f"no answer within approval.timeout_s={approval.timeout_s} s; nothing was changed. "
            "Run again to get a fresh plan."
        ) from exc
    if not decision.approve:
        raise PlanRejected(
            f"the plan to {verb} {cluster!r} was not approved"
            + (f" ({decision.comment})" if decision.comment else "")
            + "; nothing was changed"
        )
    logger.info("plan approved%s", f": {decision.comment}" if decision.comment else "")
    return f"approved: {decision.comment}" if decision.comment else "approved"


@task(task_run_name="apply-{request.name}")
def apply_cluster_plan(request: ProvisionClusterRequest, plan: PlanSummary) -> None:
    """Apply exactly the plan that was shown, streaming Terraform's progress to the log."""
    with _workspace(request) as workspace:
        workspace.apply(on_event=_log_event, plan_file=plan.plan_file)


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    task_run_name="outputs-{request.name}",
)
def read_cluster_outputs(request: ProvisionClusterRequest) -> dict[str, Any]:
    """The module's outputs (the kubeconfig among them; it holds no credential)."""
    with _workspace(request) as workspace:
        return workspace.outputs()


@task(timeout_seconds=120, task_run_name="kubeconfig-block-{request.name}")
def save_kubeconfig_block(request: ProvisionClusterRequest, outputs: dict[str, Any]) -> str:
    """Seal the new cluster's kubeconfig (with the run's credentials for its exec plugin)."""
    credentials_env, _ = _credentials(request)
    text, context = registration_kubeconfig(request.cloud, outputs, credentials_env)
    block_name = f"{request.name}-kubeconfig"
    KubeconfigCredentials.from_kubeconfig(block_name, text, context).save(
        block_name, overwrite=True
    )
    return block_name


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=60,
    task_run_name="mark-{cluster}-{status}",
)
def mark_provisioning(
    cluster: str,
    status: str,
    reason: str | None = None,
    outputs: dict[str, Any] | None = None,
    kubeconfig_block: str | None = None,
    applied: ProvisionClusterRequest | None = None,
) -> None:
    """Record a provisioning's status; ``applied`` is the form whose plan was applied."""
    recorded = (
        {key: outputs[key] for key in _RECORDED_OUTPUTS if key in outputs}
        if outputs is not None
        else None
    )
    with results_store().session() as session:
        provisionings.set_provisioning_status(
            session,
            cluster,
            status,
            reason,
            outputs=recorded,
            kubeconfig_block=kubeconfig_block,
            request=applied.model_dump(mode="json") if applied else None,
            credentials_block=applied.credentials_block if applied else None,
        )


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=60,
    task_run_name="provisioned-{cluster}",
)
def provisioned_request(cluster: str) -> ProvisionClusterRequest:
    """The form a cluster was provisioned with, as recorded."""
    with results_store().session() as session:
        provisioning = provisionings.get_provisioning(session, cluster)
        return ProvisionClusterRequest.model_validate(provisioning.request)


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=60,
    task_run_name="forget-kubeconfig-{cluster}",
)
def delete_kubeconfig_block(cluster: str) -> None:
    """Delete the sealed kubeconfig of a destroyed cluster (its credentials are useless now)."""
    with results_store().session() as session:
        block_name = provisionings.get_provisioning(session, cluster).kubeconfig_block
    if not block_name:
        return
    try:
        KubeconfigCredentials.delete(block_name)
    except (ObjectNotFound, ValueError):  # Block.delete reports a missing block as ValueError
        task_logger(__name__).info("kubeconfig block %s was already deleted", block_name)
    with results_store().session() as session:
        provisionings.get_provisioning(session, cluster).kubeconfig_block = None
