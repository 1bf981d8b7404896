"""Tasks that write the results store: clusters, nodes, models, transfers, deployments.

Each task is one transaction; the store rejects illegal status moves, so a task that
retries after a partial failure cannot skip a step. The deployment's bookkeeping (find,
open, move, revision, rollout) goes through ``transact``: a transaction the database cut
off (Postgres stopped or restarting, SQLite locked) is rerun whole, and each is written
so that a rerun after a commit whose answer was lost changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from prefect import task
from prefect.artifacts import create_markdown_artifact
from sqlalchemy.orm import Session

from budcluster.hardware.inventory import NodeInventory
from budcluster.store import NotFound, models_catalog, transfers
from budcluster.store import clusters as cluster_rows
from budcluster.store import deployments as deployment_rows
from budcluster.store import nodes as node_rows
from budcluster.store import rollout_attempts as attempt_rows
from budcluster.store.models import RolloutAttemptState
from budcluster.store.node_inventory import observation_from_inventory
from budcluster.targets.base import AccessReport, RuntimeStatus, StagedModel
from tasks._logging import task_logger
from tasks._store import results_store, transact

# Store writes are short; a retry covers a dropped connection, and the store's
# constraints make a repeated write fail loudly rather than duplicate.
_RETRIES, _DELAY_S, _TIMEOUT_S = 2, 2, 60


@dataclass(frozen=True)
class DeploymentState:
    id: int
    status: str
    spec_hash: str | None
    endpoint_url: str | None
    served_model_name: str | None
    plan: dict[str, Any] | None = None


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="record-cluster-{name}",
)
def record_cluster(
    name: str, kind: str, provider: str, credentials_block: str, access: AccessReport
) -> int:
    with results_store().session() as session:
        cluster = cluster_rows.register_cluster(
            session,
            name=name,
            kind=access.kind if kind == "kubernetes" else kind,
            provider=provider,
            credentials_block=credentials_block,
            server_url=access.server_url,
            platform_version=access.server_version,
        )
        cluster_rows.set_cluster_status(session, name, "available", access.detail or None)
        return cluster.id


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="record-nodes-{cluster}",
)
def record_nodes(cluster: str, inventories: list[NodeInventory]) -> list[dict[str, Any]]:
    """Append a snapshot per node; returns the rows shown in the inventory table."""
    rows = []
    observations = [observation_from_inventory(inventory) for inventory in inventories]
    with results_store().session() as session:
        cluster_id = cluster_rows.get_cluster(session, cluster).id
        node_rows.record_node_snapshots(session, cluster_id, observations)
        for observation in observations:
            rows.append(
                {
                    "node": observation.name,
                    "cpu": observation.cpu_model or "",
                    "cores": observation.cpu_cores,
                    "memory GiB": round((observation.memory_bytes or 0) / 2**30, 1),
                    "accelerator": observation.accelerator_kind,
                    "count": observation.accelerator_count,
                    "model": observation.accelerator_model or "",
                }
            )
    return rows


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="record-model-{name}",
)
def record_model(
    name: str, source_uri: str, format: str, files: list[dict[str, Any]], facts: dict[str, Any]
) -> int:
    model_files = [models_catalog.ModelFile(f["path"], int(f["size"]), f["sha256"]) for f in files]
    with results_store().session() as session:
        model = models_catalog.save_model(
            session,
            name=name,
            source_uri=source_uri,
            format=format,
            files=model_files,
            config_facts=facts,
        )
        return model.id


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="record-transfer",
)
def record_transfer(
    model_id: int, cluster: str, deployment_id: int | None, staged: StagedModel, ok: bool
) -> int:
    with results_store().session() as session:
        cluster_id = cluster_rows.get_cluster(session, cluster).id
        row = transfers.create_transfer(
            session,
            model_id=model_id,
            cluster_id=cluster_id,
            deployment_id=deployment_id,
            destination=staged.path,
            bytes_total=staged.bytes,
            files_total=staged.files,
        )
        transfers.start_transfer(session, row.id)
        transfers.record_progress(
            session, row.id, bytes_done=staged.bytes_copied, files_done=staged.files
        )
        transfers.finish_transfer(session, row.id, "succeeded" if ok else "failed")
        return row.id


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="find-deployment-{name}",
)
def find_deployment(cluster: str, name: str) -> DeploymentState | None:
    def read(session: Session) -> DeploymentState | None:
        cluster_id = cluster_rows.get_cluster(session, cluster).id
        try:
            row = deployment_rows.find_deployment(session, cluster_id, name)
        except NotFound:
            return None
        served = (row.plan or {}).get("served_model_name")
        return DeploymentState(
            row.id, row.status.value, row.spec_hash, row.endpoint_url, served, row.plan
        )

    return transact(read, f"find deployment {name!r} on {cluster!r}")


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="deployment-{deployment_id}-to-{status}",
)
def move_deployment(deployment_id: int, status: str, reason: str | None = None) -> str:
    """Move to ``status`` when that is a real change; returns the status now held.

    Read and moved in one transaction, so a rerun after a lost commit answer finds the
    status already held and records nothing twice.
    """

    def move(session: Session) -> str:
        current = deployment_rows.get_deployment(session, deployment_id).status.value
        if current != status:
            deployment_rows.transition(session, deployment_id, status, reason)
        return current

    before = transact(move, f"move deployment {deployment_id} to {status}")
    if before != status:
        task_logger(__name__).info("deployment %s: %s -> %s", deployment_id, before, status)
    return status


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="record-rollout-{deployment_id}",
)
def record_rollout(
    deployment_id: int,
    *,
    model_id: int,
    spec_hash: str,
    plan: dict[str, Any],
    engine: str,
    image: str | None,
    command: list[str],
    endpoint_url: str,
) -> None:
    def record(session: Session) -> None:
        # A changed spec may name another model; the row follows the rollout that ran.
        deployment_rows.get_deployment(session, deployment_id).model_id = model_id
        deployment_rows.update_spec(
            session,
            deployment_id,
            spec_hash=spec_hash,
            plan=plan,
            engine=engine,
            image=image,
            command=command,
        )
        deployment_rows.set_endpoint(session, deployment_id, endpoint_url)

    transact(record, f"record the rollout of deployment {deployment_id}")


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="open-deployment-{name}",
)
def open_deployment(
    cluster: str, name: str, model_id: int, spec_hash: str, reason: str
) -> tuple[int, bool]:
    """Create the deployment, or take over an existing one; returns (id, is_redeploy).

    New or deleted deployments start at ``planning``; failed ones retry from
    ``planning``; a ready one whose spec changed moves straight to ``deploying`` (its
    runtime is replaced in place).
    """

    def open_row(session: Session) -> tuple[int, bool]:
        cluster_id = cluster_rows.get_cluster(session, cluster).id
        try:
            row = deployment_rows.find_deployment(session, cluster_id, name)
        except NotFound:
            row = deployment_rows.create_deployment(
                session, cluster_id=cluster_id, model_id=model_id, name=name, spec_hash=spec_hash
            )
        status = row.status.value
        if status == "deleted":
            deployment_rows.transition(session, row.id, "pending", "recreated")
            status = "pending"
        if status == "ready":
            deployment_rows.transition(session, row.id, "deploying", "spec changed: redeploying")
            return row.id, True
        if status in ("planning", "transferring", "deploying", "deleting"):
            # A run that died mid-way (worker killed) left this; concurrency limits keep
            # two live runs of one deployment apart, so this one takes over. (A rerun of
            # this transaction after a lost commit answer lands here too: it records a
            # take-over and ends in ``planning``, as the first try did.)
            deployment_rows.transition(
                session, row.id, "failed", f"previous run ended while {status}; taken over"
            )
        deployment_rows.transition(session, row.id, "planning", reason)
        return row.id, False

    return transact(open_row, f"open deployment {name!r} on {cluster!r}")


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="cluster-exists-{name}",
)
def cluster_exists(name: str) -> bool:
    with results_store().session() as session:
        try:
            cluster_rows.get_cluster(session, name)
        except NotFound:
            return False
        return True


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="previous-revision-{deployment_id}",
)
def latest_revision(deployment_id: int) -> list[dict[str, Any]] | None:
    """The manifests of the deployment's latest revision, or None before the first."""

    def read(session: Session) -> list[dict[str, Any]] | None:
        try:
            return list(deployment_rows.get_revision(session, deployment_id).manifests)
        except NotFound:
            return None

    return transact(read, f"read the latest revision of deployment {deployment_id}")


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="record-revision-{deployment_id}",
)
def record_revision(
    deployment_id: int, status: RuntimeStatus, spec_hash: str, attempt_id: int | None = None
) -> int | None:
    """Keep the rendered objects of a rollout (store and artifact); None when the target
    renders none (hosts run a process, not objects).

    With ``attempt_id``, the rollout attempt ends ``finished`` in the same transaction: the
    store never holds the revision without the attempt ended, or the reverse. A rerun
    that finds the attempt already finished (the first try's commit landed, its answer
    was lost) records nothing again.
    """
    rendered = status.detail.get("manifests")
    manifests = [doc for doc in yaml.safe_load_all(rendered) if doc] if rendered else []

    def record(session: Session) -> int | None:
        if attempt_id is not None:
            attempt = attempt_rows.get_attempt(session, attempt_id)
            if attempt.state is RolloutAttemptState.FINISHED:
                if not manifests:
                    return None
                return deployment_rows.get_revision(session, deployment_id).revision
        number = None
        if manifests:
            revision = deployment_rows.record_revision(session, deployment_id, manifests, spec_hash)
            number = revision.revision
        if attempt_id is not None:
            attempt_rows.end_attempt(session, attempt_id, "finished")
        return number

    number = transact(record, f"record the revision of deployment {deployment_id}")
    if number is None:
        return None
    create_markdown_artifact(
        key=f"manifests-deployment-{deployment_id}",
        markdown=f"# Revision {number}\n\n```yaml\n{rendered}\n```\n",
        description=f"Rendered manifests of revision {number}",
    )
    return number
