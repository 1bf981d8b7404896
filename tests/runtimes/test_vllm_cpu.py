"""vLLM's CPU build from the cached venv, serving the demo HF directory for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcluster.demo_model import SERVED_NAME, DemoModel
from budcluster.runtimes.vllm_cpu import (
    VLLM_STARTUP_BUDGET_S,
    ensure_vllm_cpu,
    vllm_cpu_env,
    vllm_server_command,
)

from .conftest import free_port, http_json, running_server, wait_healthy

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
