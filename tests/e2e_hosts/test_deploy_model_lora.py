"""deploy-model with a LoRA adapter on this machine, for real.

A PEFT adapter for the demo model is built offline, converted with the sdist's
convert_lora_to_gguf.py, registered and staged with the model, and served by llama-server
beside it: the same greedy request answers differently with the adapter selected.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from budcluster.demo_lora import build_demo_lora
from budcluster.job_requests import (
    BenchmarkProfile,
    DeployModelRequest,
    ModelSourceRequest,
    TeardownRequest,
)
from budcluster.planning.lora import adapter_selection
from budcluster.planning.models import RuntimePlan
from budcluster.runtimes.gguf_convert import convert_lora_to_gguf
from budcluster.store import Store
from budcluster.store.models import LoraAdapter
from flows.deploy_model import deploy_model
from flows.teardown_deployment import teardown_deployment
from tests.e2e_hosts.conftest import MainJob

pytestmark = pytest.mark.e2e

NAME, PORT, PROMPT = "demo-lora", 18451, "Once upon a time"


def _post(endpoint: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{endpoint}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _greedy(endpoint: str, **selection: object) -> str:
    body = {"model": NAME, "prompt": PROMPT, "max_tokens": 12, "temperature": 0, **selection}
    return str(_post(endpoint, "/v1/completions", body)["choices"][0]["text"])


@pytest.fixture(scope="module")
def deployed(main_job: MainJob) -> dict[str, Any]:
    peft = build_demo_lora(main_job.model_dir, main_job.workdir / "adapters" / "tone-peft")
    gguf_dir = main_job.workdir / "adapters" / "tone"
    gguf_dir.mkdir(parents=True)
    convert_lora_to_gguf(peft, main_job.model_dir, gguf_dir / "tone.gguf")
    request = DeployModelRequest.model_validate(
        {
            "name": NAME,
            "cluster": main_job.cluster,
            "model": ModelSourceRequest(uri=str(main_job.model_dir)),
            "device": "cpu",
            "max_model_len": 256,
            "concurrency": 1,
            "port": PORT,
            "ready_timeout_s": 120,
            "adapters": [{"name": "tone", "uri": str(gguf_dir)}],
            "benchmark": BenchmarkProfile(
                profile="concurrency:1",
                requests=4,
                warmup_requests=0,
                input_tokens="8",
                output_tokens="8",
                adapter="tone",
            ),
        }
    )
    outcome = deploy_model(request)
    yield {**outcome, "adapter_dir": str(gguf_dir)}
    teardown_deployment(TeardownRequest(cluster=main_job.cluster, deployment=NAME))


def test_the_adapter_answers_differently_from_the_base(deployed: dict[str, Any]) -> None:
    endpoint = str(deployed["endpoint_url"])
    plan = RuntimePlan.model_validate(deployed["plan"])
    base_model, base_fields = adapter_selection(plan, None)
    tone_model, tone_fields = adapter_selection(plan, "tone")
    assert base_model == tone_model == NAME
    assert tone_fields == {"lora": [{"id": 0, "scale": 1.0}]}
    first = _greedy(endpoint)  # no lora field: the global scale, 0
    base = _greedy(endpoint, **base_fields)
    adapted = _greedy(endpoint, **tone_fields)
    print(f"\nbase:    {base!r}\nadapter: {adapted!r}")
    assert first == base and adapted
    # Greedy decoding is deterministic: the base answers the same again after the
    # adapter's turn, so the difference is the adapter's, not sampling noise.
    assert _greedy(endpoint, **base_fields) == base
    assert _greedy(endpoint, **tone_fields) == adapted
    assert adapted != base


def test_the_runtime_reads_the_adapter_where_it_was_staged(
    deployed: dict[str, Any], main_job: MainJob
) -> None:
    with urllib.request.urlopen(f"{deployed['endpoint_url']}/lora-adapters", timeout=30) as r:
        loaded = json.loads(r.read())
    assert [a["id"] for a in loaded] == [0] and loaded[0]["scale"] == 0.0
    staged_under = str(main_job.workdir / "host-state" / "models") + "/lora-tone-"
    assert loaded[0]["path"].startswith(staged_under), loaded
    assert not loaded[0]["path"].startswith(deployed["adapter_dir"])
    command = deployed["plan"]["host_command"]
    assert command.count("--lora-scaled") == 1


def test_the_benchmark_measured_the_adapter(deployed: dict[str, Any]) -> None:
    summary = deployed["benchmark"]
    assert summary["requests_completed"] == 4 and summary["requests_failed"] == 0
    settings = json.loads((Path(summary["report_dir"]) / "summary.json").read_text())
    assert '"lora"' in json.dumps(settings)


def test_the_adapter_is_registered_under_the_model(
    deployed: dict[str, Any], main_job: MainJob
) -> None:
    store = Store(main_job.database_url)
    try:
        with store.session() as session:
            rows = list(session.scalars(select(LoraAdapter)))
            assert [(r.name, r.format.value, r.rank, r.alpha) for r in rows] == [
                ("tone", "gguf", 8, 16.0)
            ]
    finally:
        store.dispose()
