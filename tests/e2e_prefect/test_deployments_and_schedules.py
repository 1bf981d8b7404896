"""prefect.yaml on a real server: every deployment, schedules, the Kubernetes variant,
and scheduled-benchmarks run by hand against a ready catalogue entry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from budcluster.bench.testing_server import server_process
from tests.e2e_prefect.conftest import Platform

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

FLOWS = [
    "register-cluster",
    "detect-nodes",
    "transfer-model",
    "deploy-model",
    "benchmark-endpoint",
    "teardown-deployment",
    "reconcile-deployments",
    "scheduled-benchmarks",
    "cluster-health",
    "publish-gateway",
    "provision-cluster",
    "destroy-cluster",
    "deregister-cluster",
]


def test_deploy_all_created_one_deployment_per_flow(platform: Platform) -> None:
    for flow in FLOWS:
        deployment = platform.deployment(flow, flow)
        assert deployment["work_pool_name"] == "budcluster-process", flow
        assert deployment["pull_steps"] == [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ $BUDCLUSTER_PROJECT_DIR }}"
                }
            }
        ]
    deploy = platform.deployment("deploy-model", "deploy-model")
    limit = (deploy.get("global_concurrency_limit") or {}).get("limit")
    assert (limit or deploy.get("concurrency_limit")) == 2
    assert deploy["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    # The UI renders a form from this schema: the request's fields with descriptions.
    schema = deploy["parameter_openapi_schema"]
    definitions = schema.get("definitions") or schema.get("$defs")
    properties = definitions["DeployModelRequest"]["properties"]
    assert "device" in properties
    assert properties["replicas"]["default"] == 1
    assert {"type": "string", "const": "auto"} in properties["replicas"]["anyOf"]


def test_schedules_exist_and_produce_scheduled_runs(platform: Platform) -> None:
    benchmarks = platform.deployment("scheduled-benchmarks", "scheduled-benchmarks")
    health = platform.deployment("cluster-health", "cluster-health")
    assert [s["schedule"].get("cron") for s in benchmarks["schedules"]] == ["0 * * * *"]
    assert [s["schedule"].get("interval") for s in health["schedules"]] == [600.0]
    for deployment in (benchmarks, health):
        runs = platform.flow_runs(deployment["id"])
        scheduled = [r for r in runs if r["state_type"] == "SCHEDULED" and r["auto_scheduled"]]
        assert scheduled, f"no scheduled runs for {deployment['name']}"
    # Unscheduled deployments get none.
    assert platform.deployment("deploy-model", "deploy-model")["schedules"] == []


def test_kubernetes_variant_takes_credentials_from_secrets(platform: Platform) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    deployment = platform.deployment("deploy-model", "deploy-model-kubernetes")
    assert deployment["work_pool_name"] == "budcluster-kubernetes"
    variables = deployment["job_variables"]
    assert variables["namespace"] == "budcluster"
    assert variables["service_account_name"] == "budcluster-runner"
    assert variables["image"]
    assert deployment["schedules"] == []
    # Nothing secret in the deployment's configuration ...
    stored = json.dumps(variables)
    assert "DATABASE_URL" not in stored and "postgresql" not in stored

    # ... and the Job the worker would create reads the Secret.
    pool = platform.api("GET", "/work_pools/budcluster-kubernetes")
    properties = pool["base_job_template"]["variables"]["properties"]
    values = {n: s["default"] for n, s in properties.items() if s.get("default") is not None}
    values.update(variables)
    # Rendering resolves block and variable references through the API: this server's.
    with temporary_settings({PREFECT_API_URL: platform.server.api_url}):
        job = asyncio.run(
            KubernetesWorkerJobConfiguration.from_template_and_values(
                pool["base_job_template"], values
            )
        )
    container = job.job_manifest["spec"]["template"]["spec"]
    assert container["serviceAccountName"] == "budcluster-runner"
    env = {item["name"]: item for item in container["containers"][0]["env"]}
    for name, key in (
        ("BUDCLUSTER_DATABASE_URL", "database-url"),
        ("PREFECT_API_AUTH_STRING", "prefect-api-auth-string"),
    ):
        assert "value" not in env[name], f"{name} must not be plaintext"
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": "budcluster-secrets",
            "key": key,
            **({"optional": True} if name == "PREFECT_API_AUTH_STRING" else {}),
        }
    assert job.job_manifest["metadata"]["namespace"] == "budcluster"


@pytest.fixture
def ready_entry(platform: Platform, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A ready deployment in the store whose endpoint is a local streaming server."""
    from budcluster.store import Store
    from budcluster.store import deployments as rows
    from budcluster.store.clusters import register_cluster
    from budcluster.store.models_catalog import ModelFile, save_model

    catalogue = tmp_path / "deployments.yaml"
    entry = {
        "name": "bench-e2e",
        "cluster": "e2e-lab",
        "model": {"uri": "/models/bench-e2e"},
        "benchmark": {
            "profile": {
                "profile": "concurrency:2",
                "requests": 24,
                "warmup_requests": 2,
                "input_tokens": "16",
                "output_tokens": "16",
            },
            # Gate on medians: with 24 requests a p99 is one request, and one late timer on
            # a loaded machine moved the same endpoint's TTFT p99 past 50% ("regressed").
            "baseline": {
                "kind": "previous",
                "threshold_pct": 100,
                "thresholds": ",".join(
                    f"{metric}.p99=1000" for metric in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
                ),
            },
        },
        "schedule": "0 3 * * *",
    }
    catalogue.write_text(yaml.safe_dump({"deployments": [entry]}), encoding="utf-8")
    store = Store(platform.store_url)
    try:
        with store.session() as session:
            cluster = register_cluster(session, name="e2e-lab", kind="hosts", provider="onprem")
            model = save_model(
                session,
                name="bench-e2e",
                source_uri="/models/bench-e2e",
                format="gguf",
                files=[ModelFile("m.gguf", 1, "a" * 64)],
            )
            row = rows.create_deployment(
                session, cluster_id=cluster.id, model_id=model.id, name="bench-e2e"
            )
            for status in ("planning", "deploying", "ready"):
                rows.transition(session, row.id, status, "seeded by the e2e test")
            deployment_id = row.id
        # Delays well above scheduling noise: with a 1 ms ITL one late timer on a busy
        # machine moved p99 ITL past the 50% threshold and the same endpoint "regressed".
        with server_process("--ttft-ms", "40", "--itl-ms", "10", uvloop=False) as url:
            with store.session() as session:
                rows.set_endpoint(session, deployment_id, url)
            yield catalogue, str(deployment_id)
    finally:
        store.dispose()


def _set_endpoint(platform: Platform, url: str) -> None:
    from budcluster.store import Store
    from budcluster.store import deployments as rows
    from budcluster.store.clusters import get_cluster

    store = Store(platform.store_url)
    try:
        with store.session() as session:
            cluster_id = get_cluster(session, "e2e-lab").id
            row = rows.find_deployment(session, cluster_id, "bench-e2e")
            rows.set_endpoint(session, row.id, url)
    finally:
        store.dispose()


def _run_scheduled_benchmarks(platform: Platform, catalogue: Path) -> dict[str, object]:
    output = platform.prefect(
        "deployment",
        "run",
        "scheduled-benchmarks/scheduled-benchmarks",
        "--param",
        f"catalogue_path={catalogue}",
        "--param",
        'only=["bench-e2e"]',
        "--watch",
        "--watch-timeout",
        "180",
        timeout_s=240,
        check=False,
    )
    deployment = platform.deployment("scheduled-benchmarks", "scheduled-benchmarks")
    manual = [r for r in platform.flow_runs(deployment["id"]) if not r["auto_scheduled"]]
    assert manual, output
    run = platform.wait_for_run(manual[0]["id"], 60)
    run["cli_output"] = output
    return run


def test_scheduled_benchmarks_by_hand_compares_with_the_previous_run(
    platform: Platform, ready_entry: tuple[Path, str]
) -> None:
    catalogue, _ = ready_entry
    first = _run_scheduled_benchmarks(platform, catalogue)
    assert first["state_type"] == "COMPLETED", f"{first['cli_output']}\n{platform.tail()}"
    first_reports = sorted(platform.reports_dir.glob("*_bench-e2e"))
    assert len(first_reports) == 1
    assert not (first_reports[0] / "comparison.md").exists()  # nothing to compare with yet

    # The same endpoint again: compared with the first run, within limits.
    second = _run_scheduled_benchmarks(platform, catalogue)
    assert second["state_type"] == "COMPLETED", f"{second['cli_output']}\n{platform.tail()}"
    reports = sorted(platform.reports_dir.glob("*_bench-e2e"))
    comparison = json.loads((reports[-1] / "comparison.json").read_text())
    assert comparison["baseline"].startswith("previous run ")
    assert comparison["regressions"] == []

    # A much slower endpoint: a regression fails the run and the report says why.
    with server_process("--ttft-ms", "240", "--itl-ms", "10", uvloop=False) as slow_url:
        _set_endpoint(platform, slow_url)
        third = _run_scheduled_benchmarks(platform, catalogue)
    assert third["state_type"] == "FAILED", f"{third['cli_output']}\n{platform.tail()}"
    newest = sorted(platform.reports_dir.glob("*_bench-e2e"))[-1]
    verdict = json.loads((newest / "comparison.json").read_text())
    assert "run:ttft_ms.p50" in verdict["regressions"]
    assert "**REGRESSION**" in (newest / "comparison.md").read_text()
