"""llama-server from the cache, serving the demo GGUF: health, models, real completions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from budcluster.demo_model import CHAT_TEMPLATE, SERVED_NAME, SIZES, SPECIAL_TOKENS, DemoModel
from budcluster.modelfacts import load_model_facts
from budcluster.modelfacts.gguf import read_gguf_header
from budcluster.planning.commands import llama_cpp_args
from budcluster.runtimes import _convert_shim
from budcluster.runtimes._cache import read_stamp
from budcluster.runtimes.llama_server import (
    LLAMA_SERVER_STARTUP_BUDGET_S,
    X86_NO_AMX_FLAGS,
    cached_llama_server,
    cmake_options,
    cpu_key,
    ensure_llama_server,
    llama_cpp_dir,
)

from .conftest import free_port, http_json, running_server, wait_healthy

PARALLEL = 2


@pytest.fixture(scope="module")
def llama_server_binary() -> Path:
    # Builds once per machine (~5 min on 2 cores) when the cache is cold; CI warms it.
    return ensure_llama_server()


def test_cache_entry_is_stamped_for_this_cpu(llama_server_binary: Path) -> None:
    stamp = read_stamp(llama_server_binary.parent)
    assert stamp is not None
    assert stamp["cpu_key"] == cpu_key()
    assert "-DLLAMA_CURL=OFF" in stamp["cmake_options"]
    assert stamp["cmake_options"] == list(cmake_options())
    assert llama_server_binary == llama_cpp_dir() / "bin" / "llama-server"
    assert ensure_llama_server() == llama_server_binary  # second call: cached, no rebuild


def test_x86_builds_leave_amx_out_and_a_build_with_other_flags_is_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budcluster.runtimes import llama_server
    from budcluster.runtimes._cache import write_stamp

    monkeypatch.setattr(llama_server.platform, "machine", lambda: "x86_64")
    assert f"-DCMAKE_CXX_FLAGS={X86_NO_AMX_FLAGS}" in cmake_options()
    assert f"-DCMAKE_C_FLAGS={X86_NO_AMX_FLAGS}" in cmake_options()
    monkeypatch.setattr(llama_server.platform, "machine", lambda: "aarch64")
    assert not any("amx" in option for option in cmake_options())

    monkeypatch.setattr(llama_server.platform, "machine", lambda: "x86_64")
    bin_dir = llama_cpp_dir(cache_dir=tmp_path) / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "llama-server").write_bytes(b"")
    # A binary built before the AMX flags (same CPU) is rebuilt, not run.
    write_stamp(bin_dir, {"cpu_key": cpu_key(), "cmake_options": list(llama_server.CMAKE_OPTIONS)})
    assert cached_llama_server(cache_dir=tmp_path) is None
    write_stamp(bin_dir, {"cpu_key": cpu_key(), "cmake_options": list(cmake_options())})
    assert cached_llama_server(cache_dir=tmp_path) == bin_dir / "llama-server"


def test_gguf_facts_match_the_hf_model(demo_with_gguf: DemoModel) -> None:
    assert demo_with_gguf.gguf_file is not None
    facts = load_model_facts(demo_with_gguf.gguf_file)
    assert facts.architecture == "llama"
    assert facts.num_layers == SIZES["tiny"].num_layers
    assert facts.num_attention_heads == SIZES["tiny"].num_heads
    assert facts.parameter_count == demo_with_gguf.parameter_count
    assert load_model_facts(demo_with_gguf.path).gguf_file == str(demo_with_gguf.gguf_file)
    meta = read_gguf_header(demo_with_gguf.gguf_file).metadata
    assert meta["tokenizer.ggml.model"] == "gpt2"
    assert meta["tokenizer.ggml.pre"] == "gpt-2"  # declared by the shim, after its check
    assert meta["tokenizer.ggml.eos_token_id"] == SPECIAL_TOKENS.index("<|eos|>")
    assert meta["tokenizer.chat_template"] == CHAT_TEMPLATE


def test_llama_server_serves_real_completions(
    llama_server_binary: Path, demo_with_gguf: DemoModel, tmp_path: Path
) -> None:
    assert demo_with_gguf.gguf_file is not None
    port = free_port()
    args = llama_cpp_args(
        str(demo_with_gguf.gguf_file), "127.0.0.1", port, PARALLEL, 1024, 2, SERVED_NAME
    )
    assert {"--metrics", "--jinja"} <= set(args)
    with running_server([str(llama_server_binary), *args], port, tmp_path / "server.log") as server:
        startup_s = wait_healthy(server, LLAMA_SERVER_STARTUP_BUDGET_S)
        print(f"llama-server healthy after {startup_s:.2f} s")

        status, models = http_json(f"{server.base_url}/v1/models")
        assert status == 200
        assert SERVED_NAME in [m["id"] for m in models["data"]]

        status, completion = http_json(
            f"{server.base_url}/v1/completions",
            {"model": SERVED_NAME, "prompt": "The server", "max_tokens": 24, "temperature": 0.8},
        )
        assert status == 200, completion
        # Special tokens are never sampled, so the model runs to max_tokens every time.
        assert completion["usage"]["completion_tokens"] == 24
        assert completion["choices"][0]["text"]

        status, chat = http_json(
            f"{server.base_url}/v1/chat/completions",
            {
                "model": SERVED_NAME,
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 8,
            },
        )
        assert status == 200, chat
        assert chat["usage"]["completion_tokens"] == 8
        # --jinja renders the model's own template: the prompt is our role-token layout.
        assert chat["usage"]["prompt_tokens"] >= 4

        status, slots = http_json(f"{server.base_url}/slots")
        if status == 200:
            assert len(slots) == PARALLEL
        status, metrics = http_json(f"{server.base_url}/metrics")
        assert status == 200
        assert "llamacpp:tokens_predicted_total" in metrics


def test_shim_refuses_to_declare_gpt2_for_another_pre_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(
        json.dumps({"pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581"}})
    )
    result = subprocess.run(
        [sys.executable, _convert_shim.__file__, "--llama-cpp-src", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == _convert_shim.EXIT_REFUSED
    assert "refusing to declare it as 'gpt-2'" in result.stderr
