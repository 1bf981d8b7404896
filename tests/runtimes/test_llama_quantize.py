"""llama-quantize from the kept build tree, on the demo GGUF: Q8_0 and Q4_K_M, real runs."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest

from budcluster.bench.compare import compare_summaries, render_changes
from budcluster.bench.report import summary_dict
from budcluster.bench.runner import BenchmarkConfig, run_benchmark
from budcluster.bench.specs import TokenLengthSpec, parse_profile
from budcluster.demo_model import SERVED_NAME, DemoModel
from budcluster.hardware.inventory import CpuInfo, MemoryInfo, NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import plan
from budcluster.planning.commands import llama_cpp_args
from budcluster.quantize_job import lineage_facts, version_name, write_version_manifest
from budcluster.runtimes._cache import read_stamp
from budcluster.runtimes.llama_quantize import (
    QuantizeResult,
    ensure_llama_quantize,
    parse_quantize_log,
    quantize_gguf,
)
from budcluster.runtimes.llama_server import (
    LLAMA_SERVER_STARTUP_BUDGET_S,
    ensure_llama_server,
    llama_cpp_dir,
)

from .conftest import free_port, running_server, wait_healthy


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def quantize_binary() -> Path:
    server = ensure_llama_server()
    before = (_sha256(server), server.stat().st_mtime_ns)
    binary = ensure_llama_quantize()
    # The cached server is neither rebuilt nor relinked by the extra target.
    assert (_sha256(server), server.stat().st_mtime_ns) == before
    assert ensure_llama_server() == server
    return binary


@pytest.fixture(scope="module")
def quantized(
    quantize_binary: Path, demo_with_gguf: DemoModel, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, QuantizeResult]:
    assert demo_with_gguf.gguf_file is not None
    out = tmp_path_factory.mktemp("quantized")
    results = {}
    for quant_type in ("Q8_0", "Q4_K_M"):
        version = out / version_name(demo_with_gguf.gguf_file, quant_type)
        results[quant_type] = quantize_gguf(
            demo_with_gguf.gguf_file, version / f"{version.name}.gguf", quant_type,
            binary=quantize_binary,
        )  # fmt: skip
    return results


def test_binary_is_stamped_beside_the_server(quantize_binary: Path) -> None:
    stamp = read_stamp(quantize_binary.parent)
    assert stamp is not None
    assert quantize_binary == llama_cpp_dir() / "quantize-bin" / "llama-quantize"
    assert ensure_llama_quantize() == quantize_binary  # cached: no rebuild
    print(f"llama-quantize build_s={stamp['build_s']}")


def test_q8_0_and_q4_k_m_shrink_the_file_and_record_fallbacks(
    demo_with_gguf: DemoModel, quantized: dict[str, QuantizeResult]
) -> None:
    assert demo_with_gguf.gguf_file is not None
    f16_bytes = demo_with_gguf.gguf_file.stat().st_size
    q8, q4 = quantized["Q8_0"], quantized["Q4_K_M"]
    q8_bytes, q4_bytes = q8.output.stat().st_size, q4.output.stat().st_size
    print(f"f16 {f16_bytes} B, Q8_0 {q8_bytes} B, Q4_K_M {q4_bytes} B")
    assert q4_bytes < q8_bytes < f16_bytes
    assert q8.type_counts().get("q8_0", 0) > 0 and not q8.fallbacks
    # The tiny model's 128 columns are not a multiple of the k-quants' 256-wide blocks:
    # llama-quantize falls back per tensor, and the result says which and to what.
    assert q4.fallbacks, q4.type_counts()
    assert all(f.block == 256 and f.ncols % 256 for f in q4.fallbacks)
    assert {f.used for f in q4.fallbacks} <= {"q5_0", "q8_0", "q5_1", "q4_0", "f16"}
    assert q4.quant_size_mib is not None and q4.model_size_mib is not None
    assert q4.quant_size_mib < q4.model_size_mib


def test_the_planner_sizes_the_q4_k_m_gguf_from_its_tensor_bytes(
    demo_with_gguf: DemoModel, quantized: dict[str, QuantizeResult]
) -> None:
    assert demo_with_gguf.gguf_file is not None
    original = load_model_facts(demo_with_gguf.gguf_file)
    facts = load_model_facts(quantized["Q4_K_M"].output)
    # An independent reader (the sdist's own gguf-py) gives the tensors' byte sizes.
    sys.path.insert(0, str(llama_cpp_dir() / "src" / "gguf-py"))
    try:
        from gguf import GGUFReader  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    tensor_bytes = sum(int(t.n_bytes) for t in GGUFReader(str(facts.gguf_file)).tensors)
    assert facts.weight_bytes == tensor_bytes
    assert original.weight_bytes is not None and tensor_bytes < original.weight_bytes
    assert facts.parameter_count == original.parameter_count
    node = NodeInventory(
        node_name="n1",
        cpu=CpuInfo(architecture="x86_64", sockets=1, cores_per_socket=2, threads_per_core=1,
                    logical_cpus=2),
        memory=MemoryInfo(total_mib=8192, available_mib=6144),
    )  # fmt: skip
    planned, planned_original = plan(facts, [node]), plan(original, [node])
    assert planned.memory.weight_bytes == tensor_bytes
    assert planned.memory.weight_bytes < planned_original.memory.weight_bytes


def test_manifest_and_lineage_of_the_version(
    demo_with_gguf: DemoModel, quantized: dict[str, QuantizeResult]
) -> None:
    result = quantized["Q4_K_M"]
    manifest = write_version_manifest(result.output.parent)
    assert [e.path for e in manifest.files] == [result.output.name]
    assert manifest.files[0].sha256 == _sha256(result.output)
    lineage = lineage_facts(
        result, parent_model_id=7, parent_uri=str(demo_with_gguf.path),
        parent_weight_bytes=100, weight_bytes=50,
    )  # fmt: skip
    assert lineage["type"] == "Q4_K_M" and lineage["from_model_id"] == 7
    assert len(lineage["fallbacks"]) == len(result.fallbacks)


def test_benchmark_compares_the_q4_k_m_version_with_the_original(
    demo_with_gguf: DemoModel, quantized: dict[str, QuantizeResult], tmp_path: Path
) -> None:
    """Both GGUFs served in turn by llama-server as deploy-model runs it (llama_cpp_args);
    the project's benchmark measures each and its compare step reports the changes."""
    assert demo_with_gguf.gguf_file is not None
    server_binary = ensure_llama_server()
    summaries: dict[str, dict[str, Any]] = {}
    for label, gguf in (("f16", demo_with_gguf.gguf_file), ("Q4_K_M", quantized["Q4_K_M"].output)):
        port = free_port()
        args = llama_cpp_args(str(gguf), "127.0.0.1", port, 1, 512, 2, SERVED_NAME)
        with running_server([str(server_binary), *args], port, tmp_path / f"{label}.log") as srv:
            wait_healthy(srv, LLAMA_SERVER_STARTUP_BUDGET_S)
            config = BenchmarkConfig(
                url=srv.base_url,
                model=SERVED_NAME,
                profile=parse_profile("concurrency:1"),
                max_requests=4,
                warmup_requests=1,
                input_tokens=TokenLengthSpec("fixed", 16),
                output_tokens=TokenLengthSpec("fixed", 32),
                tokenizer=str(demo_with_gguf.path),
                ignore_eos=True,
                name=f"quantize-{label}",
            )
            summaries[label] = summary_dict(run_benchmark(config))
        assert summaries[label]["requests_completed"] == 4, summaries[label]
        assert summaries[label]["error_rate"] == 0.0
    changes = compare_summaries(summaries["f16"], summaries["Q4_K_M"], default_pct=1000.0)
    print(render_changes(changes))
    print(
        "output tokens/s: "
        + ", ".join(f"{k}={v['output_token_throughput']:.0f}" for k, v in summaries.items())
    )
    assert {c.metric for c in changes} >= {"output_token_throughput"}
    assert all(v["output_token_throughput"] > 0 for v in summaries.values())


def test_parse_quantize_log_reads_fallbacks_and_sizes() -> None:
    log = (
        "[   1/  37]                   token_embd.weight - [  128,  2048,     1,     1], "
        "type =    f16, warning: token_embd.weight                    - ncols    128 not "
        "divisible by 256 (required for type    q4_K) -> falling back to    q5_0\n"
        "converting to q5_0 .. size =     0.50 MiB ->     0.17 MiB\n"
        "llama_model_quantize_impl: model size  =     2.92 MiB (16.00 BPW)\n"
        "llama_model_quantize_impl: quant size  =     1.14 MiB (6.24 BPW)\n"
    )
    _, fallbacks, sizes = parse_quantize_log(log)
    assert [(f.tensor, f.wanted, f.used) for f in fallbacks] == [
        ("token_embd.weight", "q4_K", "q5_0")
    ]
    assert sizes == {"model": 2.92, "quant": 1.14}
