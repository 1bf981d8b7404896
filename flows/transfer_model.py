"""Runbook: copy a model onto a cluster's nodes and verify it there."""

from __future__ import annotations

from prefect import flow

from budcluster.job_requests import TransferModelRequest
from budcluster.targets.base import StagedModel
from tasks.clusters import registered_cluster, verify_registered_cluster
from tasks.credentials import model_source
from tasks.models import locate_model_metadata, model_format
from tasks.planning import read_model_facts
from tasks.records import record_model, record_transfer
from tasks.rollout import stage_model


@flow(name="transfer-model", log_prints=True)
def transfer_model(request: TransferModelRequest) -> StagedModel:
    """Stage the model on the nodes (all of them by default); resumes a partial copy."""
    cluster = registered_cluster(request.cluster)
    request.check_cluster_kind(cluster.kind)
    access = verify_registered_cluster(cluster)
    source = model_source(request.model)
    facts = read_model_facts(locate_model_metadata(source))
    nodes = request.nodes or access.nodes
    staged = stage_model(cluster, source, request.model.model_name, nodes, request.pod_scheduling())
    facts_json = facts.model_dump(mode="json")
    model_id = record_model(
        request.model.model_name,
        request.model.uri,
        model_format(facts),
        staged.manifest,
        facts_json,
    )
    record_transfer(model_id, request.cluster, None, staged, True)
    print(f"{request.model.model_name}: {staged.files} files verified on {', '.join(staged.nodes)}")
    return staged
