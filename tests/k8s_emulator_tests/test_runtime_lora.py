"""The simulated engine with LoRA adapters, as vLLM and llama-server serve them: vLLM lists
each ``--lora-modules`` entry in /v1/models (root = its path, parent = the base model) and
answers a request naming it, 404 for a name it does not serve; llama-server lists its
``--lora-scaled`` adapters at ``GET /lora-adapters`` by position and takes a ``lora`` array
in a request."""

from __future__ import annotations

import json
from typing import Any

from tests.k8s_emulator.runtime_http import SimulatedEngine

VLLM = {
    "image": "vllm/vllm-openai:v0.8.5",
    "args": [
        "--model", "/models/qwen", "--served-model-name", "qwen", "--port", "8000",
        "--enable-lora", "--max-loras", "2", "--max-lora-rank", "16",
        "--lora-modules", "tone=/adapters/tone", "sql=/adapters/sql", "--seed", "1",
    ],
}  # fmt: skip
LLAMA = {
    "image": "ghcr.io/ggml-org/llama.cpp:server",
    "args": [
        "-m", "/models/qwen.gguf", "--alias", "qwen", "--port", "8000",
        "--lora-scaled", "/adapters/tone/tone.gguf:0",
        "--lora-scaled", "/adapters/sql/sql.gguf:0,/adapters/x/x.gguf:0.5",
    ],
}  # fmt: skip


def _call(engine: SimulatedEngine, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    answer = engine.answer(method, path, json.dumps(body).encode() if body else b"", True)
    return answer.status, json.loads(answer.body) if answer.body else None


def test_vllm_lists_and_serves_each_lora_module_under_its_name() -> None:
    engine = SimulatedEngine.of(VLLM)
    status, models = _call(engine, "GET", "/v1/models")
    assert status == 200
    assert [(m["id"], m["root"], m["parent"]) for m in models["data"]] == [
        ("qwen", "/models/qwen", None),
        ("tone", "/adapters/tone", "qwen"),
        ("sql", "/adapters/sql", "qwen"),
    ]
    status, answer = _call(
        engine, "POST", "/v1/completions", {"model": "sql", "prompt": "hi", "max_tokens": 3}
    )
    assert status == 200 and answer["model"] == "sql"
    status, answer = _call(
        engine, "POST", "/v1/completions", {"model": "nope", "prompt": "hi", "max_tokens": 3}
    )
    assert status == 404 and answer["message"] == "The model `nope` does not exist."
    assert _call(engine, "GET", "/lora-adapters")[0] == 404


def test_vllm_without_enable_lora_serves_no_adapter() -> None:
    args = [a for a in VLLM["args"] if a != "--enable-lora"]
    engine = SimulatedEngine.of({**VLLM, "args": args})
    assert [m["id"] for m in _call(engine, "GET", "/v1/models")[1]["data"]] == ["qwen"]
    status, _ = _call(engine, "POST", "/v1/completions", {"model": "tone", "prompt": "hi"})
    assert status == 404


def test_llama_server_lists_its_adapters_by_position_and_takes_a_lora_array() -> None:
    engine = SimulatedEngine.of(LLAMA)
    status, adapters = _call(engine, "GET", "/lora-adapters")
    assert status == 200
    assert [(a["id"], a["path"], a["scale"]) for a in adapters] == [
        (0, "/adapters/tone/tone.gguf", 0.0),
        (1, "/adapters/sql/sql.gguf", 0.0),
        (2, "/adapters/x/x.gguf", 0.5),
    ]
    # /v1/models lists the alias only, whatever adapters are loaded.
    assert [m["id"] for m in _call(engine, "GET", "/v1/models")[1]["data"]] == ["qwen"]
    chosen = {"model": "qwen", "prompt": "hi", "max_tokens": 2, "lora": [{"id": 1, "scale": 1.0}]}
    assert _call(engine, "POST", "/v1/completions", chosen)[0] == 200
    status, answer = _call(engine, "POST", "/v1/completions", {**chosen, "lora": {"id": 1}})
    assert status == 400
    assert answer["error"]["message"].startswith("Error: 'lora' must be an array")
