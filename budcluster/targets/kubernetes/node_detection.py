"""Node detection for the ``kubernetes`` target: what each node is, holds and has free.

This module does I/O through the Kubernetes adapter. It reads the nodes, runs the
``node_info_collector`` DaemonSet and waits for each ready node's report, and lists the
pods that hold devices on each node; what it makes of them (node state, the reconciled
inventory, devices in use) is computed in the pure :mod:`.nodes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from kubernetes import client as k8s_client

from budcluster.adapters import kubernetes as kube
from budcluster.hardware.inventory import DevicesInUse, NodeInventory
from budcluster.targets.kubernetes.errors import wrap
from budcluster.targets.kubernetes.names import COLLECTOR_RELEASE, NODE_INFO_PREFIX
from budcluster.targets.kubernetes.nodes import (
    HOLDING_PODS_SELECTOR,
    RUNTIME_SELECTOR,
    SERVED_MODEL_ANNOTATION,
    NodeState,
    devices_in_use,
    node_state,
    pods_by_node,
    reconcile_node,
)
from budcluster.targets.kubernetes.objects import NodeObject, PodObject
from budcluster.targets.kubernetes.timeouts import KubernetesTimeouts
from budcluster.targets.kubernetes.values import collector_values


class NodeDetection:
    """Reads the cluster's nodes: their health, and their inventory from the collector."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        system_namespace: str,
        image: str,
        timeouts: KubernetesTimeouts,
        render: Callable[[str, Mapping[str, Any], str, str], list[dict[str, Any]]],
        ensure_namespace: Callable[[str], None],
        collector_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._api = api_client
        self._namespace = system_namespace
        self._image = image
        self._timeouts = timeouts
        self._render = render
        self._ensure_namespace = ensure_namespace
        # Checked now, so bad values fail before anything is applied.
        self._collector_values = collector_values(image, collector_overrides)
        self.node_states: dict[str, NodeState] = {}
        """What the last ``detect_nodes``/``node_health`` saw, for the flow to record."""

    def node_health(self) -> dict[str, NodeState]:
        """Readiness, schedulability, taints and pressure of every node (cluster-health)."""
        try:
            nodes, _ = kube.list_objects(self._api, "Node", None, timeout_s=self._timeouts.api_s)
        except kube.KubernetesError as exc:
            raise wrap(exc, "list nodes") from exc
        self.node_states = {n["metadata"]["name"]: node_state(cast(NodeObject, n)) for n in nodes}
        return self.node_states

    def detect_nodes(self) -> list[NodeInventory]:
        namespace = self._namespace
        try:
            nodes, _ = kube.list_objects(self._api, "Node", None, timeout_s=self._timeouts.api_s)
            states = {n["metadata"]["name"]: node_state(cast(NodeObject, n)) for n in nodes}
            self.node_states = states
            self._ensure_namespace(namespace)
            objects = self._render(
                "node_info_collector", self._collector_values, COLLECTOR_RELEASE, namespace
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
            pods, _ = kube.list_objects(
                self._api,
                "Pod",
                None,
                field_selector=HOLDING_PODS_SELECTOR,
                timeout_s=self._timeouts.api_s,
            )
        except kube.KubernetesApiError as exc:
            if exc.status != 403:
                raise wrap(exc, "list the pods holding devices") from exc
            # Without the right to list pods the planner still works, on what the tools see.
            return {}, (
                f"kubernetes: devices other pods hold are not counted ({exc}); give the "
                "kubeconfig's user list on pods and deployments in all namespaces"
            )
        except kube.KubernetesError as exc:
            raise wrap(exc, "list the pods holding devices") from exc
        on_node = pods_by_node(cast(list[PodObject], pods))
        return {node: devices_in_use(on_node.get(node, []), runtimes) for node in nodes}, None
