"""The runtime planner: ModelFacts + NodeInventories + PlanRequest -> RuntimePlan. Pure.

The search over device kinds and nodes is in :mod:`~budcluster.planning.search`, the plans
in :mod:`~budcluster.planning.accelerator_plan` and :mod:`~budcluster.planning.cpu_plan`,
the advice when nothing fits in :mod:`~budcluster.planning.advice`.
"""

from __future__ import annotations

from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import ModelFacts
from budcluster.planning.lora import with_adapters
from budcluster.planning.models import PlanRequest, RuntimePlan
from budcluster.planning.search import best_plan


def plan(
    facts: ModelFacts, inventories: list[NodeInventory], request: PlanRequest | None = None
) -> RuntimePlan:
    """The plan for ``facts`` on the first device kind (in preference order) where it fits."""
    request = request or PlanRequest()
    chosen = with_adapters(best_plan(facts, inventories, request), request.adapters)
    if not request.extra_args:
        return chosen
    # The user's own engine flags go last, so they override the planner's where the
    # engine takes the last occurrence of a flag.
    return chosen.model_copy(
        update={
            "args": [*chosen.args, *request.extra_args],
            "host_command": [*chosen.host_command, *request.extra_args],
            "decisions": [
                *chosen.decisions,
                f"extra engine arguments from the request: {' '.join(request.extra_args)}",
            ],
        }
    )
