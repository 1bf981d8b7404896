"""Which nodes a deployment's pods may go to: taints, tolerations, cordons, node selectors. Pure.

The rules are kube-scheduler's, so that the planner never picks a node the scheduler
would refuse:

- A node's ``NoSchedule`` and ``NoExecute`` taints must each be tolerated by one of the
  pod's tolerations (the TaintToleration filter); ``PreferNoSchedule`` only lowers a
  node's score and excludes nothing.
- A toleration tolerates a taint as ``Toleration.ToleratesTaint`` in k8s.io/api
  (core/v1/toleration.go) decides: an empty effect matches every effect, an empty key
  (with ``Exists``) every key, ``Exists`` every value, ``Equal`` (the default) only the
  same value.
- A cordoned node (``spec.unschedulable``) takes no new pod unless the pod tolerates the
  ``node.kubernetes.io/unschedulable:NoSchedule`` taint (the NodeUnschedulable filter).
- Every ``nodeSelector`` label must be on the node with the same value (NodeAffinity).

The form checks follow the API server's ``ValidateTolerations`` and its label key/value
syntax, so a bad toleration fails at the form, naming the field, instead of at apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from budcluster.hardware.inventory import NodeInventory, NodeTaint

UNSCHEDULABLE_TAINT = NodeTaint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")
"""What a cordon amounts to for a pod's tolerations (the NodeUnschedulable filter)."""
EXCLUDING_EFFECTS = ("NoSchedule", "NoExecute")
MAX_TOLERATION_SECONDS = 365 * 24 * 3600

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

# k8s.io/apimachinery/pkg/util/validation: qualified names and label values.
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label key (``[prefix/]name``), or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in prefix:
        return "has more than one '/'"
    if not name or len(name) > 63 or not _NAME_PART.match(name):
        return (
            "needs a name part of 1-63 letters, digits, '-', '_' or '.', starting and ending "
            "with a letter or digit (e.g. 'nvidia.com/gpu' or 'pool')"
        )
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return "has a prefix that is not a lowercase DNS subdomain (e.g. 'nvidia.com')"
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a Kubernetes label value (empty, or 1-63 safe characters)."""
    if value and (len(value) > 63 or not _NAME_PART.match(value)):
        return (
            "must be empty or 1-63 letters, digits, '-', '_' or '.', starting and ending with "
            "a letter or digit"
        )
    return None


class Toleration(BaseModel):
    """One toleration of the runtime's pods, with the fields of a Kubernetes Toleration."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    key: str = Field("", description="The taint key; empty (with operator Exists): every key.")
    operator: Literal["Equal", "Exists"] = Field(
        "Equal", description="Equal: the taint's value must be `value`. Exists: any value."
    )
    value: str = Field("", description="The taint value (Equal only).")
    effect: TaintEffect | None = Field(
        None, description="NoSchedule, PreferNoSchedule or NoExecute; empty: every effect."
    )
    toleration_seconds: int | None = Field(
        None,
        alias="tolerationSeconds",
        description="NoExecute only: how long the pod stays once the taint appears.",
    )

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        problem = label_key_problem(value) if value else None
        if problem:
            raise ValueError(f"key {value!r} {problem}")
        return value

    @field_validator("toleration_seconds", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"tolerationSeconds must be a whole number of seconds from 0 to "
                f"{MAX_TOLERATION_SECONDS}, not {value!r}"
            )
        if not 0 <= value <= MAX_TOLERATION_SECONDS:
            raise ValueError(
                f"tolerationSeconds must be from 0 to {MAX_TOLERATION_SECONDS}, not {value}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        # The API server's ValidateTolerations, in its order.
        if not self.key and self.operator != "Exists":
            raise ValueError(
                "operator must be Exists when key is empty (that tolerates every taint); "
                "give the taint's key, e.g. {key: nvidia.com/gpu, operator: Exists}"
            )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds is only allowed with effect NoExecute")
        if self.operator == "Exists" and self.value:
            raise ValueError(
                f"value {self.value!r} must be empty with operator Exists (it matches every "
                "value); use operator Equal to match one value"
            )
        problem = label_value_problem(self.value)
        if problem:
            raise ValueError(f"value {self.value!r} {problem}")
        return self

    def tolerates(self, taint: NodeTaint) -> bool:
        """``Toleration.ToleratesTaint`` of k8s.io/api core/v1."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value

    def manifest(self) -> dict[str, Any]:
        """The toleration as a pod spec holds it (empty fields left out)."""
        found: dict[str, Any] = {"operator": self.operator}
        if self.key:
            found["key"] = self.key
        if self.value:
            found["value"] = self.value
        if self.effect:
            found["effect"] = self.effect
        if self.toleration_seconds is not None:
            found["tolerationSeconds"] = self.toleration_seconds
        return found


def check_node_selector(selector: Mapping[str, str]) -> dict[str, str]:
    """``selector`` when every key and value is valid label syntax; else ValueError."""
    for key, value in selector.items():
        problem = label_key_problem(key)
        if problem:
            raise ValueError(f"label key {key!r} {problem}")
        problem = label_value_problem(value)
        if problem:
            raise ValueError(f"label {key!r}: value {value!r} {problem}")
    return dict(selector)


@dataclass(frozen=True)
class LeftOut:
    """A node the deployment's pods cannot go to, and why, in the scheduler's terms."""

    node: str
    cordoned: bool = False
    untolerated: list[NodeTaint] = field(default_factory=list)
    mismatched: dict[str, str | None] = field(default_factory=dict)
    """Selector labels the node lacks or has with another value: key -> the node's value."""
    labels_unknown: bool = False

    def describe(self) -> str:
        parts = []
        if self.cordoned:
            parts.append("cordoned (spec.unschedulable)")
        if self.untolerated:
            taints = ", ".join(t.describe() for t in self.untolerated)
            parts.append(f"untolerated taint(s) {taints}")
        if self.labels_unknown:
            parts.append("its labels were not recorded, so node_selector cannot be checked")
        for key, found in sorted(self.mismatched.items()):
            parts.append(
                f"node_selector {key} does not match (the node has "
                + (f"{key}={found})" if found is not None else "no such label)")
            )
        return f"{self.node}: " + "; ".join(parts)


def left_out(
    inventory: NodeInventory,
    name: str,
    tolerations: Sequence[Toleration],
    node_selector: Mapping[str, str],
) -> LeftOut | None:
    """Why the pods cannot go to this node, or None when the scheduler would take it."""
    scheduling = inventory.scheduling
    if scheduling is None:
        # Hosts, or a Kubernetes node recorded before scheduling was: nothing to refuse,
        # except a selector that cannot be checked.
        return LeftOut(name, labels_unknown=True) if node_selector else None

    def tolerated(taint: NodeTaint) -> bool:
        return any(t.tolerates(taint) for t in tolerations)

    cordoned = scheduling.unschedulable and not tolerated(UNSCHEDULABLE_TAINT)
    untolerated = [
        t for t in scheduling.taints if t.effect in EXCLUDING_EFFECTS and not tolerated(t)
    ]
    mismatched = {
        key: scheduling.labels.get(key)
        for key, value in node_selector.items()
        if scheduling.labels.get(key) != value
    }
    if cordoned or untolerated or mismatched:
        return LeftOut(name, cordoned, untolerated, mismatched)
    return None


def scheduling_fixes(excluded: Sequence[LeftOut]) -> list[str]:
    """What to set on the form (or do to the cluster) so the left-out nodes take the pods."""
    fixes: list[str] = []
    taints = {t.describe(): t for node in excluded for t in node.untolerated}
    if taints:
        examples = ", ".join(_toleration_example(t) for _, t in sorted(taints.items()))
        fixes.append(
            f"set tolerations (deploy-model's tolerations, the catalogue's "
            f"hardware.tolerations) to tolerate the taints, e.g. [{examples}]"
        )
    if any(node.mismatched or node.labels_unknown for node in excluded):
        fixes.append(
            "set node_selector (deploy-model's node_selector, the catalogue's "
            "hardware.node_selector) to labels those nodes carry, or leave it empty; run "
            "detect-nodes where labels were not recorded"
        )
    cordoned = sorted(node.node for node in excluded if node.cordoned)
    if cordoned:
        fixes.append(
            f"uncordon {', '.join(cordoned)} (kubectl uncordon) and run detect-nodes, if "
            "it should take new pods"
        )
    return fixes


def _toleration_example(taint: NodeTaint) -> str:
    value = f", value: {taint.value}" if taint.value else ""
    operator = "Equal" if taint.value else "Exists"
    return f"{{key: {taint.key}, operator: {operator}{value}, effect: {taint.effect}}}"
