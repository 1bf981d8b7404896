"""Runbook: quantize a model into a new catalogue version linked to the one it came from.

GGUF types run here with llama-quantize (CPU); AWQ, GPTQ and FP8 are planned for an NVIDIA
GPU node of a registered cluster (the recipe and the exact argv, as an artifact), and
refused on a cluster without one.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow

from budcluster.job_requests import QuantizeModelRequest
from budcluster.planning.gpu_quantization import gpu_quantization_plan
from budcluster.quantize_job import default_output_dir, lineage_facts, source_gguf
from budcluster.settings import get_settings
from tasks.clusters import detect_nodes, registered_cluster
from tasks.planning import read_model_facts
from tasks.quantize import (
    build_llama_quantize,
    check_gpu_cluster,
    publish_gpu_plan,
    run_llama_quantize,
    version_manifest,
)
from tasks.records import record_model

_ONESHOT_ENTRY = "budcluster_oneshot.py"
"""The name the oneshot entry script (budcluster/runtimes/_oneshot_entry.py) has on the node."""


@flow(name="quantize-model", log_prints=True)
def quantize_model(request: QuantizeModelRequest) -> dict[str, Any]:
    """GGUF: quantize, hash, record the version. GPU methods: check the cluster, publish the plan."""
    if request.on_gpu:
        return _plan_on_gpu(request)
    source = source_gguf(Path(request.source).expanduser().resolve())
    parent_facts = read_model_facts(str(source))
    parent_files = version_manifest(str(source.parent), write=False)
    parent_id = record_model(
        source.stem, str(source.parent), "gguf", parent_files,
        parent_facts.model_dump(mode="json"),
    )  # fmt: skip
    version_dir = (
        Path(request.output_dir).expanduser().resolve()
        if request.output_dir
        else default_output_dir(get_settings().data_dir.resolve(), source, request.quantization)
    )
    output = version_dir / f"{version_dir.name}.gguf"
    binary = build_llama_quantize()
    result = run_llama_quantize(
        binary, str(source), str(output), request.quantization, request.threads
    )
    facts = read_model_facts(str(output))
    files = version_manifest(str(version_dir))
    facts_json = facts.model_dump(mode="json")
    facts_json["quantization"] = lineage_facts(
        result,
        parent_model_id=parent_id,
        parent_uri=str(source.parent),
        parent_weight_bytes=parent_facts.weight_bytes,
        weight_bytes=facts.weight_bytes,
    )
    model_id = record_model(version_dir.name, str(version_dir), "gguf", files, facts_json)
    print(
        f"{version_dir.name}: model {model_id} from model {parent_id}; "
        f"weights {parent_facts.weight_bytes} -> {facts.weight_bytes} bytes; "
        f"{len(result.fallbacks)} tensor fallback(s); deploy it with model uri {output}"
    )
    return {"model_id": model_id, "from_model_id": parent_id, "gguf": str(output), **facts_json}


def _plan_on_gpu(request: QuantizeModelRequest) -> dict[str, Any]:
    inventories = detect_nodes(registered_cluster(request.cluster)) if request.cluster else []
    check_gpu_cluster(request.quantization, request.cluster, inventories)
    name = Path(request.source).name
    output_dir = request.output_dir or f"{request.source.rstrip('/')}-{request.quantization}"
    plan = gpu_quantization_plan(
        request.quantization, request.source, output_dir,
        entry_script=_ONESHOT_ENTRY, served_name=name,
    )  # fmt: skip
    publish_gpu_plan(plan)
    return {"plan": asdict(plan)}
