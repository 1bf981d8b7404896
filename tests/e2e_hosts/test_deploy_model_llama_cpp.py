"""deploy-model on this machine with llama.cpp, for real: stage, start, verify, measure.

Then the same deployment again (a no-op that says so), a runtime that cannot start
(fails with its log tail, nothing left running), two replicas refused before anything is
staged, and teardown.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import tasks.targets
from budcluster.errors import ConfigurationError
from budcluster.job_requests import (
    BenchmarkProfile,
    DeployModelRequest,
    ModelSourceRequest,
    TeardownRequest,
)
from budcluster.store import Store
from budcluster.store.models import (
    BenchmarkRequest,
    BenchmarkRun,
    Cluster,
    Deployment,
    Node,
    PlacementClaim,
    Transfer,
)
from flows.deploy_model import deploy_model
from flows.teardown_deployment import teardown_deployment
from tests.e2e_hosts.conftest import MainJob

pytestmark = pytest.mark.e2e


def _request(job: MainJob, name: str, **overrides: object) -> DeployModelRequest:
    values: dict[str, object] = {
        "name": name,
        "cluster": job.cluster,
        "model": ModelSourceRequest(uri=str(job.model_dir)),
        "device": "cpu",
        "max_model_len": 512,
        "concurrency": 2,
        "port": 18431,
        "ready_timeout_s": 120,
    }
    values.update(overrides)
    return DeployModelRequest.model_validate(values)


def _completion(endpoint: str, model: str) -> dict[str, object]:
    body = json.dumps({"model": model, "prompt": "Once upon", "max_tokens": 5}).encode()
    request = urllib.request.Request(
        f"{endpoint}/v1/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


@pytest.fixture(scope="module")
def deployed(main_job: MainJob) -> dict[str, object]:
    profile = BenchmarkProfile(
        profile="concurrency:2",
        requests=16,
        warmup_requests=2,
        input_tokens="16",
        output_tokens="16",
    )
    # Count the store lookups that turn the cluster's name into a target: a run resolves it
    # once and passes the reference to each task.
    lookups: list[str] = []
    real_get_cluster = tasks.targets.get_cluster

    def counting_get_cluster(session: Session, name: str) -> Cluster:
        lookups.append(name)
        return real_get_cluster(session, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks.targets, "get_cluster", counting_get_cluster)
        outcome = deploy_model(_request(main_job, "demo", benchmark=profile))
    return {**outcome, "cluster_lookups": lookups}


def test_the_run_resolves_its_cluster_once(deployed: dict[str, object]) -> None:
    assert deployed["cluster_lookups"] == ["this-machine"]


def test_the_endpoint_serves_real_tokens(deployed: dict[str, object]) -> None:
    assert deployed["status"] == "ready" and deployed["changed"] is True
    endpoint = str(deployed["endpoint_url"])
    answer = _completion(endpoint, "demo")
    assert answer["usage"]["completion_tokens"] >= 1  # type: ignore[index]
    plan = deployed["plan"]
    assert plan["engine"] == "llama.cpp"  # type: ignore[index]
    assert "--metrics" in plan["host_command"] and "--jinja" in plan["host_command"]  # type: ignore[index]


def test_benchmark_measured_the_real_server(deployed: dict[str, object]) -> None:
    summary = deployed["benchmark"]
    assert summary["requests_completed"] == 16 and summary["requests_failed"] == 0  # type: ignore[index]
    assert summary["ttft_ms"]["p50"] > 0 and summary["request_throughput"] > 0  # type: ignore[index]
    report = Path(summary["report_dir"])  # type: ignore[index]
    assert (report / "report.html").is_file() and (report / "summary.json").is_file()


def test_the_store_holds_every_step(deployed: dict[str, object], main_job: MainJob) -> None:
    store = Store(main_job.database_url)
    try:
        with store.session() as session:
            cluster = session.scalar(select(Cluster).where(Cluster.name == "this-machine"))
            assert cluster is not None and cluster.status.value == "available"
            assert session.scalar(select(func.count()).select_from(Node)) >= 1
            transfer = session.scalar(select(Transfer).order_by(Transfer.id.desc()))
            assert transfer is not None and transfer.status.value == "succeeded"
            assert transfer.bytes_total and transfer.bytes_total > 0
            deployment = session.scalar(select(Deployment).where(Deployment.name == "demo"))
            assert deployment is not None and deployment.status.value == "ready"
            assert deployment.endpoint_url == deployed["endpoint_url"]
            run = session.scalar(
                select(BenchmarkRun).where(BenchmarkRun.deployment_id == deployment.id)
            )
            assert run is not None
            rows = session.scalar(
                select(func.count())
                .select_from(BenchmarkRequest)
                .where(BenchmarkRequest.run_id == run.id)
            )
            assert rows is not None and rows >= 16
    finally:
        store.dispose()


def test_redeploying_the_same_spec_is_a_noop(
    deployed: dict[str, object], main_job: MainJob
) -> None:
    again = deploy_model(_request(main_job, "demo"))
    assert again["changed"] is False and again["endpoint_url"] == deployed["endpoint_url"]


def test_a_runtime_that_cannot_start_fails_with_its_log_and_leaves_nothing(
    main_job: MainJob,
) -> None:
    request = _request(main_job, "broken", port=18432, engine_args=["--no-such-flag"])
    with pytest.raises(Exception, match="no-such-flag"):
        deploy_model(request)
    store = Store(main_job.database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "broken"))
            assert row is not None and row.status.value == "failed"
            assert "no-such-flag" in (row.status_reason or "")
    finally:
        store.dispose()
    leftover = subprocess.run(
        ["pgrep", "-af", "--", "--no-such-flag"], capture_output=True, text=True, timeout=10
    ).stdout
    assert leftover.strip() == "", f"processes left running: {leftover}"


def test_more_replicas_than_the_plan_runs_fail_before_anything_is_staged(
    main_job: MainJob,
) -> None:
    """A CPU plan is one replica, and a hosts cluster runs one runtime per deployment:
    asking for two fails after planning, with nothing recorded, staged or started."""
    store = Store(main_job.database_url)
    try:
        with store.session() as session:
            transfers = session.scalar(select(func.count()).select_from(Transfer))
        with pytest.raises(ConfigurationError, match=r"^replicas: 2 asked, but the llama.cpp "):
            deploy_model(_request(main_job, "two-copies", port=18433, replicas=2))
        with store.session() as session:
            assert session.scalar(select(Deployment).where(Deployment.name == "two-copies")) is None
            # The plan's claim was written with the plan and released by the failed run.
            claim = session.scalar(
                select(PlacementClaim).where(PlacementClaim.deployment_name == "two-copies")
            )
            assert claim is not None and claim.released_epoch is not None
            assert session.scalar(select(func.count()).select_from(Transfer)) == transfers
    finally:
        store.dispose()
    assert not (main_job.workdir / "host-state" / "runtimes" / "two-copies").exists()


def test_teardown_stops_the_runtime(deployed: dict[str, object], main_job: MainJob) -> None:
    assert (
        teardown_deployment(TeardownRequest(cluster=main_job.cluster, deployment="demo"))
        == "deleted"
    )
    with pytest.raises(OSError):
        _completion(str(deployed["endpoint_url"]), "demo")
