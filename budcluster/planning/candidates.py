"""What the search found on a device group or node: a fit, or a miss with its arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

from budcluster.planning.devices import DeviceGroup
from budcluster.planning.errors import Candidate
from budcluster.planning.models import MemoryArithmetic


@dataclass
class Fit:
    """A device group that holds the model at tensor-parallel size ``tp``."""

    group: DeviceGroup
    tp: int
    memory: MemoryArithmetic


@dataclass
class Miss:
    """A device group or node that does not hold the model, and by how much."""

    candidate: Candidate
    memory: MemoryArithmetic | None
