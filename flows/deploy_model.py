"""Runbook: take a model from its source to a verified, measured endpoint on a cluster."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.cache_policies import NO_CACHE
from prefect.transactions import Transaction, transaction

from budcluster.job_requests import DeployModelRequest
from budcluster.modelfacts import ModelFacts
from budcluster.planning.lora import adapter_selection, planned_adapter, staged_adapter_name
from budcluster.planning.placement import PlacementDecision
from budcluster.targets.base import RolloutSpec
from tasks.benchmark import run_benchmark
from tasks.claims import placement_epoch, plan_and_claim, release_placement_claim
from tasks.clusters import (
    detect_nodes,
    publish_inventory_table,
    registered_cluster,
    verify_registered_cluster,
)
from tasks.credentials import model_source
from tasks.exclusive import exclusive_rollout
from tasks.lora import read_adapter_facts, register_adapters
from tasks.models import locate_model_metadata, model_format
from tasks.planning import publish_plan_artifact, read_model_facts
from tasks.pricing import place_model, price_plan
from tasks.records import (
    latest_revision,
    move_deployment,
    open_deployment,
    record_model,
    record_nodes,
    record_revision,
    record_rollout,
    record_transfer,
)
from tasks.recovery import (
    begin_rollout_attempt,
    repair_interrupted_rollout,
    rollout_failure,
    undo_attempt,
    undo_unfinished_attempt,
)
from tasks.rollout import (
    current_endpoint,
    prepare_engine,
    roll_out,
    stage_adapter,
    stage_model,
    wait_healthy,
)

# The task that starts a runtime registers how to remove it; the transaction around the
# rollout and the health wait runs that removal when anything inside it fails. A run that
# dies before either leaves its attempt in the store for the next run to undo.
roll_out_undoable = roll_out.with_options(cache_policy=NO_CACHE)


@roll_out_undoable.on_rollback
def _undo_started_runtime(txn: Transaction) -> None:
    undo_attempt(txn.get("cluster"), txn.get("deployment"), txn.get("attempt"), txn.get("previous"))


@flow(name="deploy-model", log_prints=True)
def deploy_model(request: DeployModelRequest) -> dict[str, Any]:
    """Verify, detect, plan, transfer, roll out, wait until healthy, benchmark, record.

    Two runs of the same deployment never overlap: the second waits for the first (or
    fails at once with ``if_busy='fail'``). ``cluster: auto`` first picks the cluster from
    every cluster's recorded inventory (docs/placement.md).
    """
    placement = None
    facts = None
    if request.places_automatically():
        facts = read_model_facts(locate_model_metadata(model_source(request.model)))
        placement = place_model(facts, request.plan_request(), request.model.model_name)
        request = request.on_cluster(placement.chosen)
        print(f"cluster auto: placed on {placement.chosen}")
    with exclusive_rollout(request.cluster, request.name, wait=request.if_busy == "wait"):
        return _deploy(request, placement, facts)


def _deploy(
    request: DeployModelRequest,
    placement: PlacementDecision | None = None,
    placed_facts: ModelFacts | None = None,
) -> dict[str, Any]:
    spec_hash = request.spec_hash()
    cluster = registered_cluster(request.cluster)
    # What the cluster kind cannot do (autoscaling on hosts) fails before any work.
    request.check_cluster_kind(cluster.kind)
    # 0. Undo what a run of this deployment that died mid-rollout left running.
    repair_interrupted_rollout(cluster, request.name)
    endpoint = current_endpoint(cluster, request.name, spec_hash)
    if endpoint:
        print(f"{request.name} is already ready at {endpoint} with this spec; nothing to do")
        return {
            "deployment": request.name,
            "status": "ready",
            "changed": False,
            "endpoint_url": endpoint,
        }

    # 1. Verify the cluster.  2. Detect and record its nodes.
    access = verify_registered_cluster(cluster)
    # Read before detecting: claims released after this count, as detection may have
    # missed their pods (tasks/claims.py, budcluster/store/placement_claims.py).
    seen_epoch = placement_epoch(request.cluster)
    inventories = detect_nodes(cluster)
    publish_inventory_table(request.cluster, record_nodes(request.cluster, inventories))

    # 3. Plan from the model's metadata, before any weights move.
    source = model_source(request.model)
    # Placement already read the metadata: plan on what it placed, not on a second read.
    facts = placed_facts or read_model_facts(locate_model_metadata(source))
    adapter_sources = [model_source(adapter.source()) for adapter in request.adapters]
    adapter_facts = [read_adapter_facts(locate_model_metadata(s)) for s in adapter_sources]
    adapters = [
        planned_adapter(adapter.name, found)
        for adapter, found in zip(request.adapters, adapter_facts, strict=True)
    ]
    # Planned under the cluster's placement lock, counting other runs' claimed devices;
    # this plan's devices are claimed until the deployment's status leaves the rollout.
    plan = plan_and_claim(
        request.cluster,
        request.name,
        seen_epoch,
        facts,
        inventories,
        request.plan_request(adapters),
    )
    try:
        publish_plan_artifact(plan, placement)
        # A replica count the cluster would not run fails here, before weights move.
        request.check_plan(plan, access.kind)
        fmt = model_format(facts)
        model_id = record_model(
            request.model.model_name, request.model.uri, fmt, [], facts.model_dump(mode="json")
        )
        if request.adapters:
            register_adapters(
                model_id,
                [
                    {
                        "name": adapter.name,
                        "source_uri": adapter.uri,
                        "format": found.format,
                        "rank": found.rank,
                        "alpha": found.alpha,
                    }
                    for adapter, found in zip(request.adapters, adapter_facts, strict=True)
                ],
            )
        deployment_id, redeploy = open_deployment(
            request.cluster,
            request.name,
            model_id,
            spec_hash,
            f"{plan.engine} on {plan.device_kind}",
        )
    except Exception:
        # No status change will end this run's claim: end it here, or it would hold the
        # devices until the deployment is planned again.
        release_placement_claim(request.cluster, request.name)
        raise

    attempt_id = None
    try:
        # 4. Transfer the weights to the planned nodes and verify them there.
        nodes = sorted({placement.node_name for placement in plan.placements})
        if not redeploy:
            move_deployment(deployment_id, "transferring", f"staging on {', '.join(nodes)}")
        # The model's volume (Kubernetes) is sized for the adapters staged beside it, and
        # its transfer Job runs on the pool the runtime is planned onto.
        scheduling = request.pod_scheduling()
        staged = stage_model(
            cluster,
            source,
            request.model.model_name,
            nodes,
            scheduling,
            adapter_sources=adapter_sources or None,
        )
        record_model(
            request.model.model_name,
            request.model.uri,
            fmt,
            staged.manifest,
            facts.model_dump(mode="json"),
        )
        record_transfer(model_id, request.cluster, deployment_id, staged, True)
        # The adapters go beside the model (the same nodes; on Kubernetes the model's own
        # volume, so their Jobs take the model's tolerations and node selector to reach the
        # pool that volume is on); the runtime reads them where they were staged.
        adapter_paths = {
            adapter.name: stage_adapter(
                cluster,
                adapter_source,
                staged_adapter_name(adapter.name, adapter_source.uri),
                request.model.model_name,
                nodes,
                scheduling,
            ).path
            for adapter, adapter_source in zip(request.adapters, adapter_sources, strict=True)
        }

        # 5. Roll out.  6. Wait until healthy.  A failure removes what this run started.
        executables = prepare_engine(plan, cluster.kind)
        move_deployment(deployment_id, "deploying", f"starting {plan.engine}")
        previous = latest_revision(deployment_id)
        attempt_id = begin_rollout_attempt(deployment_id, spec_hash, previous)
        with transaction() as txn:
            txn.set("cluster", cluster)
            txn.set("deployment", request.name)
            txn.set("previous", previous)
            txn.set("attempt", attempt_id)
            spec = RolloutSpec(
                request.name,
                plan,
                staged.path,
                request.port,
                autoscaling=request.autoscaling_spec(),
                adapter_paths=adapter_paths,
                scheduling=scheduling,
            )
            started = roll_out_undoable(cluster, spec, executables)
            endpoint = started.endpoint_url or ""
            check = wait_healthy(
                cluster, request.name, plan.served_model_name, request.ready_timeout_s
            )
            # The revision and the attempt's end are one store transaction.
            record_revision(deployment_id, started, spec_hash, attempt_id)
    except Exception as exc:
        if attempt_id is not None:
            undo_unfinished_attempt(cluster, request.name, attempt_id, previous)
        reason = rollout_failure(deployment_id, attempt_id, f"{type(exc).__name__}: {exc}")
        move_deployment(deployment_id, "failed", reason)
        raise

    # 8. Record the endpoint and the status.
    record_rollout(
        deployment_id,
        model_id=model_id,
        spec_hash=spec_hash,
        plan=plan.model_dump(mode="json"),
        engine=plan.engine,
        image=plan.image,
        command=plan.host_command,
        endpoint_url=endpoint,
    )
    move_deployment(deployment_id, "ready", f"serving {check.served_models} at {endpoint}")
    outcome: dict[str, Any] = {
        "deployment": request.name,
        "status": "ready",
        "changed": True,
        "endpoint_url": endpoint,
        "plan": plan.model_dump(mode="json"),
    }
    if placement is not None:
        outcome["placement"] = placement.model_dump(mode="json", exclude={"plan"})

    # 7. Optionally measure it.
    if request.benchmark is not None:
        # An adapter is measured through the same endpoint, selected per request.
        model, extra_body = adapter_selection(plan, request.benchmark.adapter)
        config = request.benchmark.to_config(
            url=endpoint,
            model=model,
            name=request.name,
            deployment=request.name,
            extra_body=extra_body,
        )
        price = price_plan(plan, request.cluster)
        outcome["benchmark"] = run_benchmark(
            config, deployment_id=deployment_id, price=price, cluster=cluster
        )
    print(f"{request.name} ready at {endpoint}")
    return outcome
