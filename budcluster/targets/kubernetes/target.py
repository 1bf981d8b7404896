"""The ``kubernetes`` cluster target: Kubernetes and OpenShift through Helm charts.

Charts are rendered offline by the Helm adapter and applied by the Kubernetes adapter under
a release label (``budcluster.io/release``), so listing, deleting and rolling back are exact.
This module does the I/O of access, rollouts, status, rollback and deletion; model staging
(:mod:`.staging`), node detection (:mod:`.node_detection`) and endpoint verification
(:mod:`.verification`) are I/O modules of their own that the target delegates to. What they
compute from the objects they read lives in the pure modules beside them (``names``,
``values``, ``nodes``, ``status``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client as k8s_client

from budcluster.adapters import helm
from budcluster.adapters import kubernetes as kube
from budcluster.endpoints import EndpointCheck
from budcluster.gateway import GatewayCheck, GatewayRoute
from budcluster.hardware.inventory import NodeInventory
from budcluster.targets.base import (
    AccessReport,
    ModelSourceSpec,
    PodScheduling,
    ProgressCallback,
    RolloutSpec,
    RuntimeState,
    RuntimeStatus,
    StagedModel,
)
from budcluster.targets.kubernetes.errors import KubernetesTargetError, wrap
from budcluster.targets.kubernetes.names import COLLECTOR_RELEASE, parse_pvc_path, release_for
from budcluster.targets.kubernetes.node_detection import NodeDetection
from budcluster.targets.kubernetes.nodes import NodeState, node_lost, pinned_node
from budcluster.targets.kubernetes.objects import (
    DeploymentObject,
    EventObject,
    NodeObject,
    PodObject,
)
from budcluster.targets.kubernetes.scc import check_scc_name
from budcluster.targets.kubernetes.scc_grants import grant_scc
from budcluster.targets.kubernetes.staging import ModelStaging
from budcluster.targets.kubernetes.status import runtime_state
from budcluster.targets.kubernetes.timeouts import KubernetesTimeouts
from budcluster.targets.kubernetes.values import runtime_values
from budcluster.targets.kubernetes.verification import EndpointVerifier

CHARTS_DIR = Path(__file__).resolve().parents[3] / "charts"
KEDA_SCALED_OBJECTS = ("keda.sh/v1alpha1", "scaledobjects")
"""Where KEDA's ScaledObject is served once its CRD is installed."""
AUTOSCALER_KINDS = ("HorizontalPodAutoscaler", "ScaledObject")
# The charts that run the bud-serve-cluster image pin its user (UID/GID/fsGroup 10001, the
# Containerfile's USER). OpenShift's restricted-v2 SCC rejects a pinned UID outside the
# namespace's range and assigns one itself, so there they only ask for a non-root user.
# Helm merges values into the chart's defaults; a null removes a default key.
TOOLS_IMAGE_CHARTS = frozenset({"node_info_collector", "model_transfer"})
OPENSHIFT_POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": None,
    "runAsGroup": None,
    "fsGroup": None,
    "seccompProfile": {"type": "RuntimeDefault"},
}

__all__ = ["CHARTS_DIR", "KubernetesTarget", "KubernetesTimeouts"]


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
        collector_values: Mapping[str, Any] | None = None,
    ) -> None:
        """``collector_values``: the node_info_collector's placement overrides (per-variant
        runtimeClassName, nodeSelector, affinity, tolerations; see ``values.collector_values``)."""
        self._api = api_client
        self._prefix = namespace_prefix
        self._image = image
        self._timeouts = timeouts or KubernetesTimeouts()
        # Every call the target and its helpers make through this client retries for as
        # long as the timeouts say.
        kube.set_retry_deadline(api_client, self._timeouts.api_retry_s)
        self._charts = charts_dir
        self._tolerations = list(tolerations)
        self._kind: str | None = None
        self.last_manifests: list[dict[str, Any]] = []
        """The objects the last ``roll_out`` applied: store them as the revision."""
        self._nodes = NodeDetection(
            api_client,
            system_namespace=self.system_namespace,
            image=image,
            timeouts=self._timeouts,
            render=self._render,
            ensure_namespace=self._ensure_namespace,
            collector_overrides=collector_values,
        )
        self._staging = ModelStaging(
            api_client,
            namespace_prefix=namespace_prefix,
            image=image,
            timeouts=self._timeouts,
            render=self._render,
            ensure_namespace=self._ensure_namespace,
        )
        self._verifier = EndpointVerifier(api_client, self, timeouts=self._timeouts)

    @property
    def node_states(self) -> dict[str, NodeState]:
        """What the last ``detect_nodes``/``node_health`` saw, for the flow to record."""
        return self._nodes.node_states

    @node_states.setter
    def node_states(self, states: dict[str, NodeState]) -> None:
        self._nodes.node_states = states

    # -- helpers

    @property
    def system_namespace(self) -> str:
        return f"{self._prefix}-system"

    def _render(
        self, chart: str, values: Mapping[str, Any], release: str, namespace: str
    ) -> list[dict[str, Any]]:
        if chart in TOOLS_IMAGE_CHARTS and self._is_openshift():
            values = {**values, "podSecurityContext": OPENSHIFT_POD_SECURITY_CONTEXT}
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
        return self._nodes.node_health()

    def detect_nodes(self) -> list[NodeInventory]:
        return self._nodes.detect_nodes()

    def grant_collector_scc(self, scc: str) -> list[str]:
        """On OpenShift, let the node-info collector's service account use ``scc`` (before
        ``detect_nodes`` creates its pods: SCC admission happens when a pod is created).

        Returns ``Kind/name`` of each object written; on plain Kubernetes, which has no
        SCCs, it writes nothing and returns ``[]``. Idempotent.
        """
        check_scc_name(scc)
        namespace = self.system_namespace
        try:
            if not self._is_openshift():
                return []
            self._ensure_namespace(namespace)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"grant SCC {scc} in {namespace}") from exc
        return grant_scc(
            self._api, scc, namespace, COLLECTOR_RELEASE, timeout_s=self._timeouts.api_s
        )

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
        return self._staging.stage_model(
            source, model_name, nodes, progress, scheduling, adapter_sources=adapter_sources
        )

    def stage_adapter(
        self,
        source: ModelSourceSpec,
        adapter_dir: str,
        model_name: str,
        nodes: Sequence[str],
        progress: ProgressCallback | None = None,
        scheduling: PodScheduling | None = None,
    ) -> StagedModel:
        """Copy a LoRA adapter into ``adapter_dir`` of the model's PVC (see
        :meth:`ModelStaging.stage_adapter`); ``scheduling`` is the model's."""
        return self._staging.stage_adapter(
            source, adapter_dir, model_name, nodes, progress, scheduling
        )

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
            keda = spec.autoscaling is not None and kube.serves_resource(
                self._api, *KEDA_SCALED_OBJECTS, timeout_s=self._timeouts.api_s
            )
            values = runtime_values(
                spec,
                pvc_name=claim,
                subdir=subdir,
                openshift=self._is_openshift(),
                tolerations=[*self._tolerations, *spec.scheduling.tolerations],
                node_selector=spec.scheduling.node_selector,
                namespace=namespace,
                release=release,
                keda=keda,
            )
        except kube.KubernetesError as exc:
            raise wrap(exc, f"roll out {spec.deployment_name}") from exc
        applied = self.apply_release("bud_runtime_container", values, release, namespace)
        try:
            # Autoscaling turned off, or KEDA installed since: never two autoscalers at once.
            kube.prune_release(
                self._api,
                release,
                namespace,
                applied,
                kinds=AUTOSCALER_KINDS,
                timeout_s=self._timeouts.api_s,
            )
        except kube.KubernetesError as exc:
            raise wrap(exc, f"remove the stale autoscaler of release {release}") from exc
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
        # Every node the release's pods were bound to during the wait: when one is lost
        # (NotReady, or deleted) its pods are evicted and their replacements may fit
        # nowhere, and the scheduler's message does not name the node that went away.
        bound: set[str] = set()

        def settled(pods: list[dict[str, Any]]) -> RuntimeStatus | None:
            bound.update(str(p["spec"]["nodeName"]) for p in pods if p["spec"].get("nodeName"))
            current = self.release_deployment(namespace, release)
            if current is None:
                return RuntimeStatus(state=RuntimeState.ABSENT)
            status = self._status_in(namespace, release, current)
            if status.state is RuntimeState.STARTING:
                return None
            if status.state is RuntimeState.FAILED:
                return self._with_lost_nodes(status, current, bound)
            return status

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

    def _with_lost_nodes(
        self, status: RuntimeStatus, deployment: Mapping[str, Any], bound: set[str]
    ) -> RuntimeStatus:
        """A failed status whose reason also names each lost node the release ran on or is
        pinned to, so the error says which node went away rather than only that no node
        fits."""
        template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        pinned = pinned_node(template)
        candidates = sorted(bound | ({pinned} if pinned else set()))
        lost = []
        for name in candidates:
            node = kube.get_object(
                self._api, kube.ObjectRef("Node", name), timeout_s=self._timeouts.api_s
            )
            why = node_lost(name, cast(NodeObject | None, node))
            if why is not None:
                pinned_note = " (the rollout is pinned to it)" if name == pinned else ""
                lost.append(f"{why}{pinned_note}")
        if not lost:
            return status
        reason = (
            "; ".join(lost)
            + " during the rollout, and its pods were evicted"
            + (f": {status.reason}" if status.reason else "")
        )
        return replace(status, reason=reason)

    def verify_endpoint(
        self, deployment_name: str, served_model_name: str, timeout_s: float
    ) -> EndpointCheck:
        """Wait until the rollout is complete, then prove the Service serves the model
        (``EndpointVerifier.verify_endpoint`` says how, and what it raises)."""
        return self._verifier.verify_endpoint(deployment_name, served_model_name, timeout_s)

    def verify_gateway(
        self,
        namespace: str,
        release: str,
        routes: Sequence[GatewayRoute],
        timeout_s: float,
        *,
        master_key_secret: str | None = None,
    ) -> GatewayCheck:
        """Wait until the gateway's rollout is complete, then prove it routes every model
        through its Service (``EndpointVerifier.verify_gateway`` says how, and what it
        raises)."""
        return self._verifier.verify_gateway(
            namespace, release, routes, timeout_s, master_key_secret=master_key_secret
        )

    def delete(self, deployment_name: str) -> None:
        release = release_for(deployment_name)
        try:
            namespaces = kube.release_namespaces(self._api, release, timeout_s=self._timeouts.api_s)
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
            namespaces = kube.release_namespaces(self._api, release, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise wrap(exc, f"undo the rollout of {deployment_name}") from exc
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
            self._staging.sweep_source_secrets(namespaces)
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
