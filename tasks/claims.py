"""Plan under a per-cluster lock while counting the devices other plans claimed.

Deploy-model runs of different deployments on one cluster run at once. Detection counts
only bound pods, so two runs planning before either's pods are bound could both take
the last free devices of a node. The plan is therefore made inside one store transaction
that first locks the cluster's placement, counts the other deployments' claims, plans,
and records this deployment's claim (budcluster/store/placement_claims.py says when a
claim stops counting).
"""

from __future__ import annotations

from prefect import task
from sqlalchemy.orm import Session

from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import ModelFacts
from budcluster.planning import PlanRequest, RuntimePlan, plan
from budcluster.planning.claims import claimed_devices, with_claimed_devices
from budcluster.store import clusters as cluster_rows
from budcluster.store import placement_claims as claim_rows
from tasks._logging import task_logger
from tasks._store import transact
from tasks.planning import log_plan

_RETRIES, _DELAY_S, _TIMEOUT_S = 2, 2, 60


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="placement-epoch-{cluster}",
)
def placement_epoch(cluster: str) -> int:
    """The cluster's claim-release counter; read it BEFORE detecting nodes."""

    def work(session: Session) -> int:
        return claim_rows.placement_epoch(session, cluster_rows.get_cluster(session, cluster).id)

    return transact(work, f"read the placement epoch of {cluster}")


# Planning is pure: a NoFeasiblePlan is an answer, not a transient failure. The store
# transaction itself is rerun by transact while the database is cut off.
@task(retries=0, timeout_seconds=120, task_run_name="plan-and-claim-{deployment}")
def plan_and_claim(
    cluster: str,
    deployment: str,
    seen_epoch: int,
    facts: ModelFacts,
    inventories: list[NodeInventory],
    request: PlanRequest | None = None,
) -> RuntimePlan:
    """Plan on ``inventories`` plus the devices other deployments' plans claim, and claim
    what this plan takes, in one transaction that no other planner of ``cluster`` shares.

    ``seen_epoch`` is :func:`placement_epoch`'s answer from before ``inventories`` were
    detected.
    """
    logger = task_logger(__name__)

    def work(session: Session) -> tuple[RuntimePlan, dict[str, dict[str, dict[str, int]]]]:
        cluster_id = claim_rows.lock_cluster_placement(session, cluster)
        held = claim_rows.claims_counting(
            session, cluster_id, seen_epoch=seen_epoch, excluding=deployment
        )
        result = plan(facts, with_claimed_devices(inventories, held), request)
        claim_rows.record_claim(
            session, cluster_id, deployment, claimed_devices(result, inventories)
        )
        return result, held

    result, held = transact(work, f"plan and claim devices for {deployment} on {cluster}")
    if held:
        logger.info("counted the devices claimed by %s as in use", ", ".join(sorted(held)))
    log_plan(result)
    return result


@task(
    retries=_RETRIES,
    retry_delay_seconds=_DELAY_S,
    timeout_seconds=_TIMEOUT_S,
    task_run_name="release-claim-{deployment}",
)
def release_placement_claim(cluster: str, deployment: str) -> bool:
    """Drop the claim of a run that failed before it recorded its deployment's status (a
    status change out of the rollout releases it otherwise); False if none was held."""

    def work(session: Session) -> bool:
        cluster_id = cluster_rows.get_cluster(session, cluster).id
        return claim_rows.release_claim(session, cluster_id, deployment)

    return transact(work, f"release the placement claim of {deployment} on {cluster}")
