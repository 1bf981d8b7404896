"""deploy-model on this machine with vLLM's CPU build on the demo model's HF directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcluster.job_requests import (
    BenchmarkProfile,
    DeployModelRequest,
    ModelSourceRequest,
    TeardownRequest,
)
from flows.deploy_model import deploy_model
from flows.teardown_deployment import teardown_deployment
from tests.e2e_hosts.conftest import MainJob

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_vllm_cpu_serves_and_is_measured(main_job: MainJob) -> None:
    request = DeployModelRequest(
        name="demo-vllm",
        cluster=main_job.cluster,
        model=ModelSourceRequest(uri=str(main_job.model_dir)),
        device="cpu",
        engine="vllm",
        max_model_len=512,
        concurrency=2,
        port=18441,
        ready_timeout_s=600,
        benchmark=BenchmarkProfile(
            profile="concurrency:2",
            requests=8,
            warmup_requests=1,
            input_tokens="16",
            output_tokens="16",
        ),
    )
    try:
        outcome = deploy_model(request)
        plan = outcome["plan"]
        assert plan["engine"] == "vllm" and plan["device_kind"] == "cpu"
        assert plan["host_command"][1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
        assert "VLLM_CPU_KVCACHE_SPACE" in plan["host_env"]
        summary = outcome["benchmark"]
        assert summary["requests_completed"] == 8 and summary["requests_failed"] == 0
        assert summary["ttft_ms"]["p50"] > 0 and summary["output_token_throughput"] > 0
        assert (Path(summary["report_dir"]) / "report.html").is_file()
    finally:
        teardown_deployment(TeardownRequest(cluster=main_job.cluster, deployment="demo-vllm"))
