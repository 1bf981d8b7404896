"""Tasks that stage a model, start its runtime, wait for health, and remove it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from budcluster.endpoints import EndpointCheck
from budcluster.failpoints import failpoint
from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import (
    ModelSourceSpec,
    PodScheduling,
    RolloutSpec,
    RuntimeState,
    RuntimeStatus,
    StagedModel,
    TransferProgress,
)
from budcluster.targets.ref import ClusterRef
from tasks._logging import task_logger
from tasks.targets import registered_target


# Building llama-server or installing vLLM's CPU build happens once per machine and is
# cached; the first time it takes minutes, which is why the timeout is long.
@task(retries=0, timeout_seconds=3600, task_run_name="prepare-{plan.engine}")
def prepare_engine(plan: RuntimePlan, cluster_kind: str) -> dict[str, str]:
    """Executables the host command needs, built or installed on this machine if missing.

    Only a hosts cluster runs the engine from this machine's build; a Kubernetes cluster
    runs the plan's image, so nothing is built or installed here for it.
    """
    if cluster_kind != "hosts":
        return {}
    # A first build takes minutes: its steps and elapsed time go to the run's log.
    progress = task_logger(__name__).info
    if plan.engine == "llama.cpp":
        from budcluster.runtimes.llama_server import ensure_llama_server

        return {"llama-server": str(ensure_llama_server(progress=progress))}
    if plan.engine == "vllm" and plan.device_kind == "cpu":
        from budcluster.runtimes.vllm_cpu import ensure_vllm_cpu

        return {"python": str(ensure_vllm_cpu(progress=progress))}
    # CUDA and Gaudi hosts bring their own vLLM (an image, or an install named in the
    # inventory); nothing is built here for them.
    return {}


def _progress_reporter(name: str) -> tuple[UUID, Callable[[TransferProgress], None]]:
    key = f"transfer-{name}".lower().replace(".", "-").replace("_", "-")
    artifact_id = cast(
        UUID, create_progress_artifact(progress=0.0, key=key, description=f"Staging {name}")
    )
    last_update = [0.0]

    def on_progress(progress: TransferProgress) -> None:
        now = time.monotonic()
        if now - last_update[0] >= 1.0 or progress.bytes_done == progress.bytes_total:
            last_update[0] = now
            update_progress_artifact(artifact_id=artifact_id, progress=100.0 * progress.fraction)

    return artifact_id, on_progress


def _log_staged(name: str, staged: StagedModel) -> None:
    task_logger(__name__).info(
        "staged %s on %s: %d files, %.1f MiB (%.1f MiB copied) in %.1f s",
        name,
        ", ".join(staged.nodes),
        staged.files,
        staged.bytes / 2**20,
        staged.bytes_copied / 2**20,
        staged.seconds,
    )


@task(retries=1, retry_delay_seconds=5, timeout_seconds=6 * 3600, task_run_name="stage-model")
def stage_model(
    cluster: ClusterRef,
    source: ModelSourceSpec,
    model_name: str,
    nodes: list[str],
    scheduling: PodScheduling | None = None,
    adapter_sources: list[ModelSourceSpec] | None = None,
) -> StagedModel:
    """Copy and verify the model on the nodes; resumable, so a retry copies only the rest.
    ``scheduling`` lets a Kubernetes transfer Job onto a tainted or labelled pool;
    ``adapter_sources``: the adapters staged beside it next (a volume is sized for them)."""
    artifact_id, on_progress = _progress_reporter(model_name)
    with registered_target(cluster) as target:
        staged = target.stage_model(
            source,
            model_name,
            nodes,
            progress=on_progress,
            scheduling=scheduling,
            adapter_sources=adapter_sources or (),
        )
    update_progress_artifact(artifact_id=artifact_id, progress=100.0)
    _log_staged(model_name, staged)
    return staged


@task(
    retries=1,
    retry_delay_seconds=5,
    timeout_seconds=6 * 3600,
    task_run_name="stage-adapter-{adapter_dir}",
)
def stage_adapter(
    cluster: ClusterRef,
    source: ModelSourceSpec,
    adapter_dir: str,
    model_name: str,
    nodes: list[str],
    scheduling: PodScheduling | None = None,
) -> StagedModel:
    """Copy and verify a LoRA adapter beside the model, where its runtime reads it;
    resumable, so an unchanged adapter copies nothing. ``scheduling`` is the model's, so a
    Kubernetes adapter Job lands on the pool that holds the model's volume."""
    artifact_id, on_progress = _progress_reporter(adapter_dir)
    with registered_target(cluster) as target:
        staged = target.stage_adapter(
            source, adapter_dir, model_name, nodes, progress=on_progress, scheduling=scheduling
        )
    update_progress_artifact(artifact_id=artifact_id, progress=100.0)
    _log_staged(adapter_dir, staged)
    return staged


@task(retries=0, timeout_seconds=900, task_run_name="roll-out-{spec.deployment_name}")
def roll_out(cluster: ClusterRef, spec: RolloutSpec, executables: dict[str, str]) -> RuntimeStatus:
    with registered_target(cluster, executables=executables) as target:
        status = target.roll_out(spec)
    task_logger(__name__).info(
        "%s rolled out: %s at %s", spec.deployment_name, status.state, status.endpoint_url
    )
    failpoint("after-roll-out")
    return status


@task(retries=0, timeout_seconds=7200, task_run_name="wait-healthy-{deployment}")
def wait_healthy(
    cluster: ClusterRef, deployment: str, served_model_name: str, timeout_s: float
) -> EndpointCheck:
    """Wait for /health, the served model in /v1/models, and a real completion."""
    with registered_target(cluster) as target:
        check = target.verify_endpoint(deployment, served_model_name, timeout_s)
    task_logger(__name__).info(
        "%s healthy after %.1f s: serves %s, completion %r",
        deployment,
        check.seconds_waited,
        check.served_models,
        check.completion_text[:40],
    )
    return check


@task(retries=0, timeout_seconds=120, task_run_name="runtime-status-{deployment}")
def runtime_status(cluster: ClusterRef, deployment: str) -> RuntimeStatus:
    with registered_target(cluster) as target:
        return target.status(deployment)


@task(retries=2, retry_delay_seconds=5, timeout_seconds=600, task_run_name="undo-{deployment}")
def undo_rollout(
    cluster: ClusterRef, deployment: str, previous: list[dict[str, Any]] | None
) -> RuntimeStatus:
    """Back to the previous revision, or remove the runtime when there was none."""
    with registered_target(cluster) as target:
        status = target.undo_rollout(deployment, previous)
    task_logger(__name__).warning(
        "rolled back %s on %s to %s: %s",
        deployment,
        cluster.name,
        "the previous revision" if previous else "nothing (first rollout removed)",
        status.state.value,
    )
    return status


@task(retries=2, retry_delay_seconds=5, timeout_seconds=300, task_run_name="remove-{deployment}")
def remove_runtime(cluster: ClusterRef, deployment: str) -> None:
    with registered_target(cluster) as target:
        target.delete(deployment)
    task_logger(__name__).info("removed runtime %s from %s", deployment, cluster.name)


@task(retries=1, retry_delay_seconds=5, timeout_seconds=120, task_run_name="is-{name}-current")
def current_endpoint(cluster: ClusterRef, name: str, spec_hash: str) -> str | None:
    """The endpoint of a deployment that is ready, runs, and has this spec; else None."""
    from tasks.records import find_deployment

    state = find_deployment.fn(cluster.name, name)
    if state is None or state.status != "ready" or state.spec_hash != spec_hash:
        return None
    with registered_target(cluster) as target:
        running = target.status(name).state == RuntimeState.RUNNING
    return state.endpoint_url if running else None
