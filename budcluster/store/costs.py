"""Cost per million output tokens over time, and the latest measured cost of a model.

Each benchmark run keeps its devices' price per hour and each level its cost
(``benchmarks.save_run``); these queries read them back for the CLI, the reports and the
cross-cluster placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from budcluster.store.models import (
    BenchmarkRun,
    BenchmarkSummary,
    CatalogModel,
    Cluster,
    Deployment,
)


@dataclass(frozen=True, slots=True)
class CostPoint:
    """One load level of one run: when, how fast, at what price, at what cost."""

    run_id: int
    run_name: str
    started_at: datetime
    cluster: str | None
    deployment: str | None
    level: int
    label: str
    output_tokens_per_s: float
    usd_per_hour: float | None
    usd_per_million_output_tokens: float | None


def cost_history(session: Session, deployment: str, cluster: str | None = None) -> list[CostPoint]:
    """Every level of every run of ``deployment``, oldest first.

    Runs outlive their deployment record; without ``cluster`` those are listed too (their
    cluster shows as None), with it only runs whose deployment is still recorded there.
    """
    query = (
        select(BenchmarkRun, BenchmarkSummary, Cluster.name)
        .join(BenchmarkSummary, BenchmarkSummary.run_id == BenchmarkRun.id)
        .outerjoin(Deployment, Deployment.id == BenchmarkRun.deployment_id)
        .outerjoin(Cluster, Cluster.id == Deployment.cluster_id)
        .where(BenchmarkRun.deployment_name == deployment)
        .order_by(BenchmarkRun.started_at, BenchmarkRun.id, BenchmarkSummary.level)
    )
    if cluster is not None:
        query = query.where(Cluster.name == cluster)
    return [
        CostPoint(
            run_id=run.id,
            run_name=run.name,
            started_at=run.started_at,
            cluster=cluster_name,
            deployment=run.deployment_name,
            level=summary.level,
            label=summary.label,
            output_tokens_per_s=summary.output_token_throughput,
            usd_per_hour=run.usd_per_hour,
            usd_per_million_output_tokens=summary.usd_per_million_output_tokens,
        )
        for run, summary, cluster_name in session.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class MeasuredCost:
    """The cheapest level of the latest priced run of a model on a cluster."""

    usd_per_million_output_tokens: float
    run_id: int
    run_name: str
    started_at: datetime
    level_label: str


def latest_measured_cost(session: Session, model_name: str, cluster: str) -> MeasuredCost | None:
    """From the newest run with a cost of any deployment of ``model_name`` on ``cluster``,
    the level with the lowest cost per million output tokens (the load that used the
    devices best); None when no run of it there was priced."""
    run_query = (
        select(BenchmarkRun)
        .join(Deployment, Deployment.id == BenchmarkRun.deployment_id)
        .join(Cluster, Cluster.id == Deployment.cluster_id)
        .join(CatalogModel, CatalogModel.id == Deployment.model_id)
        .where(
            Cluster.name == cluster,
            CatalogModel.name == model_name,
            BenchmarkRun.usd_per_hour.is_not(None),
        )
        .order_by(BenchmarkRun.started_at.desc(), BenchmarkRun.id.desc())
        .limit(1)
    )
    run = session.scalar(run_query)
    if run is None:
        return None
    best = session.scalar(
        select(BenchmarkSummary)
        .where(
            BenchmarkSummary.run_id == run.id,
            BenchmarkSummary.usd_per_million_output_tokens.is_not(None),
        )
        .order_by(BenchmarkSummary.usd_per_million_output_tokens, BenchmarkSummary.level)
        .limit(1)
    )
    if best is None or best.usd_per_million_output_tokens is None:
        return None
    return MeasuredCost(
        usd_per_million_output_tokens=best.usd_per_million_output_tokens,
        run_id=run.id,
        run_name=run.name,
        started_at=run.started_at,
        level_label=best.label,
    )
