"""Model staging for the ``kubernetes`` target: a transfer Job fills the model's PVC.

This module does I/O through the Kubernetes adapter. It renders the ``model_transfer``
chart, replaces any previous Job of the release, follows the Job's progress ConfigMap to
its end and removes the S3 key Secret the Job read; what it computes (chart values, the
progress payload, names) comes from the pure modules beside it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from kubernetes import client as k8s_client

from budcluster.adapters import kubernetes as kube
from budcluster.errors import BudClusterError
from budcluster.targets.base import (
    ModelSourceSpec,
    PodScheduling,
    ProgressCallback,
    StagedModel,
    TransferProgress,
)
from budcluster.targets.kubernetes.errors import KubernetesTargetError, wrap
from budcluster.targets.kubernetes.names import (
    adapter_job_for,
    check_model_name,
    is_source_secret,
    model_release_for,
    namespace_for,
    pvc_path,
)
from budcluster.targets.kubernetes.objects import ConfigMapObject
from budcluster.targets.kubernetes.status import progress_payload
from budcluster.targets.kubernetes.timeouts import KubernetesTimeouts
from budcluster.targets.kubernetes.values import quantity_bytes, source_secret, transfer_values

RenderChart = Callable[[str, Mapping[str, Any], str, str], list[dict[str, Any]]]
"""``(chart, values, release, namespace) -> objects``: the target's offline Helm render."""


class ModelStaging:
    """Copies a model from its source into a PVC of the model's namespace, by a Job."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        namespace_prefix: str,
        image: str,
        timeouts: KubernetesTimeouts,
        render: RenderChart,
        ensure_namespace: Callable[[str], None],
    ) -> None:
        self._api = api_client
        self._prefix = namespace_prefix
        self._image = image
        self._timeouts = timeouts
        self._render = render
        self._ensure_namespace = ensure_namespace

    def stage_model(
        self,
        source: ModelSourceSpec,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
        scheduling: PodScheduling | None = None,
        *,
        adapter_sources: Sequence[ModelSourceSpec] = (),
    ) -> StagedModel:
        """Copy the model into its PVC, which is sized for it and ``adapter_sources`` (the
        LoRA adapters :meth:`stage_adapter` copies beside it); ``scheduling`` places the
        transfer Job on the pool the runtime uses."""
        check_model_name(model_name)
        _check_pod_readable(source, "model")
        namespace = namespace_for(self._prefix, model_name)
        release = model_release_for(model_name)
        pvc = f"{release}-model"
        placement = scheduling or PodScheduling()
        secret = source_secret(source, namespace, release)
        values = transfer_values(
            image=self._image,
            model_name=model_name,
            source_uri=source.uri,
            model_bytes=_source_bytes(source),
            s3_secret=secret["metadata"]["name"] if secret else "",
            node_name=nodes[0] if len(nodes) == 1 else None,
            pvc_name=pvc,
            adapter_bytes=sum(_source_bytes(s) for s in adapter_sources),
            tolerations=placement.tolerations,
            node_selector=placement.node_selector,
        )
        return self._stage(source, model_name, nodes, progress, namespace, release, values, secret)

    def stage_adapter(
        self,
        source: ModelSourceSpec,
        adapter_dir: str,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
        scheduling: PodScheduling | None = None,
    ) -> StagedModel:
        """Copy a LoRA adapter into ``<adapter_dir>`` of ``model_name``'s PVC (staged first
        by :meth:`stage_model`), by a transfer Job of its own in the model's namespace.

        A runtime pod mounts only claims of its own namespace, and the model's namespace
        holds every runtime of the model, so the adapters live in the model's claim. The Job
        resumes from the files the directory holds: an unchanged adapter copies nothing.
        ``scheduling`` must be the model's: the Job mounts the model's claim, which a
        node-local volume binds to the tainted or labelled pool the model's Job ran on.
        """
        check_model_name(model_name)
        check_model_name(adapter_dir)
        _check_pod_readable(source, "adapter")
        namespace = namespace_for(self._prefix, model_name)
        release = model_release_for(model_name)
        pvc = f"{release}-model"
        try:
            claim = kube.get_object(
                self._api,
                kube.ObjectRef("PersistentVolumeClaim", pvc, namespace),
                timeout_s=self._timeouts.api_s,
            )
        except kube.KubernetesError as exc:
            raise wrap(exc, f"find the volume of model {model_name}") from exc
        if claim is None:
            raise KubernetesTargetError(
                f"model {model_name} has no volume ({namespace}/{pvc}) to stage adapter "
                f"{adapter_dir} into; stage the model first"
            )
        placement = scheduling or PodScheduling()
        secret = source_secret(source, namespace, release)
        values = transfer_values(
            image=self._image,
            model_name=adapter_dir,
            source_uri=source.uri,
            model_bytes=_source_bytes(source),
            s3_secret=secret["metadata"]["name"] if secret else "",
            node_name=nodes[0] if len(nodes) == 1 else None,
            pvc_name=pvc,
            job_name=adapter_job_for(release, adapter_dir),
            tolerations=placement.tolerations,
            node_selector=placement.node_selector,
        )
        return self._stage(source, adapter_dir, nodes, progress, namespace, release, values, secret)

    def _stage(
        self,
        source: ModelSourceSpec,
        name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None,
        namespace: str,
        release: str,
        values: dict[str, Any],
        secret: dict[str, Any] | None,
    ) -> StagedModel:
        started = time.monotonic()
        try:
            result = self._transfer(name, progress, namespace, release, values, secret)
        except BaseException:
            # The failure is what the caller needs to see; a Secret this cannot delete now
            # (API server gone) is swept by the next staging or rollback.
            with contextlib.suppress(kube.KubernetesError):
                self._remove_source_secret(namespace, secret)
            raise
        try:
            self._remove_source_secret(namespace, secret)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"delete the S3 key Secret of {name}'s transfer") from exc
        summary = result.get("result") or {}
        return StagedModel(
            model_name=name,
            path=pvc_path(namespace, values["pvc"]["name"], values["modelName"]),
            nodes=list(nodes),
            files=int(summary.get("files", result.get("files_total", 0))),
            bytes=int(summary.get("bytes_total", result.get("bytes_total", 0))),
            bytes_copied=int(summary.get("bytes_copied", result.get("bytes_done", 0))),
            seconds=float(summary.get("seconds", time.monotonic() - started)),
            manifest_sha256=str(summary.get("manifest_sha256", "")),
        )

    def sweep_source_secrets(self, namespaces: set[str]) -> None:
        """Delete the S3 key Secrets a staging left behind (its worker was killed mid-transfer)."""
        for namespace in sorted(namespaces):
            items, _ = kube.list_objects(
                self._api, "Secret", namespace, timeout_s=self._timeouts.api_s
            )
            left = [kube.ObjectRef.of(item) for item in items if is_source_secret(item["metadata"])]
            kube.delete_objects(self._api, left, timeout_s=self._timeouts.api_s)

    def _transfer(
        self,
        name: str,
        progress: ProgressCallback | None,
        namespace: str,
        release: str,
        values: dict[str, Any],
        secret: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Run the transfer Job ``values`` describe to its end: its last progress payload."""
        job = values["jobName"] or f"{release}-transfer"
        try:
            self._ensure_namespace(namespace)
            extra = [secret] if secret else []
            objects = self._render("model_transfer", values, release, namespace)
            if values["pvc"]["create"]:
                objects = self._keep_claim_size(objects, values, release, namespace)
            # A Job's pod template is immutable: a rerun replaces the Job, and the new pod
            # resumes from the files the PVC already holds.
            self._remove_job(namespace, job)
            kube.apply_objects(
                self._api, [*extra, *objects], release, timeout_s=self._timeouts.api_s
            )
            return self._follow_transfer(namespace, job, progress)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"stage {name}") from exc

    def _keep_claim_size(
        self, objects: list[dict[str, Any]], values: dict[str, Any], release: str, namespace: str
    ) -> list[dict[str, Any]]:
        """``objects`` with the live claim's size where it already holds what they ask for.

        A claim never shrinks (the API server refuses), and growing one needs a storage class
        that allows expansion: a restage whose adapters need less room keeps the claim as it is.
        """
        claims = [o for o in objects if o.get("kind") == "PersistentVolumeClaim"]
        if not claims:
            return objects
        live = kube.get_object(
            self._api, kube.ObjectRef.of(claims[0]), timeout_s=self._timeouts.api_s
        )
        live_size = str(
            (((live or {}).get("spec") or {}).get("resources") or {})
            .get("requests", {})
            .get("storage", "")
        )
        wanted = str(claims[0]["spec"]["resources"]["requests"]["storage"])
        if not live_size or quantity_bytes(live_size) < quantity_bytes(wanted):
            return objects
        kept = dict(values, pvc=dict(values["pvc"], size=live_size))
        return self._render("model_transfer", kept, release, namespace)

    def _remove_source_secret(self, namespace: str, secret: Mapping[str, Any] | None) -> None:
        """The Job's pod read the keys when its container started; nothing needs them after."""
        if secret is not None:
            ref = kube.ObjectRef("Secret", str(secret["metadata"]["name"]), namespace)
            kube.delete_objects(self._api, [ref], timeout_s=self._timeouts.api_s)

    def _remove_job(self, namespace: str, job: str) -> None:
        ref = kube.ObjectRef("Job", job, namespace)
        if kube.get_object(self._api, ref, timeout_s=self._timeouts.api_s) is None:
            return
        kube.delete_objects(self._api, [ref], timeout_s=self._timeouts.api_s)
        kube.wait_for(
            self._api,
            "Job",
            namespace,
            lambda jobs: True if not jobs else None,
            field_selector=f"metadata.name={job}",
            timeout_s=self._timeouts.api_s * 4,
            what=f"old Job {job} gone",
        )

    def _follow_transfer(
        self, namespace: str, job: str, progress: ProgressCallback | None
    ) -> dict[str, Any]:
        progress_map = f"{job}-progress"
        started = time.monotonic()

        def report(maps: list[dict[str, Any]]) -> None:
            payload = progress_payload(cast(list[ConfigMapObject], maps))
            if progress is not None and payload:
                progress(
                    TransferProgress(
                        files_total=int(payload.get("files_total", 0) or 0),
                        files_done=int(payload.get("files_done", 0) or 0),
                        bytes_total=int(payload.get("bytes_total", 0) or 0),
                        bytes_done=int(payload.get("bytes_done", 0) or 0),
                        elapsed_s=time.monotonic() - started,
                    )
                )

        def finished(maps: list[dict[str, Any]]) -> dict[str, Any] | None:
            payload = progress_payload(cast(list[ConfigMapObject], maps))
            if payload.get("state") == "done":
                return payload
            if payload.get("state") == "failed":
                raise KubernetesTargetError(
                    f"model transfer Job {job} failed: {payload.get('message', payload)}"
                )
            status = self._job_status(namespace, job)
            if status == "Failed":
                raise KubernetesTargetError(
                    f"model transfer Job {job} failed; see `kubectl -n {namespace} logs job/{job}`"
                )
            if status == "Complete" and payload:
                return payload
            return None

        return kube.wait_for(
            self._api,
            "ConfigMap",
            namespace,
            finished,
            field_selector=f"metadata.name={progress_map}",
            on_change=report,
            timeout_s=self._timeouts.transfer_s,
            what=f"model transfer Job {job}",
        )

    def _job_status(self, namespace: str, job: str) -> str | None:
        found = kube.get_object(
            self._api, kube.ObjectRef("Job", job, namespace), timeout_s=self._timeouts.api_s
        )
        for condition in ((found or {}).get("status") or {}).get("conditions") or []:
            if condition.get("status") == "True" and condition.get("type") in (
                "Complete",
                "Failed",
            ):
                return str(condition["type"])
        return None


def _check_pod_readable(source: ModelSourceSpec, what: str) -> None:
    if "://" not in source.uri or source.uri.startswith("file://"):
        raise KubernetesTargetError(
            f"{what} uri {source.uri!r} is a directory on the controller, which a pod "
            "cannot read; put it in a bucket (s3://...) or a node's HF cache "
            "(hf://...) for a Kubernetes cluster"
        )


def _source_bytes(source: ModelSourceSpec) -> int:
    """The source's total size when the controller can list it (S3 can); else 0 (floor size)."""
    if not source.uri.startswith("s3://"):
        return 0
    try:
        from budcluster.transfer.uri import parse_source

        return sum(f.size for f in parse_source(source.uri, source.credentials_env).list_files())
    except (BudClusterError, OSError):
        return 0
