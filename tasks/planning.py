"""Prefect tasks around the runtime planner, and the plan's markdown artifact."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact

from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import ModelFacts, load_model_facts
from budcluster.planning import PlanRequest, RuntimePlan, plan
from budcluster.planning.placement import PlacementDecision, placement_markdown
from budcluster.planning.report import plan_markdown
from tasks._logging import task_logger


# Reading headers touches only the first bytes of each file, but model dirs can sit on slow
# network storage: allow a retry on an I/O hiccup.
@task(retries=2, retry_delay_seconds=5, timeout_seconds=300, task_run_name="model-facts")
def read_model_facts(model_path: str) -> ModelFacts:
    return load_model_facts(model_path)


# Planning is pure: a NoFeasiblePlan is an answer, not a transient failure. No retries.
@task(retries=0, timeout_seconds=60, task_run_name="plan-runtime")
def plan_runtime(
    facts: ModelFacts, inventories: list[NodeInventory], request: PlanRequest | None = None
) -> RuntimePlan:
    result = plan(facts, inventories, request)
    log_plan(result)
    return result


def log_plan(result: RuntimePlan) -> None:
    """One line in the task's log: what the plan runs, where, and how it splits."""
    task_logger(__name__).info(
        "%s: %s on %s, TP %s x %s replicas",
        result.served_model_name,
        result.engine,
        result.device_kind,
        result.tensor_parallel_size,
        result.replicas,
    )


def artifact_key(model_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    cleaned = "".join(c if c.isalnum() else "-" for c in model_name.lower())
    return f"runtime-plan-{cleaned.strip('-')}"[:100]


@task(retries=1, retry_delay_seconds=2, timeout_seconds=30, task_run_name="publish-plan")
def publish_plan_artifact(result: RuntimePlan, placement: PlacementDecision | None = None) -> str:
    """A markdown artifact with the plan and its memory arithmetic (and, for a deployment
    placed with ``cluster: auto``, the ranked clusters and why); returns the markdown."""
    markdown = plan_markdown(result)
    if placement is not None:
        markdown += "\n" + placement_markdown(placement)
    create_markdown_artifact(
        key=artifact_key(result.served_model_name),
        markdown=markdown,
        description=f"Runtime plan for {result.served_model_name}",
    )
    return markdown
