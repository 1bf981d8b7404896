"""Prefect tasks around prices: what a deployment's devices cost per hour, and where to
place a model across clusters (``cluster: auto``)."""

from __future__ import annotations

from prefect import task

from budcluster.errors import ConfigurationError
from budcluster.modelfacts import ModelFacts
from budcluster.planning import PlanRequest, RuntimePlan
from budcluster.planning.placement import (
    MeasuredEstimate,
    PlacementDecision,
    plan_on_clusters,
    rank_clusters,
)
from budcluster.pricing import HourlyPrice, PriceTable, load_price_table, plan_hourly_price
from budcluster.settings import get_settings
from budcluster.store import clusters as cluster_rows
from budcluster.store import deployments as deployment_rows
from budcluster.store.costs import latest_measured_cost
from budcluster.store.node_inventory import recorded_inventories
from tasks._logging import task_logger
from tasks._retry import unless_permanent
from tasks._store import results_store


def price_table() -> PriceTable:
    """The table ``BUDCLUSTER_PRICE_TABLE`` names, else the packaged defaults."""
    return load_price_table(get_settings().price_table)


def _priced(plan: RuntimePlan, cluster: str) -> HourlyPrice:
    """The plan's price; a price table with a mistake gives an unknown price saying so,
    because a benchmark's measurements are worth keeping without their cost."""
    try:
        table = price_table()
    except ConfigurationError as exc:
        task_logger(__name__).warning("not priced: %s", exc)
        return HourlyPrice(usd_per_hour=None, lines=[], devices=0, missing=str(exc))
    return plan_hourly_price(plan, table, cluster)


# Reading one local YAML file: a bad table is the user's to fix, not worth a retry.
@task(retries=0, timeout_seconds=30, task_run_name="price-plan-{cluster}")
def price_plan(plan: RuntimePlan, cluster: str) -> HourlyPrice:
    price = _priced(plan, cluster)
    task_logger(__name__).info("%s on %s: %s", plan.served_model_name, cluster, price.describe())
    return price


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=60,
    task_run_name="price-{cluster}-{deployment}",
)
def deployment_price(cluster: str, deployment: str) -> HourlyPrice | None:
    """The recorded plan of the deployment at today's table; None without a recorded plan."""
    with results_store().session() as session:
        cluster_id = cluster_rows.get_cluster(session, cluster).id
        row = deployment_rows.find_deployment(session, cluster_id, deployment)
        recorded = row.plan
    if not recorded:
        task_logger(__name__).info("%s/%s has no recorded plan: not priced", cluster, deployment)
        return None
    price = _priced(RuntimePlan.model_validate(recorded), cluster)
    task_logger(__name__).info("%s/%s: %s", cluster, deployment, price.describe())
    return price


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=unless_permanent,
    timeout_seconds=120,
    task_run_name="place-{model_name}",
)
def place_model(facts: ModelFacts, request: PlanRequest, model_name: str) -> PlacementDecision:
    """Plan the model on every available cluster's recorded inventory and rank them."""
    with results_store().session() as session:
        inventories = recorded_inventories(session)
        measured: dict[str, MeasuredEstimate] = {}
        for cluster in inventories:
            cost = latest_measured_cost(session, model_name, cluster)
            if cost is not None:
                measured[cluster] = MeasuredEstimate(
                    usd_per_million_output_tokens=cost.usd_per_million_output_tokens,
                    source=f"run {cost.run_name!r} of {cost.started_at:%Y-%m-%d %H:%M} UTC, "
                    f"level {cost.level_label}",
                )
    options = plan_on_clusters(facts, inventories, request, price_table(), measured)
    decision = rank_clusters(options)
    task_logger(__name__).info(
        "%s: placed on %s (%s); ranking: %s",
        model_name,
        decision.chosen,
        decision.basis,
        "; ".join(f"{o.rank}. {o.cluster}: {o.why}" for o in decision.ranked),
    )
    return decision
