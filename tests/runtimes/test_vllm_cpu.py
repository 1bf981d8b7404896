"""vLLM's CPU build from the cached venv, serving the demo HF directory for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcluster.demo_lora import build_demo_lora
from budcluster.demo_model import SERVED_NAME, DemoModel
from budcluster.modelfacts.lora import load_adapter_facts
from budcluster.planning.lora import adapter_args, planned_adapter
from budcluster.runtimes.vllm_cpu import (
    VLLM_STARTUP_BUDGET_S,
    ensure_vllm_cpu,
    vllm_cpu_env,
    vllm_server_command,
)

from .conftest import RunningServer, free_port, http_json, running_server, wait_healthy

pytestmark = pytest.mark.slow  # ~65 s to start; still part of CI


def test_vllm_cpu_serves_the_demo_hf_directory(demo_hf: DemoModel, tmp_path: Path) -> None:
    python = ensure_vllm_cpu()
    port = free_port()
    cmd = vllm_server_command(
        python, demo_hf.path, served_model_name=SERVED_NAME, port=port, max_model_len=512,
        dtype="bfloat16", max_num_seqs=4,
    )  # fmt: skip
    env = {**vllm_cpu_env(kv_cache_gib=1), "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    with running_server(cmd, port, tmp_path / "vllm.log", env=env) as server:
        startup_s = wait_healthy(server, VLLM_STARTUP_BUDGET_S)
        print(f"vllm-cpu healthy after {startup_s:.1f} s")

        status, models = http_json(f"{server.base_url}/v1/models")
        assert status == 200
        assert SERVED_NAME in [m["id"] for m in models["data"]]

        status, completion = http_json(
            f"{server.base_url}/v1/completions",
            {"model": SERVED_NAME, "prompt": "The server", "max_tokens": 16, "temperature": 0.8},
            timeout=120,
        )
        assert status == 200, completion
        assert completion["usage"]["completion_tokens"] == 16
        assert completion["choices"][0]["text"]

        status, chat = http_json(
            f"{server.base_url}/v1/chat/completions",
            {
                "model": SERVED_NAME,
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 8,
            },
            timeout=120,
        )
        assert status == 200, chat
        assert chat["usage"]["completion_tokens"] == 8


def _greedy(server: RunningServer, model: str, prompt: str) -> str:
    status, completion = http_json(
        f"{server.base_url}/v1/completions",
        {"model": model, "prompt": prompt, "max_tokens": 12, "temperature": 0},
        timeout=120,
    )
    assert status == 200, f"{completion}\n{server.log_tail()}"
    assert completion["usage"]["completion_tokens"] == 12
    return str(completion["choices"][0]["text"])


def test_vllm_cpu_serves_a_peft_adapter_beside_the_base(demo_hf: DemoModel, tmp_path: Path) -> None:
    """The planner's LoRA flags (not hand-written ones) on a real vLLM CPU server.

    float32, not bfloat16: with --enable-lora and bfloat16, vLLM 0.32's CPU worker dies
    with SIGILL (exit -4) on a two-token prompt on this machine (see docs/lora.md).
    """
    python = ensure_vllm_cpu()
    # Rank 12 is not one of vLLM's --max-lora-rank values: the planner must round it up.
    peft = build_demo_lora(demo_hf.path, tmp_path / "tone-peft", rank=12)
    lora_flags = adapter_args(
        "vllm", [planned_adapter("tone", load_adapter_facts(peft))], {"tone": str(peft)}
    )
    assert lora_flags[lora_flags.index("--max-lora-rank") + 1] == "16"
    port = free_port()
    cmd = vllm_server_command(
        python, demo_hf.path, served_model_name=SERVED_NAME, port=port, max_model_len=512,
        dtype="float32", max_num_seqs=4,
    ) + lora_flags  # fmt: skip
    env = {**vllm_cpu_env(kv_cache_gib=1), "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    with running_server(cmd, port, tmp_path / "vllm.log", env=env) as server:
        startup_s = wait_healthy(server, VLLM_STARTUP_BUDGET_S)
        print(f"vllm-cpu with a LoRA healthy after {startup_s:.1f} s")

        status, models = http_json(f"{server.base_url}/v1/models")
        assert status == 200, models
        listed = {m["id"]: m for m in models["data"]}
        assert SERVED_NAME in listed, models
        assert "tone" in listed, models
        assert listed["tone"]["parent"] == SERVED_NAME, listed["tone"]

        for prompt in ("The server", "Once upon a time"):
            base = _greedy(server, SERVED_NAME, prompt)
            tuned = _greedy(server, "tone", prompt)
            print(f"{prompt!r}: base {base!r}; adapter {tuned!r}")
            assert base != tuned, (prompt, base, tuned)
            # Greedy, so the base answers alike again: the adapter left nothing behind.
            assert _greedy(server, SERVED_NAME, prompt) == base

        status, missing = http_json(
            f"{server.base_url}/v1/completions",
            {"model": "no-such-adapter", "prompt": "The server", "max_tokens": 4},
            timeout=60,
        )
        assert status == 404, missing
