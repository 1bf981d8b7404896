"""Tasks of the quantize-model flow: build llama-quantize, run it, hash and describe the result."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from budcluster.hardware.inventory import NodeInventory
from budcluster.planning.gpu_quantization import GpuQuantizationPlan, refuse_without_gpu
from budcluster.quantize_job import write_version_manifest
from budcluster.runtimes.llama_quantize import QuantizeResult, ensure_llama_quantize, quantize_gguf
from budcluster.transfer.manifest import build_manifest
from tasks._logging import task_logger


# A first build on a machine with a cold cache builds llama-server first (minutes).
@task(retries=0, timeout_seconds=2400, task_run_name="build-llama-quantize")
def build_llama_quantize() -> str:
    return str(ensure_llama_quantize(progress=task_logger(__name__).info))


@task(retries=0, timeout_seconds=1800, task_run_name="llama-quantize-{quant_type}")
def run_llama_quantize(
    binary: str, source: str, output: str, quant_type: str, threads: int | None
) -> QuantizeResult:
    result = quantize_gguf(
        Path(source), Path(output), quant_type, binary=Path(binary), threads=threads
    )
    log = task_logger(__name__)
    log.info("%s: %s in %.2f s; tensor types %s", output, quant_type, result.duration_s,
             result.type_counts())  # fmt: skip
    if result.fallbacks:
        log.warning(
            "%d tensor(s) did not suit %s and fell back: %s",
            len(result.fallbacks),
            quant_type,
            ", ".join(f"{f.tensor}->{f.used}" for f in result.fallbacks[:8]),
        )
    return result


@task(retries=1, retry_delay_seconds=2, timeout_seconds=600, task_run_name="version-manifest")
def version_manifest(version_dir: str, write: bool = True) -> list[dict[str, Any]]:
    """The directory's manifest; ``write=False`` leaves a source directory untouched."""
    directory = Path(version_dir)
    manifest = write_version_manifest(directory) if write else build_manifest(directory)
    return [entry.to_dict() for entry in manifest.files]


@task(retries=0, timeout_seconds=30, task_run_name="check-gpu-cluster")
def check_gpu_cluster(method: str, cluster: str | None, inventories: list[NodeInventory]) -> None:
    gpus = sum(len(node.nvidia.gpus) if node.nvidia else 0 for node in inventories)
    refusal = refuse_without_gpu(method, cluster, gpus)
    if refusal is not None:
        raise ValueError(refusal)


@task(retries=1, retry_delay_seconds=2, timeout_seconds=30, task_run_name="publish-quantize-plan")
def publish_gpu_plan(plan: GpuQuantizationPlan) -> None:
    lines = [f"# {plan.method} ({plan.scheme})", "", "recipe.yaml:", "```yaml", plan.recipe, "```"]
    for title, argv in (("quantize", plan.quantize_argv), ("serve", plan.serve_argv)):
        lines += [f"{title}:", "```", " ".join(argv), "```"]
    lines += [f"- {note}" for note in plan.notes]
    create_markdown_artifact(key="quantize-plan", markdown="\n".join(lines))
    task_logger(__name__).info("plan: %s", asdict(plan))
