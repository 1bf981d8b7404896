"""The fields this target reads of the Kubernetes objects it is given, as TypedDicts.

They describe the API's JSON (camelCase keys) as the adapter returns it; only the fields
read here are declared, and every field the API may leave out is optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Required, TypedDict


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    generation: int
    deletionTimestamp: str


class Condition(TypedDict, total=False):
    type: Required[str]
    status: Required[str]
    reason: str
    message: str


class Taint(TypedDict, total=False):
    key: Required[str]
    value: str
    effect: Required[str]


class NodeSpec(TypedDict, total=False):
    unschedulable: bool
    taints: list[Taint]


class NodeStatus(TypedDict, total=False):
    conditions: list[Condition]
    allocatable: Mapping[str, str]


class NodeObject(TypedDict, total=False):
    metadata: Required[ObjectMeta]
    spec: NodeSpec
    status: NodeStatus


class ResourceRequirements(TypedDict, total=False):
    # Quantities are strings from the API server, numbers in rendered manifests.
    limits: Mapping[str, str | int]
    requests: Mapping[str, str | int]


class Container(TypedDict, total=False):
    resources: ResourceRequirements
    restartPolicy: str


class PodSpec(TypedDict, total=False):
    containers: list[Container]
    initContainers: list[Container]


class ContainerStateWaiting(TypedDict, total=False):
    reason: str
    message: str


class ContainerStateTerminated(TypedDict, total=False):
    reason: str


class ContainerState(TypedDict, total=False):
    waiting: ContainerStateWaiting
    terminated: ContainerStateTerminated


class ContainerStatus(TypedDict, total=False):
    state: ContainerState
    lastState: ContainerState


class PodStatus(TypedDict, total=False):
    phase: str
    conditions: list[Condition]
    containerStatuses: list[ContainerStatus]


class PodObject(TypedDict, total=False):
    metadata: Required[ObjectMeta]
    spec: PodSpec
    status: PodStatus


class DeploymentSpec(TypedDict, total=False):
    replicas: int


class DeploymentStatus(TypedDict, total=False):
    observedGeneration: int
    replicas: int
    updatedReplicas: int
    readyReplicas: int
    availableReplicas: int
    conditions: list[Condition]


class DeploymentObject(TypedDict, total=False):
    metadata: Required[ObjectMeta]
    spec: DeploymentSpec
    status: DeploymentStatus


class EventObject(TypedDict, total=False):
    type: str
    reason: str
    message: str


class ConfigMapObject(TypedDict, total=False):
    metadata: Required[ObjectMeta]
    data: Mapping[str, str]
