"""quantize-model then deploy-model, for real: the original and its Q8_0 version side by side.

The demo model's GGUF is quantized in-process, both files are deployed with llama.cpp and
benchmarked, the two benchmark summaries are compared with the scheduled benchmarks' own
comparison, and both are torn down. The model is tiny, so the figures are noise: the test
checks that the comparison names both runs and carries the figures, not which one is faster.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from budcluster.bench.compare import load_summary
from budcluster.catalogue.baselines import compare_with_baseline, render_comparison_markdown
from budcluster.catalogue.schema import BaselinePolicy
from budcluster.job_requests import (
    BenchmarkProfile,
    DeployModelRequest,
    ModelSourceRequest,
    QuantizeModelRequest,
    TeardownRequest,
)
from budcluster.store import Store
from budcluster.store.models import Deployment
from flows.deploy_model import deploy_model
from flows.quantize_model import quantize_model
from flows.teardown_deployment import teardown_deployment
from tests.e2e_hosts.conftest import MainJob

pytestmark = pytest.mark.e2e

ORIGINAL, QUANTIZED = "demo-orig", "demo-q8"
PORTS = {ORIGINAL: 18461, QUANTIZED: 18462}
REQUESTS = 6


def _deploy(job: MainJob, name: str, uri: str) -> dict[str, Any]:
    request = DeployModelRequest.model_validate(
        {
            "name": name,
            "cluster": job.cluster,
            "model": ModelSourceRequest(uri=uri),
            "device": "cpu",
            "max_model_len": 256,
            "concurrency": 1,
            "port": PORTS[name],
            "ready_timeout_s": 120,
            "benchmark": BenchmarkProfile(
                profile="concurrency:1",
                requests=REQUESTS,
                warmup_requests=1,
                input_tokens="8",
                output_tokens="8",
            ),
        }
    )
    return dict(deploy_model(request))


def _completion(endpoint: str, model: str) -> dict[str, Any]:
    body = json.dumps({"model": model, "prompt": "Once upon", "max_tokens": 5}).encode()
    request = urllib.request.Request(
        f"{endpoint}/v1/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


@pytest.fixture(scope="module")
def pair(main_job: MainJob) -> dict[str, Any]:
    gguf = [p for p in main_job.model_dir.glob("*.gguf")]
    assert len(gguf) == 1, gguf
    quantized = quantize_model(QuantizeModelRequest(source=str(gguf[0]), quantization="Q8_0"))
    deployed: dict[str, Any] = {"quantized_model": quantized}
    try:
        deployed[ORIGINAL] = _deploy(main_job, ORIGINAL, str(main_job.model_dir))
        deployed[QUANTIZED] = _deploy(main_job, QUANTIZED, str(Path(quantized["gguf"]).parent))
    except BaseException:
        for name in (ORIGINAL, QUANTIZED):
            if name in deployed:
                teardown_deployment(TeardownRequest(cluster=main_job.cluster, deployment=name))
        raise
    return deployed


def test_both_are_ready_and_serve_a_completion(pair: dict[str, Any]) -> None:
    for name in (ORIGINAL, QUANTIZED):
        outcome = pair[name]
        assert outcome["status"] == "ready" and outcome["changed"] is True, outcome
        assert outcome["plan"]["engine"] == "llama.cpp"
        answer = _completion(str(outcome["endpoint_url"]), name)
        assert answer["usage"]["completion_tokens"] >= 1, answer
    assert Path(pair["quantized_model"]["gguf"]).name in " ".join(
        pair[QUANTIZED]["plan"]["host_command"]
    )


def test_the_benchmarks_compare_with_the_projects_comparison(pair: dict[str, Any]) -> None:
    summaries = {}
    for name in (ORIGINAL, QUANTIZED):
        benchmark = pair[name]["benchmark"]
        assert benchmark["requests_completed"] == REQUESTS and benchmark["requests_failed"] == 0
        summaries[name] = Path(benchmark["report_dir"])
    comparison = compare_with_baseline(
        load_summary(summaries[ORIGINAL]),
        load_summary(summaries[QUANTIZED]),
        BaselinePolicy(),
        source=str(summaries[ORIGINAL]),
    )
    markdown = render_comparison_markdown(QUANTIZED, comparison, str(summaries[QUANTIZED]))
    print("\n" + markdown)
    assert f"baseline: {summaries[ORIGINAL]}" in markdown
    assert f"candidate: {summaries[QUANTIZED]}" in markdown
    run_level = {c["metric"]: c for c in comparison.changes if c["scope"] == "run"}
    for metric in ("request_throughput", "output_token_throughput", "ttft_ms.p50", "e2e_ms.p99"):
        change = run_level[metric]
        assert change["before"] is not None and change["before"] > 0, change
        assert change["after"] is not None and change["after"] > 0, change
        assert change["change_pct"] is not None, change
        assert metric in comparison.table


def test_the_quantized_plan_is_sized_from_the_quantized_file(
    pair: dict[str, Any], main_job: MainJob
) -> None:
    store = Store(main_job.database_url)
    try:
        with store.session() as session:
            plans = {
                name: session.scalar(select(Deployment.plan).where(Deployment.name == name))
                for name in (ORIGINAL, QUANTIZED)
            }
    finally:
        store.dispose()
    original = plans[ORIGINAL]["memory"]["weight_bytes"]  # type: ignore[index]
    quantized = plans[QUANTIZED]["memory"]["weight_bytes"]  # type: ignore[index]
    assert 0 < quantized < original, (quantized, original)
    assert quantized == pair["quantized_model"]["weight_bytes"]


def test_teardown_stops_both(pair: dict[str, Any], main_job: MainJob) -> None:
    for name in (ORIGINAL, QUANTIZED):
        assert (
            teardown_deployment(TeardownRequest(cluster=main_job.cluster, deployment=name))
            == "deleted"
        )
        with pytest.raises(OSError):
            _completion(str(pair[name]["endpoint_url"]), name)
