"""The planner's known cases. Each docstring carries the arithmetic that makes the answer right.

Constants used (budcluster.planning.memory): gpu_memory_utilization 0.90, 2 GiB runtime
overhead per accelerator, KV bytes per token = 2 x layers x kv_heads x head_dim x 2 (bf16).
Model shapes are the public config.json values in tests/fixtures/models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.hardware.inventory import NodeInventory
from budcluster.hardware.lscpu import parse_lscpu
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels, read_label_sets
from budcluster.hardware.nvidia_text import parse_nvidia_smi_capture
from budcluster.hardware.nvidia_xml import parse_nvidia_smi_xml
from budcluster.modelfacts import load_model_facts
from budcluster.planning import NoFeasiblePlan, PlanRequest, plan

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
GIB = 1024**3


def facts(name: str):  # type: ignore[no-untyped-def]
    return load_model_facts(MODELS / name)


def gpu_node(count: int, product: str, mib: int) -> NodeInventory:
    return NodeInventory.model_validate(
        {
            "node_name": "gpu-node",
            "nvidia": {
                "gpus": [
                    {
                        "index": i,
                        "product": product,
                        "memory_total_mib": mib,
                        "mig_mode": "disabled",
                    }
                    for i in range(count)
                ]
            },
            "memory": {"total_mib": 2 * 1024 * 1024},
        }
    )


def gaudi2_node(count: int = 8) -> NodeInventory:
    return NodeInventory.model_validate(
        {
            "node_name": "gaudi2-node",
            "gaudi": {
                "devices": [
                    {
                        "index": i,
                        "model": "HL-225",
                        "generation": "Gaudi2",
                        "memory_total_mib": 98304,
                    }
                    for i in range(count)
                ]
            },
        }
    )


def test_llama_8b_on_one_h100_is_tp1(hw: Path) -> None:
    """8,030,261,248 params x 2 B = 14.96 GiB of weights. One H100 (81559 MiB = 79.65 GiB) x 0.90
    = 71.68 GiB usable; minus weights and 2 GiB overhead leaves a 54.73 GiB KV budget. KV per
    token = 2 x 32 x 8 x 128 x 2 = 131072 B, so 8192 tokens need 1.00 GiB. TP 1 fits."""
    text = (
        hw / "nvidia-smi-captures" / "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"
    ).read_text()
    h100 = NodeInventory.model_validate(merge_fragments(parse_nvidia_smi_capture(text)))
    result = plan(facts("Llama-3.1-8B-Instruct"), [h100], PlanRequest(max_model_len=8192))
    assert result.device_kind == "cuda" and result.engine == "vllm"
    assert result.tensor_parallel_size == 1
    assert result.memory.weight_bytes == 8_030_261_248 * 2
    assert result.memory.kv_bytes_per_token == 131_072
    assert result.memory.kv_budget_bytes_per_device // GIB == 54
    assert result.resources["limits"]["nvidia.com/gpu"] == "1"
    assert result.image.startswith("vllm/vllm-openai:")
    assert result.args[result.args.index("--tensor-parallel-size") + 1] == "1"
    assert result.host_command[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]


def test_llama_70b_on_8x_h100_at_8192_is_tp4() -> None:
    """70,553,706,496 params x 2 B = 131.42 GiB. KV per token = 2 x 80 x 8 x 128 x 2 = 327680 B;
    8192 tokens x 16 sequences = 131072 tokens = 40.00 GiB. Usable per H100 = 71.68 GiB.
    TP 1: 131.42 alone exceeds 71.68. TP 2: 65.71 + 2 + 20.00 = 87.71 > 71.68, no.
    TP 4: 32.85 + 2 + 10.00 = 44.85 <= 71.68, fits (64 heads and 8 KV heads divide by 4).
    Eight free GPUs / TP 4 = 2 replicas."""
    result = plan(
        facts("Llama-3.1-70B-Instruct"),
        [gpu_node(8, "NVIDIA H100 80GB HBM3", 81559)],
        PlanRequest(max_model_len=8192, concurrency=16),
    )
    assert result.tensor_parallel_size == 4
    assert result.replicas == 2
    assert [p.device_indices for p in result.placements] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert result.memory.kv_bytes_needed == 40 * GIB
    assert result.memory.fits and result.memory.headroom_bytes_per_device > 26 * GIB
    assert result.resources["limits"]["nvidia.com/gpu"] == "4"


def test_llama_70b_single_sequence_needs_only_tp2() -> None:
    """With one sequence KV is 2.50 GiB: TP 2 = 65.71 + 2 + 1.25 = 68.96 <= 71.68 fits, so the
    answer moves with the request; TP is never forced to a constant."""
    result = plan(
        facts("Llama-3.1-70B-Instruct"),
        [gpu_node(8, "NVIDIA H100 80GB HBM3", 81559)],
        PlanRequest(max_model_len=8192, concurrency=1),
    )
    assert result.tensor_parallel_size == 2


def test_llama_70b_on_8x_gaudi2_is_tp4_with_hpu_flags() -> None:
    """Gaudi2: 98304 MiB = 96 GiB x 0.90 = 86.40 GiB usable. TP 2: 65.71 + 2 + 20.00 = 87.71
    > 86.40 (1.3 GiB short). TP 4: 32.85 + 2 + 10.00 = 44.85 fits."""
    result = plan(
        facts("Llama-3.1-70B-Instruct"),
        [gaudi2_node()],
        PlanRequest(max_model_len=8192, concurrency=16),
    )
    assert result.device_kind == "hpu"
    assert result.tensor_parallel_size == 4
    assert result.image.startswith("vault.habana.ai/gaudi-docker/")
    assert result.args[-2:] == ["--device", "hpu"]
    assert result.env["HABANA_VISIBLE_DEVICES"] == "all"
    assert result.host_env["HABANA_VISIBLE_DEVICES"] == "0,1,2,3"
    assert result.env["PT_HPU_ENABLE_LAZY_COLLECTIVES"] == "true"
    assert result.resources["limits"]["habana.ai/gaudi"] == "4"


def test_busy_gaudi_cards_are_skipped(hw: Path) -> None:
    """The HL-225 fixture has six cards holding 82-95 GiB of other work and one idle card (1):
    the 8B model lands on card 1 alone."""
    from budcluster.hardware.hlsmi import parse_hl_smi

    text = (
        hw / "hl-smi" / "hl-smi_8x-HL-225-gaudi2_driver-1.21.1_vdwarakn-readme-excerpt.txt"
    ).read_text()
    node = NodeInventory.model_validate(merge_fragments(parse_hl_smi(text)))
    result = plan(facts("Llama-3.1-8B-Instruct"), [node])
    assert result.placements[0].device_indices == [1]


def test_qwen_05b_on_amx_cpu_node(hw: Path) -> None:
    """No accelerator, so auto falls to CPU; the 8462Y+ has AMX -> bf16, vLLM CPU build.
    KV per token = 2 x 24 x 2 x 64 x 2 = 12288 B; 8192 x 4 = 32768 tokens = 0.375 GiB.
    RAM budget = 500 GiB available x 0.80 - 0.92 GiB weights - 4 GiB overhead = 395 GiB, so KV
    space = max(4 GiB default, 2 x 0.375) = 4 GiB, well within RAM. Threads bind to NUMA node 0's
    physical cores 0-31 minus one for the server: 0-30 (from lscpu's real NUMA layout)."""
    name = "lscpu_intel-xeon-platinum-8462Yplus_sapphirerapids_2s_vllm-ascend-issue264-excerpt.txt"
    cpu = parse_lscpu((hw / "cpu" / name).read_text())
    node = NodeInventory.model_validate(
        merge_fragments(cpu, {"memory": {"total_mib": 512 * 1024, "available_mib": 500 * 1024}})
    )
    result = plan(
        facts("Qwen2.5-0.5B-Instruct"), [node], PlanRequest(max_model_len=8192, concurrency=4)
    )
    assert (result.device_kind, result.engine, result.dtype) == ("cpu", "vllm", "bfloat16")
    assert result.memory.kv_bytes_per_token == 12288
    assert result.env["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert result.env["VLLM_CPU_OMP_THREADS_BIND"] == "0-30"
    assert result.image.startswith("public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:")
    assert result.resources["limits"]["cpu"] == "64"  # NUMA node 0 incl. SMT siblings
    assert "--gpu-memory-utilization" not in result.args


def test_cpu_kv_space_is_capped_by_ram() -> None:
    """8 GiB RAM x 0.80 = 6.4 GiB - 0.92 weights - 4 overhead = 1.48 GiB budget: KV space 1 GiB,
    not the 4 GiB default, because RAM is what sizes it."""
    node = NodeInventory.model_validate(
        {
            "cpu": {"architecture": "x86_64", "isa_flags": ["avx2", "avx512f"],
                    "numa_nodes": [{"id": 0, "cpus": [0, 1, 2, 3], "physical_cpus": [0, 1, 2, 3]}]},
            "memory": {"total_mib": 8 * 1024},
        }
    )  # fmt: skip
    result = plan(
        facts("Qwen2.5-0.5B-Instruct"), [node], PlanRequest(max_model_len=2048, dtype="bfloat16")
    )
    assert result.env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert result.env["VLLM_CPU_OMP_THREADS_BIND"] == "0-3"  # 4 cores: none held back


def test_405b_on_one_a10g_has_no_feasible_plan(hw: Path) -> None:
    """405,853,388,800 params x 2 B = 756 GiB vs one A10G's 22.49 GiB x 0.90 = 20.24 GiB.
    TP cannot exceed the one device, and TP is capped at 8 by the 8 KV heads, so even int4
    (189 GiB) needs 8 devices of >= 29 GiB. The error must say so."""
    text = (hw / "nvidia-smi-xml" / "a10g_telegraf.xml").read_text()
    node = NodeInventory.model_validate(merge_fragments(parse_nvidia_smi_xml(text)))
    with pytest.raises(NoFeasiblePlan) as caught:
        plan(facts("Llama-3.1-405B-Instruct"), [node])
    error = caught.value
    assert error.closest and "A10G" in error.closest[0].devices
    assert error.closest[0].shortfall_bytes > 700 * GIB
    assert any("int4" in fix and "8 devices of at least 29 GiB" in fix for fix in error.fixes)
    assert any("TP is capped at 8" in fix for fix in error.fixes)


def test_mig_slices_are_devices_of_their_own_size(hw: Path) -> None:
    """Mixed-strategy H100 with 3g.40gb (40320 MiB), 2g.20gb, 2x 1g.10gb. Llama-8B needs
    14.96 + 2 + 1.00 GiB = 17.96 GiB: 2g.20gb gives 19.63 x 0.9 = 17.66 GiB (no), 3g.40gb gives
    39.38 x 0.9 = 35.44 GiB (yes). Qwen-0.5B fits the smallest slice, and takes it."""
    name = "nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-mixed-node-labels.json"
    labels = next(iter(read_label_sets((hw / "k8s-node-labels" / name).read_text()).values()))
    node = NodeInventory.model_validate(merge_fragments(parse_node_labels(labels)))
    big = plan(facts("Llama-3.1-8B-Instruct"), [node], PlanRequest(max_model_len=8192))
    assert big.placements[0].mig_profile == "3g.40gb"
    assert big.resources["limits"] == {
        "nvidia.com/mig-3g.40gb": "1",
        "memory": big.resources["limits"]["memory"],
    }
    assert big.tensor_parallel_size == 1
    small = plan(facts("Qwen2.5-0.5B-Instruct"), [node])
    assert small.placements[0].mig_profile == "1g.10gb"


def test_auto_prefers_cuda_then_hpu_and_device_overrides(hw: Path) -> None:
    nodes = [gaudi2_node(), gpu_node(1, "NVIDIA H100 80GB HBM3", 81559)]
    assert plan(facts("Llama-3.1-8B-Instruct"), nodes).device_kind == "cuda"
    assert (
        plan(facts("Llama-3.1-8B-Instruct"), nodes, PlanRequest(device="hpu")).device_kind == "hpu"
    )


def test_tp_must_divide_heads() -> None:
    """Qwen2.5-0.5B has 14 heads and 2 KV heads: valid TP sizes are 1 and 2 only."""
    from budcluster.planning.memory import valid_tensor_parallel_sizes

    assert valid_tensor_parallel_sizes(facts("Qwen2.5-0.5B-Instruct"), 8) == [1, 2]
    assert valid_tensor_parallel_sizes(facts("Llama-3.1-70B-Instruct"), 8) == [1, 2, 4, 8]


def test_cli_plan_json_and_exit_2(tmp_path: Path, hw: Path) -> None:
    runner = CliRunner()
    inv = tmp_path / "a10g.json"
    parsed = runner.invoke(
        app,
        [
            "hardware",
            "parse",
            "--nvidia-smi-xml",
            str(hw / "nvidia-smi-xml" / "a10g_telegraf.xml"),
            "--json",
        ],
    )
    assert parsed.exit_code == 0, parsed.output
    inv.write_text(parsed.output)
    ok = runner.invoke(
        app,
        [
            "plan",
            "--model",
            str(MODELS / "Qwen2.5-0.5B-Instruct"),
            "--inventory",
            str(inv),
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["device_kind"] == "cuda"
    bad = runner.invoke(app, ["plan", "--model", str(MODELS / "Llama-3.1-405B-Instruct" / "config.json"),
                              "--inventory", str(inv), "--json"])  # fmt: skip
    assert bad.exit_code == 2
    assert json.loads(bad.output)["error"] == "NoFeasiblePlan"


def test_image_map_is_overridable() -> None:
    result = plan(
        facts("Llama-3.1-8B-Instruct"),
        [gpu_node(1, "NVIDIA L40S", 46068)],
        PlanRequest(images={"vllm-cuda": "registry.local/vllm:pinned"}),
    )
    assert result.image == "registry.local/vllm:pinned"
