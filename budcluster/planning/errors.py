"""NoFeasiblePlan: nothing fits. It says why, how close the best tries came, and a fix."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from budcluster.errors import PermanentError


class Candidate(BaseModel):
    node_name: str
    device_kind: str
    devices: str
    tensor_parallel_size: int
    lacks: str
    shortfall_bytes: int


class NoFeasiblePlan(PermanentError):
    def __init__(self, reason: str, closest: list[Candidate], fixes: list[str]) -> None:
        self.reason = reason
        self.closest = closest
        self.fixes = fixes
        lines = [f"no feasible plan: {reason}"]
        lines += [
            f"  closest: {c.node_name} {c.devices} TP {c.tensor_parallel_size}: {c.lacks}"
            for c in closest
        ]
        lines += [f"  fix: {fix}" for fix in fixes]
        super().__init__("\n".join(lines))

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": "NoFeasiblePlan",
            "reason": self.reason,
            "closest": [c.model_dump() for c in self.closest],
            "fixes": self.fixes,
        }
