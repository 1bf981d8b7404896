"""`prefect deployment run 'deploy-model/...' --param ... --watch` deploys the offline demo
model to this machine through the worker; the store rows and the report exist after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e_prefect.conftest import PROJECT, Platform

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

BUDCLUSTER = str(Path(sys.executable).with_name("budcluster"))


def _budcluster(platform: Platform, *args: str, timeout_s: float = 300) -> str:
    result = subprocess.run(
        [BUDCLUSTER, *args],
        cwd=PROJECT,
        env=platform.env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert result.returncode == 0, f"budcluster {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def _run(platform: Platform, deployment: str, request: dict[str, object], timeout_s: int) -> dict:  # type: ignore[type-arg]
    output = platform.prefect(
        "deployment", "run", deployment,
        "--param", f"request={json.dumps(request)}",
        "--watch", "--watch-timeout", str(timeout_s),
        timeout_s=timeout_s + 60, check=False,
    )  # fmt: skip
    flow, name = deployment.split("/")
    runs = platform.flow_runs(platform.deployment(flow, name)["id"])
    assert runs, output
    run = platform.wait_for_run(runs[0]["id"], 60)
    assert run["state_type"] == "COMPLETED", f"{output}\n{platform.tail()}"
    return run  # type: ignore[no-any-return]


def test_deploy_model_from_the_cli_serves_the_demo_model(platform: Platform) -> None:
    workdir = platform.workdir
    model_dir = workdir / "demo-tiny"
    _budcluster(platform, "keys", "init")
    _budcluster(platform, "demo-model", "build", str(model_dir))
    inventory = workdir / "this-machine.yaml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
        "      budcluster_runtime_mode: process\n",
        encoding="utf-8",
    )
    _budcluster(platform, "credentials", "add-hosts", "e2e-this-machine", str(inventory))

    _run(
        platform,
        "register-cluster/register-cluster",
        {"name": "e2e-this-machine", "kind": "hosts", "credentials_block": "e2e-this-machine"},
        300,
    )
    request = {
        "name": "e2e-demo",
        "cluster": "e2e-this-machine",
        "model": {"uri": str(model_dir)},
        "device": "cpu",
        "max_model_len": 512,
        "port": 18431,
        "benchmark": {"profile": "concurrency:2", "requests": 16, "input_tokens": "16",
                      "output_tokens": "16"},
    }  # fmt: skip
    try:
        deploy_run = _run(platform, "deploy-model/deploy-model", request, 480)

        # What a user sees on the run page: the plan, the node table, the transfer
        # progress and the benchmark summary with its table and report link.
        artifacts = platform.api(
            "POST",
            "/artifacts/filter",
            {"artifacts": {"flow_run_id": {"any_": [deploy_run["id"]]}}},
        )
        kinds = {a["key"]: a["type"] for a in artifacts if a.get("key")}
        assert kinds.get("runtime-plan-e2e-demo") == "markdown", kinds
        assert kinds.get("node-inventory-e2e-this-machine") == "table", kinds
        assert kinds.get("transfer-demo-tiny") == "progress", kinds
        assert kinds.get("bench-e2e-demo") == "markdown", kinds
        assert kinds.get("bench-e2e-demo-levels") == "table", kinds
        # Prefect stores a link artifact as markdown holding the link.
        report_link = next(a for a in artifacts if a.get("key") == "bench-e2e-demo-report")
        assert "report.html" in str(report_link["data"]), report_link

        from budcluster.job_requests import DeployModelRequest
        from budcluster.store import Store, benchmarks, deployments
        from budcluster.store.clusters import get_cluster

        store = Store(platform.store_url)
        try:
            with store.session() as session:
                cluster_id = get_cluster(session, "e2e-this-machine").id
                row = deployments.find_deployment(session, cluster_id, "e2e-demo")
                assert row.status.value == "ready"
                assert row.spec_hash == DeployModelRequest.model_validate(request).spec_hash()
                assert row.endpoint_url
                runs = benchmarks.list_runs_for_deployment(session, row.id)
        finally:
            store.dispose()
        assert runs and runs[-1].info.status == "completed"
        reports = sorted(platform.reports_dir.glob("*_e2e-demo"))
        assert reports and (reports[-1] / "report.html").is_file()
    finally:
        platform.prefect(
            "deployment", "run", "teardown-deployment/teardown-deployment",
            "--param", 'request={"cluster": "e2e-this-machine", "deployment": "e2e-demo"}',
            "--watch", "--watch-timeout", "120",
            timeout_s=180, check=False,
        )  # fmt: skip
