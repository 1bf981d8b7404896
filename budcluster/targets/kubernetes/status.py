"""What state a runtime is in, read from its Deployment, pods and events, and why it failed;
and how far a model transfer Job has got, read from its progress ConfigMap."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from budcluster.endpoints import EndpointNotReady
from budcluster.targets.base import RuntimeState, RuntimeStatus
from budcluster.targets.kubernetes.errors import KubernetesRuntimeFailed, KubernetesTargetError
from budcluster.targets.kubernetes.objects import (
    ConfigMapObject,
    DeploymentObject,
    EventObject,
    PodObject,
)

# The kubelet retries ErrImagePull and reports ImagePullBackOff once it backs off; the rest
# cannot succeed without a new spec.
_IMAGE_PULL_RETRYING = {"ErrImagePull"}
_IMAGE_PULL_FINAL = {"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_CRASHING = {"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError"}


def rollout_complete(deployment: DeploymentObject) -> bool:
    """True when the current spec is fully rolled out, as ``kubectl rollout status`` decides.

    ``readyReplicas`` alone is not enough: during an update the old ReplicaSet's pods stay
    ready, so the new revision counts only once the controller observed this generation,
    every replica is updated and ready, and no old replica is left.
    """
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1) or 0)
    generation = int((deployment.get("metadata") or {}).get("generation", 0) or 0)
    observed = int(status.get("observedGeneration", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    total = int(status.get("replicas", 0) or 0)
    available = int(status.get("availableReplicas", 0) or 0)
    ready = int(status.get("readyReplicas", 0) or 0)
    return (
        wanted > 0
        and observed >= generation
        and updated >= wanted
        and total <= updated
        and min(available, ready) >= wanted
    )


def _pod_failure(pod: PodObject) -> tuple[RuntimeState, str] | None:
    """A container's waiting/terminated reason: FAILED when the kubelet gave up retrying fast,
    STARTING with the reason while it still retries (ErrImagePull becomes ImagePullBackOff)."""
    name = pod["metadata"]["name"]
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        terminated = (container.get("state") or {}).get("terminated") or {}
        if "OOMKilled" in (last.get("reason"), terminated.get("reason")):
            return RuntimeState.FAILED, f"OOMKilled: pod {name} ran out of memory"
        reason = waiting.get("reason")
        message = waiting.get("message", "")
        if reason in _IMAGE_PULL_FINAL or reason in _CRASHING:
            return RuntimeState.FAILED, f"{reason}: pod {name}: {message}"
        if reason in _IMAGE_PULL_RETRYING:
            return RuntimeState.STARTING, f"{reason}: pod {name}: {message}"
    return None


def runtime_state(
    deployment: DeploymentObject | None,
    pods: Sequence[PodObject],
    events: Sequence[EventObject],
) -> tuple[RuntimeState, str | None]:
    """State and reason from a Deployment, its pods and their events."""
    if deployment is None:
        return RuntimeState.ABSENT, None
    wanted = int((deployment.get("spec") or {}).get("replicas", 1) or 0)
    ready = int((deployment.get("status") or {}).get("readyReplicas", 0) or 0)
    generation = int((deployment.get("metadata") or {}).get("generation", 0) or 0)
    observed = int((deployment.get("status") or {}).get("observedGeneration", 0) or 0)
    if observed < generation:
        # The controller has not acted on this spec yet: the pods are the previous one's.
        return RuntimeState.STARTING, "the Deployment controller has not observed this revision"
    retrying: str | None = None
    # Pods on their way out (an older revision's) say nothing about this one.
    pods = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    for pod in pods:
        found = _pod_failure(pod)
        if found is not None and found[0] is RuntimeState.FAILED:
            return found
        if found is not None and retrying is None:
            retrying = found[1]
    if rollout_complete(deployment):
        return RuntimeState.RUNNING, None
    unscheduled = [
        e for e in events if e.get("reason") == "FailedScheduling" and e.get("type") == "Warning"
    ]
    pending = [p for p in pods if (p.get("status") or {}).get("phase") == "Pending"]
    if unscheduled and pending and not any(_scheduled(p) for p in pending):
        return RuntimeState.FAILED, f"FailedScheduling: {unscheduled[-1].get('message', '')}"
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return RuntimeState.FAILED, f"ProgressDeadlineExceeded: {condition.get('message', '')}"
    return RuntimeState.STARTING, retrying or f"{ready}/{wanted} replicas ready"


def _scheduled(pod: PodObject) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "True" for c in conditions)


def raise_unless_serving(name: str, status: RuntimeStatus, *, starting: bool = False) -> None:
    """Raise when the runtime cannot serve: failed (with its reason and log tail) or absent."""
    if status.state is RuntimeState.FAILED:
        tail = "\n".join(status.log_tail[-20:])
        raise KubernetesRuntimeFailed(
            f"{name} failed: {status.reason or 'no reason given'}"
            + (f"; last log lines:\n{tail}" if tail else ""),
            status.reason,
            status.log_tail,
        )
    if status.state is RuntimeState.ABSENT:
        raise KubernetesTargetError(f"{name} is not deployed; roll it out before verifying it")
    if status.state is RuntimeState.STARTING and not starting:
        raise EndpointNotReady(f"{name} is still starting: {status.reason}")


def progress_payload(maps: Sequence[ConfigMapObject]) -> dict[str, Any]:
    for config_map in maps:
        data = config_map.get("data") or {}
        for value in data.values():
            try:
                payload = json.loads(value)
            except (TypeError, ValueError):
                continue
            if isinstance(payload, dict):
                return payload
    return {}
