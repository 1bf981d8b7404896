"""Turn "this model on that hardware" into a RuntimePlan that fits. Pure functions."""

from budcluster.planning.errors import Candidate, NoFeasiblePlan
from budcluster.planning.models import MemoryArithmetic, Placement, PlanRequest, RuntimePlan
from budcluster.planning.planner import plan

__all__ = [
    "Candidate",
    "MemoryArithmetic",
    "NoFeasiblePlan",
    "Placement",
    "PlanRequest",
    "RuntimePlan",
    "plan",
]
