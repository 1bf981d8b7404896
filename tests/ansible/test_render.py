"""The hosts target's rendering: argv, container command line, systemd unit, spec hash."""

from __future__ import annotations

import pytest

from budcluster.targets.hosts import (
    HostsConfigError,
    RestartPolicy,
    check_name,
    container_run_argv,
    host_argv,
    runtime_spec,
    systemd_unit_text,
)
from tests.ansible.helpers import plan

LLAMA = plan(
    engine="llama.cpp",
    host_command=["llama-server", "-m", "/ctl/models/tiny/tiny.gguf", "--port", "8000", "--jinja"],
    args=["-m", "/models/tiny.gguf", "--port", "8000", "--jinja"],
)
VLLM = plan(
    host_command=["python", "-m", "vllm.entrypoints.openai.api_server", "--model", "/ctl/tiny",
                  "--port", "8000"],
    args=["--model", "/models/tiny", "--port", "8000"],
    env={"VLLM_CPU_KVCACHE_SPACE": "4"},
    host_env={"VLLM_CPU_KVCACHE_SPACE": "4", "ODD": "50% $HOME \"q\""},
)  # fmt: skip
POLICY = RestartPolicy(max_restarts=3, backoff_s=2, stable_s=60, stop_timeout_s=15)


def test_llama_argv_gets_the_real_binary_the_staged_gguf_and_the_port() -> None:
    argv = host_argv(LLAMA, "/srv/m/tiny", {"llama-server": "/opt/llama/bin/llama-server"}, 9001)
    assert argv == [
        "/opt/llama/bin/llama-server", "-m", "/srv/m/tiny/tiny.gguf", "--port", "9001", "--jinja",
    ]  # fmt: skip


def test_vllm_argv_keeps_pythons_own_dash_m_and_replaces_the_model_directory() -> None:
    argv = host_argv(VLLM, "/srv/m/tiny", {"python": "/venv/bin/python"}, 8000)
    assert argv == [
        "/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server",
        "--model", "/srv/m/tiny", "--port", "8000",
    ]  # fmt: skip


def test_unmapped_executable_is_left_for_path_lookup() -> None:
    assert host_argv(LLAMA, "/m", {}, 8000)[0] == "llama-server"


def test_docker_command_line_is_exact() -> None:
    argv = container_run_argv("docker", "budcluster-demo", VLLM, "/srv/m/tiny", 9000, "abc", POLICY)
    assert argv == [
        "docker", "run", "-d", "--name", "budcluster-demo",
        "--label", "budcluster.spec=abc", "--restart", "on-failure:3",
        "-p", "9000:8000", "-v", "/srv/m/tiny:/models/tiny:ro",
        "--env", "VLLM_CPU_KVCACHE_SPACE=4",
        "example.org/runtime:1.0", "--model", "/models/tiny", "--port", "8000",
    ]  # fmt: skip


def test_llama_container_mounts_the_directory_holding_the_gguf() -> None:
    argv = container_run_argv("podman", "budcluster-l", LLAMA, "/srv/m/tiny", 8000, "h", POLICY)
    assert argv[:13] == [
        "podman", "run", "-d", "--name", "budcluster-l", "--label", "budcluster.spec=h",
        "--restart", "on-failure:3", "-p", "8000:8000", "-v", "/srv/m/tiny:/models:ro",
    ]  # fmt: skip
    assert argv[13:] == ["example.org/runtime:1.0", "-m", "/models/tiny.gguf", "--port", "8000",
                         "--jinja"]  # fmt: skip


def test_cuda_devices_reach_docker_and_podman() -> None:
    gpu = plan(host_command=["python", "-m", "x"], device_kind="cuda", device_indices=[0, 1])
    docker = container_run_argv("docker", "n", gpu, "/m", 8000, "h", POLICY)
    podman = container_run_argv("podman", "n", gpu, "/m", 8000, "h", POLICY)
    assert docker[docker.index("--gpus") + 1] == '"device=0,1"'
    assert [a for a in podman if a.startswith("nvidia.com/gpu=")] == [
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=1",
    ]


def test_systemd_unit_text_is_exact_and_escapes_specifiers() -> None:
    argv = host_argv(VLLM, "/srv/m/tiny", {"python": "/venv/bin/python"}, 8000)
    text = systemd_unit_text("demo", VLLM, argv, VLLM.host_env, POLICY, run_dir="/var/bc/demo")
    assert text == (
        "[Unit]\n"
        "Description=budcluster runtime demo (vllm, tiny)\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "StartLimitBurst=4\n"
        "StartLimitIntervalSec=60\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        "ExecStart=/venv/bin/python -m vllm.entrypoints.openai.api_server --model /srv/m/tiny"
        " --port 8000\n"
        # Environment= takes $ literally (systemd.exec(5)): only ExecStart= needs $$.
        'Environment="ODD=50%% $HOME \\"q\\""\n'
        "Environment=VLLM_CPU_KVCACHE_SPACE=4\n"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        "TimeoutStopSec=15\n"
        "KillMode=control-group\n"
        "StandardOutput=append:/var/bc/demo/runtime.log\n"
        "StandardError=append:/var/bc/demo/runtime.log\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def test_spec_hash_follows_every_input() -> None:
    base = runtime_spec(["a", "b"], {"K": "1"}, 8000, POLICY)
    assert base == runtime_spec(["a", "b"], {"K": "1"}, 8000, POLICY)
    changed = [
        runtime_spec(["a", "c"], {"K": "1"}, 8000, POLICY),
        runtime_spec(["a", "b"], {"K": "2"}, 8000, POLICY),
        runtime_spec(["a", "b"], {"K": "1"}, 8001, POLICY),
        runtime_spec(["a", "b"], {"K": "1"}, 8000, RestartPolicy(max_restarts=9)),
    ]
    assert len({base["spec_sha256"], *(s["spec_sha256"] for s in changed)}) == 5


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x" * 64, "a b"])
def test_unsafe_names_are_refused_with_the_field_named(bad: str) -> None:
    with pytest.raises(HostsConfigError, match="deployment_name"):
        check_name(bad, "deployment_name")
