"""Tasks for the catalogue flows: read it, read the store's view, compare, check health."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from budcluster.catalogue import Action, Catalogue, StoredDeployment, load_catalogue
from budcluster.catalogue.baselines import (
    compare_with_baseline,
    render_comparison_markdown,
    resolve_baseline,
    write_comparison,
)
from budcluster.catalogue.health import HealthObservation, record_health, unknown_nodes
from budcluster.catalogue.reconcile import summary_rows
from budcluster.catalogue.schema import BaselinePolicy
from budcluster.lifecycle import ROLLOUT_IN_PROGRESS
from budcluster.store.clusters import get_cluster, list_clusters
from budcluster.store.deployments import list_deployments
from budcluster.store.nodes import list_nodes
from tasks._logging import task_logger
from tasks._store import results_store
from tasks.exclusive import slot_is_held
from tasks.targets import registered_target


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "catalogue"


@task(retries=0, timeout_seconds=30, task_run_name="read-catalogue")
def read_catalogue(path: str) -> Catalogue:
    """The validated catalogue; a bad file fails here, naming the entry and the field."""
    catalogue = load_catalogue(Path(path))
    task_logger(__name__).info("%s: %d entr(ies)", path, len(catalogue.deployments))
    return catalogue


@task(retries=2, retry_delay_seconds=5, timeout_seconds=600, task_run_name="read-live-state")
def live_deployments(clusters: list[str], check_runtimes: bool) -> list[StoredDeployment]:
    """The store's deployments on ``clusters``; ready ones are checked on their target.

    A target that cannot be asked leaves ``runtime`` unknown (None): an unreachable
    cluster is cluster-health's finding, not a reason to redeploy.
    """
    wanted = set(clusters)
    rows: list[StoredDeployment] = []
    with results_store().session() as session:
        for cluster in list_clusters(session):
            if cluster.name not in wanted:
                continue
            for deployment in list_deployments(session, cluster.id):
                rows.append(
                    StoredDeployment(
                        deployment.name,
                        cluster.name,
                        deployment.status.value,
                        deployment.spec_hash,
                    )
                )
    # A run that died mid-rollout left an in-progress status: its slot says whether it lives.
    rows = [
        replace(row, run_alive=slot_is_held(row.cluster, row.name))
        if row.status in ROLLOUT_IN_PROGRESS
        else row
        for row in rows
    ]
    if not check_runtimes:
        return rows
    checked = []
    for row in rows:
        runtime = None
        if row.status == "ready":
            try:
                with registered_target(row.cluster) as target:
                    runtime = target.status(row.name).state.value
            except Exception as exc:
                task_logger(__name__).warning(
                    "cannot check %s on %s: %s", row.name, row.cluster, exc
                )
        checked.append(replace(row, runtime=runtime))
    return checked


def publish_reconcile_plan(actions: list[Action]) -> None:
    create_table_artifact(
        table=summary_rows(actions),
        key="reconcile-plan",
        description="What reconcile-deployments decided for each deployment",
    )
    drift = [a for a in actions if a.drift]
    lines = ["# Drift", ""]
    lines += [f"- `{a.cluster}/{a.name}`: {a.drift} (action: {a.kind.value})" for a in drift]
    if not drift:
        lines.append("None: every managed deployment matches the catalogue.")
    create_markdown_artifact(
        markdown="\n".join(lines) + "\n",
        key="reconcile-drift",
        description="Live state the catalogue did not explain",
    )


@task(retries=2, retry_delay_seconds=5, timeout_seconds=120, task_run_name="baseline-{entry}")
def find_baseline(
    entry: str, policy: BaselinePolicy, deployment_id: int, profile_label: str
) -> tuple[dict[str, Any] | None, str]:
    """Resolved BEFORE the new run, so ``previous`` never means the run itself."""
    with results_store().session() as session:
        return resolve_baseline(session, policy, deployment_id, profile_label)


@task(retries=0, timeout_seconds=120, task_run_name="compare-{entry}")
def compare_to_baseline(
    entry: str,
    policy: BaselinePolicy,
    baseline: dict[str, Any],
    source: str,
    report_dir: str,
) -> dict[str, Any]:
    """Write comparison.md/json next to the candidate's report and publish it."""
    folder = Path(report_dir)
    candidate = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    comparison = compare_with_baseline(baseline, candidate, policy, source)
    path = write_comparison(folder, entry, comparison)
    create_markdown_artifact(
        markdown=render_comparison_markdown(entry, comparison, report_dir),
        key=artifact_key(f"scheduled-benchmark-{entry}"),
        description=f"{entry} against its baseline",
    )
    return {
        "baseline": source,
        "regressions": comparison.regressions,
        "comparison_report": str(path),
    }


@task(retries=2, retry_delay_seconds=5, timeout_seconds=60, task_run_name="list-clusters")
def registered_clusters() -> list[str]:
    with results_store().session() as session:
        return [c.name for c in list_clusters(session) if c.status.value != "deleted"]


# No retries: a health check that retries hides the flapping it is meant to show.
@task(retries=0, timeout_seconds=600, task_run_name="health-{cluster}")
def check_cluster_health(cluster: str) -> list[dict[str, object]]:
    """Verify access through the target and record the cluster's and nodes' readiness."""
    log = task_logger(__name__)
    try:
        with registered_target(cluster) as target:
            access = target.verify_access()
            health = target.node_health()
        seen = HealthObservation(
            cluster, True, access.nodes, access.detail, datetime.now(UTC), health
        )
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("%s is not reachable: %s", cluster, detail)
        seen = HealthObservation(cluster, False, [], detail, datetime.now(UTC))
    with results_store().session() as session:
        rows = record_health(session, seen)
        recorded = [n.name for n in list_nodes(session, get_cluster(session, cluster).id)]
    if fresh := unknown_nodes(seen, recorded):
        log.warning("%s has nodes never inventoried (%s): run detect-nodes", cluster, fresh)
    if not rows:
        rows = [{"cluster": cluster, "node": "(none recorded)", "reachable": seen.reachable}]
    return rows
