"""The scheduling fields deploy-model and the catalogue share: tolerations, node selector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import AfterValidator, Field

from budcluster.errors import ConfigurationError
from budcluster.planning.scheduling import Toleration, check_node_selector
from budcluster.targets.base import PodScheduling

MAX_TOLERATIONS = 32
MAX_SELECTOR_LABELS = 32

TOLERATIONS_DESCRIPTION = (
    "Kubernetes only: tolerations of the runtime's pods and of the model's transfer Job, "
    "each {key, operator: Equal|Exists, value, effect: NoSchedule|PreferNoSchedule|"
    "NoExecute, tolerationSeconds}, e.g. [{key: nvidia.com/gpu, operator: Exists, effect: "
    "NoSchedule}]. The planner counts only nodes whose NoSchedule/NoExecute taints these "
    "tolerate (docs/kubernetes.md)."
)
NODE_SELECTOR_DESCRIPTION = (
    "Kubernetes only: labels a node must carry to run the runtime and its transfer Job, "
    "e.g. {pool: gpu-a}; the planner counts only nodes that have them all."
)

Tolerations = Annotated[
    list[Toleration], Field(max_length=MAX_TOLERATIONS, description=TOLERATIONS_DESCRIPTION)
]
NodeSelector = Annotated[
    dict[str, str],
    Field(max_length=MAX_SELECTOR_LABELS, description=NODE_SELECTOR_DESCRIPTION),
    AfterValidator(check_node_selector),
]


def check_scheduling_on(
    cluster_kind: str,
    cluster: str,
    tolerations: Sequence[Toleration],
    node_selector: Mapping[str, str],
) -> None:
    """Refuse tolerations and node selectors where nothing schedules pods (hosts)."""
    if cluster_kind != "hosts":
        return
    given = [
        name
        for name, value in (("tolerations", tolerations), ("node_selector", node_selector))
        if value
    ]
    if given:
        fields = " and ".join(given)
        raise ConfigurationError(
            f"{fields}: {cluster!r} is a hosts cluster, where no scheduler places pods, so "
            "taints, tolerations and node labels do not exist there; remove "
            f"{fields} from the request, or deploy to a kubernetes cluster"
        )


def pod_scheduling(
    tolerations: Sequence[Toleration], node_selector: Mapping[str, str]
) -> PodScheduling:
    """The tolerations and node selector a form gives its pods (the runtime's, the Jobs')."""
    return PodScheduling(
        tolerations=tuple(t.manifest() for t in tolerations), node_selector=dict(node_selector)
    )
