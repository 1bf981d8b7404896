"""Model facts from config.json, safetensors headers and GGUF headers (written here by hand
following the published formats), and the llama.cpp plan a GGUF model gets on a CPU."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import ModelFactsError, load_model_facts
from budcluster.planning import PlanRequest, plan

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


@pytest.mark.parametrize(
    ("name", "params", "layers", "kv_heads", "head_dim", "max_pos"),
    [
        ("Llama-3.1-8B-Instruct", 8_030_261_248, 32, 8, 128, 131072),
        ("Llama-3.1-70B-Instruct", 70_553_706_496, 80, 8, 128, 131072),
        ("Llama-3.1-405B-Instruct", 405_853_388_800, 126, 8, 128, 131072),
        ("Qwen2.5-0.5B-Instruct", 494_032_768, 24, 2, 64, 32768),
    ],
)
def test_config_only_facts_match_published_sizes(
    name: str, params: int, layers: int, kv_heads: int, head_dim: int, max_pos: int
) -> None:
    """Parameter counts are the Hub's published totals (8.03B, 70.6B, 405.9B, 0.49B)."""
    facts = load_model_facts(MODELS / name / "config.json")
    assert facts.source_format == "hf-config-only"
    assert facts.parameter_count == params
    assert (facts.num_layers, facts.num_kv_heads, facts.head_dim) == (layers, kv_heads, head_dim)
    assert facts.max_position_embeddings == max_pos
    assert facts.dtype == "bfloat16" and facts.weight_bytes == params * 2
    assert facts.sliding_window is None  # Qwen2.5 sets use_sliding_window: false


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, itemsize) in tensors.items():
        size = itemsize
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_safetensors_headers_give_params_bytes_and_dtype(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["MysteryForCausalLM"], "model_type": "mystery"})
    )
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {"a": ("BF16", [4, 8], 2)})
    write_safetensors(
        tmp_path / "model-00002-of-00002.safetensors",
        {"b": ("BF16", [16], 2), "c": ("F32", [2], 4)},
    )
    facts = load_model_facts(tmp_path)
    assert facts.source_format == "hf"
    assert facts.parameter_count == 32 + 16 + 2
    assert facts.weight_bytes == 64 + 32 + 8
    assert facts.dtype == "bfloat16"
    assert facts.architecture == "MysteryForCausalLM"
    # Unknown architecture: bytes are known, the KV shape is not, and the note says so.
    assert any("KV-cache size cannot be derived" in note for note in facts.notes)


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(
    path: Path, metadata: dict[str, object], tensors: list[tuple[str, list[int], int]]
) -> None:
    body = b""
    for key, value in metadata.items():
        body += _gguf_string(key)
        if isinstance(value, str):
            body += struct.pack("<I", 8) + _gguf_string(value)
        else:
            body += struct.pack("<I", 4) + struct.pack("<I", value)
    for name, dims, ggml_type in tensors:
        body += _gguf_string(name) + struct.pack("<I", len(dims))
        body += b"".join(struct.pack("<Q", d) for d in dims)
        body += struct.pack("<IQ", ggml_type, 0)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)) + body)


def tiny_gguf(path: Path) -> None:
    write_gguf(
        path,
        {
            "general.architecture": "qwen2",
            "general.name": "tiny-qwen",
            "qwen2.block_count": 24,
            "qwen2.embedding_length": 896,
            "qwen2.attention.head_count": 14,
            "qwen2.attention.head_count_kv": 2,
            "qwen2.context_length": 32768,
        },
        # Q4_K: 256 elements per 144-byte block; F32 norm vector.
        [("blk.0.ffn_up.weight", [896, 4864], 12), ("output_norm.weight", [896], 0)],
    )


def test_gguf_header(tmp_path: Path) -> None:
    tiny_gguf(tmp_path / "tiny.gguf")
    facts = load_model_facts(tmp_path / "tiny.gguf")
    assert facts.source_format == "gguf"
    assert (facts.architecture, facts.name) == ("qwen2", "tiny-qwen")
    assert (facts.num_layers, facts.num_attention_heads, facts.num_kv_heads) == (24, 14, 2)
    assert facts.head_dim == 64  # 896 / 14
    assert facts.max_position_embeddings == 32768
    assert facts.parameter_count == 896 * 4864 + 896
    assert facts.weight_bytes == (896 * 4864) // 256 * 144 + 896 * 4
    assert facts.dtype == "Q4_K"


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.gguf").write_bytes(b"NOPE")
    with pytest.raises(ModelFactsError, match="GGUF magic"):
        load_model_facts(tmp_path / "bad.gguf")
    with pytest.raises(ModelFactsError, match="expected an HF model directory"):
        load_model_facts(tmp_path / "missing")


def test_gguf_on_cpu_gets_llama_cpp(tmp_path: Path) -> None:
    """llama.cpp splits --ctx-size across --parallel slots: 4096 x 2 = 8192."""
    tiny_gguf(tmp_path / "tiny.gguf")
    node = NodeInventory.model_validate(
        {
            "cpu": {"architecture": "x86_64", "isa_flags": ["avx2"],
                    "numa_nodes": [{"id": 0, "cpus": list(range(8)), "physical_cpus": list(range(8))}]},
            "memory": {"total_mib": 32 * 1024},
        }
    )  # fmt: skip
    facts = load_model_facts(tmp_path / "tiny.gguf")
    result = plan(facts, [node], PlanRequest(max_model_len=4096, concurrency=2))
    assert result.engine == "llama.cpp"
    assert result.image == "ghcr.io/ggml-org/llama.cpp:server"
    cmd = result.host_command
    assert cmd[:3] == ["llama-server", "-m", str(tmp_path / "tiny.gguf")]
    assert cmd[cmd.index("--ctx-size") + 1] == "8192"
    assert cmd[cmd.index("--parallel") + 1] == "2"
    assert "--metrics" in cmd and "--jinja" in cmd
    forced = plan(facts, [node], PlanRequest(max_model_len=4096, engine="vllm"))
    assert forced.engine == "vllm"
