"""The ``kubernetes`` cluster target: Kubernetes and OpenShift through Helm charts.

Charts are rendered offline by the Helm adapter and applied by the Kubernetes adapter under
a release label (``budcluster.io/release``), so listing, deleting and rolling back are exact.
This module does the I/O; what it computes from the objects it reads lives in the pure
modules beside it (``names``, ``values``, ``nodes``, ``status``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client as k8s_client

from budcluster.adapters import helm
from budcluster.adapters import kubernetes as kube
from budcluster.endpoints import EndpointCheck, EndpointNotReady
from budcluster.errors import BudClusterError
from budcluster.gateway import MASTER_KEY_SECRET_KEY, GatewayCheck, GatewayRoute
from budcluster.hardware.inventory import DevicesInUse, NodeInventory
from budcluster.targets.base import (
    AccessReport,
    ModelSourceSpec,
    ProgressCallback,
    RolloutSpec,
    RuntimeState,
    RuntimeStatus,
    StagedModel,
    TransferProgress,
)
from budcluster.targets.kubernetes.errors import (
    KubernetesTargetError,
    KubernetesTargetTemporary,
    wrap,
)
from budcluster.targets.kubernetes.names import (
    COLLECTOR_RELEASE,
    NODE_INFO_PREFIX,
    check_model_name,
    is_source_secret,
    model_release_for,
    namespace_for,
    parse_pvc_path,
    pvc_path,
    release_for,
)
from budcluster.targets.kubernetes.nodes import (
    HOLDING_PODS_SELECTOR,
    RUNTIME_SELECTOR,
    SERVED_MODEL_ANNOTATION,
    NodeState,
    devices_in_use,
    node_state,
    reconcile_node,
)
from budcluster.targets.kubernetes.objects import (
    ConfigMapObject,
    DeploymentObject,
    EventObject,
    NodeObject,
    PodObject,
)
from budcluster.targets.kubernetes.probe import ServiceProbe
from budcluster.targets.kubernetes.status import (
    progress_payload,
    raise_unless_serving,
    runtime_state,
)
from budcluster.targets.kubernetes.values import runtime_values, source_secret, transfer_values

CHARTS_DIR = Path(__file__).resolve().parents[3] / "charts"


@dataclass(frozen=True)
class KubernetesTimeouts:
    api_s: float = 30.0
    detect_s: float = 300.0
    transfer_s: float = 6 * 3600.0
    ready_s: float = 1800.0
    render_s: float = 60.0
    resync_s: float = 10.0
    """Longest a wait goes without re-reading state its watch does not cover."""
    endpoint_poll_s: float = 2.0
    """Pause between two endpoint checks through the Service while it does not serve yet."""


class KubernetesTarget:
    """``ClusterTarget`` over one API server (Kubernetes or OpenShift)."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        namespace_prefix: str = "bud",
        image: str = "ghcr.io/budecosystem/bud-serve-cluster:0.1.0",
        timeouts: KubernetesTimeouts | None = None,
        charts_dir: Path = CHARTS_DIR,
        tolerations: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self._api = api_client
        self._prefix = namespace_prefix
        self._image = image
        self._timeouts = timeouts or KubernetesTimeouts()
        self._charts = charts_dir
        self._tolerations = list(tolerations)
        self._kind: str | None = None
        self.node_states: dict[str, NodeState] = {}
        """What the last ``detect_nodes``/``node_health`` saw, for the flow to record."""
        self.last_manifests: list[dict[str, Any]] = []
        """The objects the last ``roll_out`` applied: store them as the revision."""

    # -- helpers

    @property
    def system_namespace(self) -> str:
        return f"{self._prefix}-system"

    def _render(
        self, chart: str, values: Mapping[str, Any], release: str, namespace: str
    ) -> list[dict[str, Any]]:
        try:
            return helm.render_chart(
                self._charts / chart, values, release, namespace, timeout_s=self._timeouts.render_s
            )
        except helm.HelmError as exc:
            raise KubernetesTargetError(f"chart {chart}: {exc}") from exc

    def _ensure_namespace(self, namespace: str) -> None:
        kube.apply_objects(
            self._api,
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}],
            release=namespace,
            timeout_s=self._timeouts.api_s,
        )

    def _is_openshift(self) -> bool:
        if self._kind is None:
            self._kind = kube.platform_kind(
                kube.served_api_groups(self._api, timeout_s=self._timeouts.api_s)
            )
        return self._kind == "openshift"

    # -- ClusterTarget

    def verify_access(self) -> AccessReport:
        try:
            version = kube.server_version(self._api, timeout_s=self._timeouts.api_s)
            self._kind = kube.platform_kind(
                kube.served_api_groups(self._api, timeout_s=self._timeouts.api_s)
            )
            nodes, _ = kube.list_objects(self._api, "Node", None, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise wrap(exc, "verify access") from exc
        return AccessReport(
            kind=self._kind,
            nodes=sorted(n["metadata"]["name"] for n in nodes),
            server_version=version,
            server_url=str(self._api.configuration.host),
            detail=f"{self._kind} {version}, {len(nodes)} nodes",
        )

    def node_health(self) -> dict[str, NodeState]:
        """Readiness, schedulability, taints and pressure of every node (cluster-health)."""
        try:
            nodes, _ = kube.list_objects(self._api, "Node", None, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise wrap(exc, "list nodes") from exc
        self.node_states = {n["metadata"]["name"]: node_state(cast(NodeObject, n)) for n in nodes}
        return self.node_states

    def detect_nodes(self) -> list[NodeInventory]:
        namespace = self.system_namespace
        try:
            nodes, _ = kube.list_objects(self._api, "Node", None, timeout_s=self._timeouts.api_s)
            states = {n["metadata"]["name"]: node_state(cast(NodeObject, n)) for n in nodes}
            self.node_states = states
            self._ensure_namespace(namespace)
            objects = self._render(
                "node_info_collector", {"image": self._image}, COLLECTOR_RELEASE, namespace
            )
            kube.apply_objects(
                self._api, objects, COLLECTOR_RELEASE, timeout_s=self._timeouts.api_s
            )
            wanted = {f"{NODE_INFO_PREFIX}{name}" for name, s in states.items() if s.ready}

            def all_reported(maps: list[dict[str, Any]]) -> dict[str, str] | None:
                found = {
                    m["metadata"]["name"]: (m.get("data") or {}).get("inventory.json", "")
                    for m in maps
                }
                return found if wanted <= {k for k, v in found.items() if v} else None

            reports = kube.wait_for(
                self._api,
                "ConfigMap",
                namespace,
                all_reported,
                timeout_s=self._timeouts.detect_s,
                what=f"node-info ConfigMaps of {len(wanted)} ready nodes",
            )
        except kube.KubernetesError as exc:
            raise wrap(exc, "detect nodes") from exc
        in_use, refused = self._devices_in_use([str(n["metadata"]["name"]) for n in nodes])
        inventories = []
        for node in sorted(nodes, key=lambda n: str(n["metadata"]["name"])):
            name = str(node["metadata"]["name"])
            inventory = reconcile_node(
                reports.get(f"{NODE_INFO_PREFIX}{name}"),
                cast(NodeObject, node),
                states[name],
                in_use.get(name, ()),
            )
            if refused:
                inventory = inventory.model_copy(update={"notes": [*inventory.notes, refused]})
            inventories.append(inventory)
        return inventories

    def _devices_in_use(
        self, nodes: Sequence[str]
    ) -> tuple[dict[str, list[DevicesInUse]], str | None]:
        """Per node, what its non-terminated pods request (``kubectl describe node``'s
        "Allocated resources"), and a note when the API server refuses to say."""
        try:
            deployments, _ = kube.list_objects(
                self._api,
                "Deployment",
                None,
                label_selector=RUNTIME_SELECTOR,
                timeout_s=self._timeouts.api_s,
            )
            runtimes = {
                (str(d["metadata"].get("namespace")), str(d["metadata"]["name"])): str(served)
                for d in deployments
                if (served := (d["metadata"].get("annotations") or {}).get(SERVED_MODEL_ANNOTATION))
            }
            found: dict[str, list[DevicesInUse]] = {}
            for node in nodes:
                pods, _ = kube.list_objects(
                    self._api,
                    "Pod",
                    None,
                    field_selector=HOLDING_PODS_SELECTOR.format(node=node),
                    timeout_s=self._timeouts.api_s,
                )
                found[node] = devices_in_use(cast(list[PodObject], pods), runtimes)
        except kube.KubernetesApiError as exc:
            if exc.status != 403:
                raise wrap(exc, "list the pods on each node") from exc
            # Without the right to list pods the planner still works, on what the tools see.
            return {}, (
                f"kubernetes: devices other pods hold are not counted ({exc}); give the "
                "kubeconfig's user list on pods and deployments in all namespaces"
            )
        except kube.KubernetesError as exc:
            raise wrap(exc, "list the pods on each node") from exc
        return found, None

    def stage_model(
        self,
        source: ModelSourceSpec,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
    ) -> StagedModel:
        check_model_name(model_name)
        if "://" not in source.uri or source.uri.startswith("file://"):
            raise KubernetesTargetError(
                f"model uri {source.uri!r} is a directory on the controller, which a pod "
                "cannot read; put the model in a bucket (s3://...) or a node's HF cache "
                "(hf://...) for a Kubernetes cluster"
            )
        namespace = namespace_for(self._prefix, model_name)
        release = model_release_for(model_name)
        pvc = f"{release}-model"
        started = time.monotonic()
        secret = source_secret(source, namespace, release)
        try:
            result, values = self._transfer(
                source, model_name, nodes, progress, namespace, release, secret
            )
        except BaseException:
            # The failure is what the caller needs to see; a Secret this cannot delete now
            # (API server gone) is swept by the next staging or rollback.
            with contextlib.suppress(kube.KubernetesError):
                self._remove_source_secret(namespace, secret)
            raise
        try:
            self._remove_source_secret(namespace, secret)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"delete the S3 key Secret of {model_name}'s transfer") from exc
        summary = result.get("result") or {}
        return StagedModel(
            model_name=model_name,
            path=pvc_path(namespace, pvc, values["modelName"]),
            nodes=list(nodes),
            files=int(summary.get("files", result.get("files_total", 0))),
            bytes=int(summary.get("bytes_total", result.get("bytes_total", 0))),
            bytes_copied=int(summary.get("bytes_copied", result.get("bytes_done", 0))),
            seconds=float(summary.get("seconds", time.monotonic() - started)),
            manifest_sha256=str(summary.get("manifest_sha256", "")),
        )

    def _transfer(
        self,
        source: ModelSourceSpec,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None,
        namespace: str,
        release: str,
        secret: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the transfer Job to its end: (its last progress payload, the chart values)."""
        pvc = f"{release}-model"
        job = f"{release}-transfer"
        try:
            self._ensure_namespace(namespace)
            extra = [secret] if secret else []
            values = transfer_values(
                image=self._image,
                model_name=model_name,
                source_uri=source.uri,
                model_bytes=_source_bytes(source),
                s3_secret=secret["metadata"]["name"] if secret else "",
                node_name=nodes[0] if len(nodes) == 1 else None,
                pvc_name=pvc,
            )
            objects = self._render("model_transfer", values, release, namespace)
            # A Job's pod template is immutable: a rerun replaces the Job, and the new pod
            # resumes from the files the PVC already holds.
            self._remove_job(namespace, job)
            kube.apply_objects(
                self._api, [*extra, *objects], release, timeout_s=self._timeouts.api_s
            )
            result = self._follow_transfer(namespace, job, progress)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"stage model {model_name}") from exc
        return result, values

    def _remove_source_secret(self, namespace: str, secret: Mapping[str, Any] | None) -> None:
        """The Job's pod read the keys when its container started; nothing needs them after."""
        if secret is not None:
            ref = kube.ObjectRef("Secret", str(secret["metadata"]["name"]), namespace)
            kube.delete_objects(self._api, [ref], timeout_s=self._timeouts.api_s)

    def _sweep_source_secrets(self, namespaces: set[str]) -> None:
        """Delete the S3 key Secrets a staging left behind (its worker was killed mid-transfer)."""
        for namespace in sorted(namespaces):
            items, _ = kube.list_objects(
                self._api, "Secret", namespace, timeout_s=self._timeouts.api_s
            )
            left = [kube.ObjectRef.of(item) for item in items if is_source_secret(item["metadata"])]
            kube.delete_objects(self._api, left, timeout_s=self._timeouts.api_s)

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

    def apply_release(
        self, chart: str, values: Mapping[str, Any], release: str, namespace: str
    ) -> list[dict[str, Any]]:
        """Render ``chart`` with ``values`` as ``release`` in ``namespace`` (created when
        missing) and apply every object under the release label.

        Returns the applied objects as rendered, release label included; they are also
        ``last_manifests``. Keep them (store, artifact): they are what ``rollback`` and
        ``delete`` work from.
        """
        objects = self._render(chart, values, release, namespace)
        try:
            self._ensure_namespace(namespace)
            kube.apply_objects(self._api, objects, release, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"apply {chart} as release {release} in {namespace}") from exc
        self.last_manifests = [kube.with_release_label(o, release) for o in objects]
        return list(self.last_manifests)

    def roll_out(self, spec: RolloutSpec) -> RuntimeStatus:
        namespace, claim, subdir = parse_pvc_path(spec.model_path)
        release = release_for(spec.deployment_name)
        try:
            values = runtime_values(
                spec,
                pvc_name=claim,
                subdir=subdir,
                openshift=self._is_openshift(),
                tolerations=self._tolerations,
            )
        except kube.KubernetesError as exc:
            raise wrap(exc, f"roll out {spec.deployment_name}") from exc
        self.apply_release("bud_runtime_container", values, release, namespace)
        return RuntimeStatus(
            state=RuntimeState.STARTING,
            endpoint_url=f"http://{release}.{namespace}.svc:{spec.port}",
            detail={
                "namespace": namespace,
                "release": release,
                "manifests": yaml.safe_dump_all(self.last_manifests, sort_keys=True),
            },
        )

    def _find(self, deployment_name: str) -> tuple[str, dict[str, Any]] | None:
        release = release_for(deployment_name)
        items, _ = kube.list_objects(
            self._api,
            "Deployment",
            None,
            label_selector=f"{kube.RELEASE_LABEL}={release}",
            timeout_s=self._timeouts.api_s,
        )
        if not items:
            return None
        return str(items[0]["metadata"]["namespace"]), items[0]

    def status(self, deployment_name: str) -> RuntimeStatus:
        release = release_for(deployment_name)
        try:
            found = self._find(deployment_name)
            if found is None:
                return RuntimeStatus(state=RuntimeState.ABSENT)
            namespace, deployment = found
            return self._status_in(namespace, release, deployment)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"status of {deployment_name}") from exc

    def _status_in(
        self, namespace: str, release: str, deployment: Mapping[str, Any]
    ) -> RuntimeStatus:
        pods, _ = kube.list_objects(
            self._api,
            "Pod",
            namespace,
            label_selector=f"app.kubernetes.io/instance={release}",
            timeout_s=self._timeouts.api_s,
        )
        events: list[dict[str, Any]] = []
        for pod in pods:
            events.extend(
                kube.events_for(
                    self._api,
                    namespace,
                    kind="Pod",
                    name=pod["metadata"]["name"],
                    timeout_s=self._timeouts.api_s,
                )
            )
        state, reason = runtime_state(
            cast(DeploymentObject, deployment),
            cast(list[PodObject], pods),
            cast(list[EventObject], events),
        )
        log_tail: list[str] = []
        if pods and state is not RuntimeState.RUNNING:
            log_tail = kube.pod_log_tail(
                self._api, namespace, pods[0]["metadata"]["name"], timeout_s=self._timeouts.api_s
            )
        port = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {})
        container_ports = [
            p.get("containerPort") for c in port.get("containers", []) for p in c.get("ports", [])
        ]
        url_port = container_ports[0] if container_ports else 8000
        return RuntimeStatus(
            state=state,
            endpoint_url=f"http://{release}.{namespace}.svc:{url_port}",
            reason=reason,
            log_tail=log_tail,
            detail={"namespace": namespace, "release": release, "pods": str(len(pods))},
        )

    def wait_until_settled(
        self, deployment_name: str, timeout_s: float | None = None
    ) -> RuntimeStatus:
        """Watch the release's pods until it runs or fails (a reason is known) or time runs out."""
        try:
            found = self._find(deployment_name)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"wait for {deployment_name}") from exc
        if found is None:
            return RuntimeStatus(state=RuntimeState.ABSENT)
        return self.wait_for_release(
            found[0], release_for(deployment_name), timeout_s, what=f"deployment {deployment_name}"
        )

    def release_deployment(self, namespace: str, release: str) -> dict[str, Any] | None:
        """The release's Deployment as the API server has it now, or None."""
        try:
            items, _ = kube.list_objects(
                self._api,
                "Deployment",
                namespace,
                label_selector=f"{kube.RELEASE_LABEL}={release}",
                timeout_s=self._timeouts.api_s,
            )
        except kube.KubernetesNotFound:
            return None  # the namespace does not exist (yet)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"find the Deployment of release {release}") from exc
        return items[0] if items else None

    def release_status(self, namespace: str, release: str) -> RuntimeStatus:
        """State, reason and log tail of the release's Deployment (any chart's)."""
        deployment = self.release_deployment(namespace, release)
        if deployment is None:
            return RuntimeStatus(state=RuntimeState.ABSENT)
        try:
            return self._status_in(namespace, release, deployment)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"status of release {release}") from exc

    def wait_for_release(
        self, namespace: str, release: str, timeout_s: float | None = None, *, what: str = ""
    ) -> RuntimeStatus:
        """Watch the release's pods until its Deployment runs or fails or time runs out.

        RUNNING means the rollout is complete (``rollout_complete``); FAILED carries the
        reason from the pods and their events. Raises KubernetesTargetTemporary when
        ``timeout_s`` (default ``KubernetesTimeouts.ready_s``) passes first.
        """
        what = what or f"release {release}"

        def settled(_pods: list[dict[str, Any]]) -> RuntimeStatus | None:
            current = self.release_deployment(namespace, release)
            if current is None:
                return RuntimeStatus(state=RuntimeState.ABSENT)
            status = self._status_in(namespace, release, current)
            return status if status.state is not RuntimeState.STARTING else None

        try:
            return kube.wait_for(
                self._api,
                "Pod",
                namespace,
                settled,
                label_selector=f"app.kubernetes.io/instance={release}",
                timeout_s=timeout_s or self._timeouts.ready_s,
                what=f"{what} ready",
                resync_s=self._timeouts.resync_s,
            )
        except kube.KubernetesError as exc:
            raise wrap(exc, f"wait for {what}") from exc

    def verify_endpoint(
        self, deployment_name: str, served_model_name: str, timeout_s: float
    ) -> EndpointCheck:
        """Wait until the rollout is complete, then prove the Service serves the model.

        The checks go through the API server's service proxy with this target's client and
        credentials (``services/<release>:<port>/proxy/...``), so they need no network path
        from here to the pods: ``/health`` answers 200, ``/v1/models`` lists
        ``served_model_name``, and a completion of 8 tokens returns tokens. A Service that
        does not answer yet is asked again every ``endpoint_poll_s`` until ``timeout_s``.

        Raises KubernetesRuntimeFailed (reason and log tail) when the pods fail, before or
        during the checks; EndpointWrongModel when another name is served; EndpointNotReady
        when time runs out.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        try:
            settled = self.wait_until_settled(deployment_name, timeout_s)
        except KubernetesTargetTemporary as exc:
            raise EndpointNotReady(
                f"{deployment_name} did not become ready within {timeout_s:.0f} s: {exc}"
            ) from exc
        raise_unless_serving(deployment_name, settled)
        namespace, release = settled.detail["namespace"], settled.detail["release"]
        try:
            port = self._service_port(namespace, release)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"find the Service of {deployment_name}") from exc
        probe = ServiceProbe(self._api, namespace, release, port)
        while True:
            left = deadline - time.monotonic()
            try:
                served, tokens, text = probe.check(
                    served_model_name, max(1.0, min(self._timeouts.api_s, left))
                )
            except EndpointNotReady as exc:
                if left <= 0:
                    raise EndpointNotReady(
                        f"{deployment_name} did not serve through its Service within "
                        f"{timeout_s:.0f} s: {exc}"
                    ) from exc
            else:
                return EndpointCheck(
                    base_url=probe.base_url,
                    served_models=served,
                    completion_tokens=tokens,
                    completion_text=text,
                    seconds_waited=time.monotonic() - started,
                )
            # A runtime that dies while the checks wait fails now, with its reason.
            raise_unless_serving(deployment_name, self.status(deployment_name), starting=True)
            time.sleep(max(0.0, min(self._timeouts.endpoint_poll_s, deadline - time.monotonic())))

    def verify_gateway(
        self,
        namespace: str,
        release: str,
        routes: Sequence[GatewayRoute],
        timeout_s: float,
        *,
        master_key_secret: str | None = None,
    ) -> GatewayCheck:
        """Wait until the gateway's rollout is complete, then prove it routes through its
        Service (the API server's service proxy, as ``verify_endpoint``):
        ``/health/liveliness`` answers 200, ``/v1/models`` lists every routed model, and a
        one-token completion of each routed model returns, so every ``api_base`` reaches
        its runtime.

        With ``master_key_secret`` (a Secret in ``namespace``, key ``master-key``, as the
        chart reads it) the key is read from the Secret once the rollout is done;
        ``/v1/models`` must first refuse a request without it (401, ``key_enforced``), then
        the routes are called with it in ``x-litellm-api-key`` (the API server's proxy
        consumes ``Authorization``). The key is never logged nor returned, and error
        messages never contain it. Raises KubernetesRuntimeFailed when the gateway's pods
        fail (a missing Secret is their CreateContainerConfigError); KubernetesTargetError
        when the key is refused; EndpointNotReady when the checks do not pass within
        ``timeout_s``.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        what = f"gateway {release} in {namespace}"
        try:
            settled = self.wait_for_release(namespace, release, timeout_s, what=what)
        except KubernetesTargetTemporary as exc:
            raise EndpointNotReady(
                f"{what} did not become ready within {timeout_s:.0f} s: {exc}"
            ) from exc
        raise_unless_serving(what, settled)
        try:
            port = self._service_port(namespace, release)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"find the Service of {what}") from exc
        key = self._gateway_key(namespace, master_key_secret, what) if master_key_secret else None
        probe = ServiceProbe(self._api, namespace, release, port)
        while True:
            left = deadline - time.monotonic()
            try:
                check = probe.gateway_check(routes, key, max(1.0, min(self._timeouts.api_s, left)))
            except EndpointNotReady as exc:
                if left <= 0:
                    raise EndpointNotReady(
                        f"{what} did not route through its Service within {timeout_s:.0f} s: {exc}"
                    ) from exc
            else:
                return replace(check, seconds_waited=time.monotonic() - started)
            raise_unless_serving(what, self.release_status(namespace, release), starting=True)
            time.sleep(max(0.0, min(self._timeouts.endpoint_poll_s, deadline - time.monotonic())))

    def _gateway_key(self, namespace: str, secret: str, what: str) -> str:
        try:
            return kube.secret_value(
                self._api, namespace, secret, MASTER_KEY_SECRET_KEY, timeout_s=self._timeouts.api_s
            )
        except kube.KubernetesError as exc:
            raise wrap(
                exc,
                f"read the master key of {what} (the kubeconfig's user needs get on secrets "
                f"in {namespace})",
            ) from exc

    def _service_port(self, namespace: str, release: str) -> str:
        """The release's Service port to proxy to: its name, else its number."""
        service = kube.get_object(
            self._api, kube.ObjectRef("Service", release, namespace), timeout_s=self._timeouts.api_s
        )
        ports = ((service or {}).get("spec") or {}).get("ports") or []
        if not ports:
            raise KubernetesTargetError(
                f"release {release} has no Service with a port in {namespace}; "
                "roll it out again (the bud_runtime_container chart creates one)"
            )
        return str(ports[0].get("name") or ports[0]["port"])

    def delete(self, deployment_name: str) -> None:
        release = release_for(deployment_name)
        try:
            found = self._find(deployment_name)
            namespaces = {found[0]} if found else set()
            if self.last_manifests:
                namespaces.update(
                    str(o["metadata"].get("namespace"))
                    for o in self.last_manifests
                    if o["metadata"].get("labels", {}).get(kube.RELEASE_LABEL) == release
                )
            for namespace in sorted(namespaces):
                refs = kube.list_release(
                    self._api, release, namespace, timeout_s=self._timeouts.api_s
                )
                kube.delete_objects(self._api, refs, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"delete {deployment_name}") from exc

    def undo_rollout(
        self, deployment_name: str, previous: Sequence[Mapping[str, Any]] | None
    ) -> RuntimeStatus:
        """What a failed or timed-out rollout ends with: back to the previous revision's
        manifests, or, when this was the first revision, delete what the rollout created.
        Either way, S3 key Secrets an interrupted staging left in its namespace go too."""
        release = release_for(deployment_name)
        try:
            found = self._find(deployment_name)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"undo the rollout of {deployment_name}") from exc
        namespaces = {found[0]} if found else set()
        for manifest in [*(previous or ()), *self.last_manifests]:
            meta = manifest.get("metadata") or {}
            if meta.get("namespace") and (
                previous or (meta.get("labels") or {}).get(kube.RELEASE_LABEL) == release
            ):
                namespaces.add(str(meta["namespace"]))
        if previous:
            status = self.rollback(deployment_name, previous)
        else:
            self.delete(deployment_name)
            status = self.status(deployment_name)
        try:
            self._sweep_source_secrets(namespaces)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"remove leftover S3 key Secrets of {deployment_name}") from exc
        return status

    def rollback(
        self, deployment_name: str, manifests: Sequence[Mapping[str, Any]]
    ) -> RuntimeStatus:
        """Re-apply a stored revision's objects and delete the release's objects it lacks."""
        release = release_for(deployment_name)
        try:
            wanted = {kube.ObjectRef.of(o) for o in manifests}
            namespaces = {r.namespace for r in wanted if r.namespace}
            for namespace in sorted(namespaces):
                current = kube.list_release(
                    self._api, release, namespace, timeout_s=self._timeouts.api_s
                )
                kube.delete_objects(
                    self._api,
                    [r for r in current if r not in wanted],
                    timeout_s=self._timeouts.api_s,
                )
            kube.apply_objects(self._api, list(manifests), release, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"roll back {deployment_name}") from exc
        self.last_manifests = [kube.with_release_label(o, release) for o in manifests]
        return self.status(deployment_name)


def _source_bytes(source: ModelSourceSpec) -> int:
    """The source's total size when the controller can list it (S3 can); else 0 (floor size)."""
    if not source.uri.startswith("s3://"):
        return 0
    try:
        from budcluster.transfer.uri import parse_source

        return sum(f.size for f in parse_source(source.uri, source.credentials_env).list_files())
    except (BudClusterError, OSError):
        return 0
