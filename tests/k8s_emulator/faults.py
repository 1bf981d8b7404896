"""Fault switches: make matching pods fail the way real ones do (image pull, crash loop,
OOM kill, failing Job pod)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.k8s_emulator.selectors import Requirement, labels_match, parse_label_selector

FAULT_KINDS = ("ImagePullBackOff", "CrashLoopBackOff", "OOMKilled", "JobFailed")
DEFAULT_CRASH_LOG = (
    "Traceback (most recent call last):\n"
    '  File "/usr/local/bin/serve", line 8, in <module>\n'
    "    sys.exit(main())\n"
    "RuntimeError: engine failed to start: emulated crash (k8s emulator fault switch)"
)
_ids = itertools.count(1)


@dataclass
class Fault:
    kind: str
    selector: str | None = None  # label selector text, e.g. "app=vllm"
    image: str | None = None  # substring of a container image
    namespace: str | None = None
    log: str = DEFAULT_CRASH_LOG
    id: int = field(default_factory=lambda: next(_ids))
    _requirements: list[Requirement] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        if self.selector is None and self.image is None:
            raise ValueError("a fault needs a label selector or an image substring to match pods")
        self._requirements = parse_label_selector(self.selector)

    def matches(self, pod: dict[str, Any]) -> bool:
        meta = pod["metadata"]
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.selector is not None and not labels_match(self._requirements, meta.get("labels")):
            return False
        if self.image is not None:
            images = [str(c.get("image", "")) for c in pod["spec"].get("containers") or []]
            return any(self.image in image for image in images)
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "selector": self.selector,
            "image": self.image,
            "namespace": self.namespace,
            "log": self.log,
        }


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: int | None = None) -> None:
        self.faults = [] if fault_id is None else [f for f in self.faults if f.id != fault_id]

    def for_pod(self, pod: dict[str, Any]) -> Fault | None:
        return next((f for f in self.faults if f.matches(pod)), None)
