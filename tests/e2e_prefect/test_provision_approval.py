"""provision-cluster and destroy-cluster through the platform: `budcluster cluster provision`
starts a deployment run, the worker plans with real Terraform against moto, the run pauses
for approval with the plan as an artifact, `budcluster cluster approve` resumes it through
the API and the cluster is created; the destroy run is approved in the Prefect UI (Debian's
Chromium) and leaves nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e_prefect.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, PROJECT, Platform
from tests.support.moto_server import AWS_PROVIDER, CREDENTIALS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(
        not AWS_PROVIDER.is_dir(), reason=f"no aws provider mirror at {AWS_PROVIDER}"
    ),
]

BUDCLUSTER = str(Path(sys.executable).with_name("budcluster"))


def _budcluster(platform: Platform, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [BUDCLUSTER, *args],
        cwd=PROJECT,
        env={**platform.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"budcluster {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def _run_id(output: str) -> str:
    line = next(line for line in output.splitlines() if "flow run" in line and "started" in line)
    return line.rsplit(" ", 1)[-1]


def _wait_for_state(
    platform: Platform, run_id: str, states: set[str], timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = platform.api("GET", f"/flow_runs/{run_id}")
        if run["state_name"] in states or run["state_type"] in states:
            return run
        if run["state_type"] in ("FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(1)
    raise AssertionError(
        f"run {run_id} is {run.get('state_name')}, not {states}:\n{platform.tail()}"
    )


def _artifacts(platform: Platform, run_id: str) -> list[dict[str, Any]]:
    return platform.api(  # type: ignore[no-any-return]
        "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    )


@pytest.fixture
def aws_block(platform: Platform) -> str:
    if not (platform.workdir / "crypto-keys" / "rsa-private-key.pem").exists():
        _budcluster(platform, "keys", "init")
    _budcluster(
        platform, "credentials", "add-aws", "moto-aws", "--region", "us-east-1", "--overwrite",
        env=CREDENTIALS,
    )  # fmt: skip
    platform.moto.reset()
    return "moto-aws"


def test_provision_approved_from_the_cli_and_destroy_approved_in_the_ui(
    platform: Platform, aws_block: str
) -> None:
    request = {
        "name": "team-eks",
        "cloud": "eks",
        "credentials_block": aws_block,
        "region": "us-east-1",
        "gpu_nodes": [{"name": "l4", "machine_types": ["g6.xlarge"], "max_count": 2}],
        # No bucket named: the account's default state bucket is created on first use.
        "state": {"kind": "s3", "use_path_style": True},
        "register_cluster": False,
    }
    form = platform.workdir / "team-eks.yaml"
    form.write_text(yaml.safe_dump(request), encoding="utf-8")
    run_id = _run_id(_budcluster(platform, "cluster", "provision", str(form)))

    _wait_for_state(platform, run_id, {"Paused"}, timeout_s=300)
    plans = [a for a in _artifacts(platform, run_id) if a["key"] == "terraform-plan-team-eks"]
    assert plans and "to add, 0 to change, 0 to destroy." in plans[0]["data"]
    assert 'aws_eks_node_group.gpu["l4"]' in plans[0]["data"]
    eks = platform.moto.client("eks")
    assert eks.list_clusters()["clusters"] == []  # nothing before the approval

    _budcluster(platform, "cluster", "approve", run_id, "--comment", "cli e2e")
    run = _wait_for_state(platform, run_id, {"COMPLETED"}, timeout_s=600)
    assert run["state_type"] == "COMPLETED"
    assert eks.list_clusters()["clusters"] == ["team-eks"]
    # moto's account is 123456789012: the default bucket, versioned, holds the state.
    s3 = platform.moto.client("s3")
    bucket = "bud-tfstate-123456789012-us-east-1"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [
        "bud-serve-cluster/team-eks.tfstate"
    ]
    logs = platform.api("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
    messages = [entry["message"] for entry in logs]
    assert any("aws_eks_cluster.this: Creation complete" in m for m in messages)
    assert any("plan approved: cli e2e" in m for m in messages)
    # The credentials never reached the Prefect server's logs or artifacts.
    secret = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    assert secret not in str(logs) and secret not in str(_artifacts(platform, run_id))

    destroy_id = _run_id(_budcluster(platform, "cluster", "destroy", "team-eks"))
    _wait_for_state(platform, destroy_id, {"Paused"}, timeout_s=300)
    if CHROMIUM.exists():
        _approve_in_the_ui(platform, destroy_id)
    else:  # pragma: no cover - CI installs Chromium; say so rather than skip the destroy
        print("no /usr/bin/chromium: approving the destroy through the API instead")
        _budcluster(platform, "cluster", "approve", destroy_id)
    run = _wait_for_state(platform, destroy_id, {"COMPLETED"}, timeout_s=600)
    assert eks.list_clusters()["clusters"] == []
    vpcs = platform.moto.client("ec2").describe_vpcs()["Vpcs"]
    assert [v for v in vpcs if not v["IsDefault"]] == []


def _approve_in_the_ui(platform: Platform, run_id: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(f"{platform.server.ui_url}/runs/flow-run/{run_id}")
            expect(page.get_by_text("Paused").first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "ui-destroy-paused.png"), full_page=True)
            page.get_by_role("button", name="Resume").first.click()
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ARTIFACTS / "ui-destroy-resume-form.png"), full_page=True)
            expect(page.get_by_text("to destroy").first).to_be_visible(timeout=30_000)
            # Prefect renders the boolean as a toggle switch.
            page.get_by_role("switch").first.click()
            page.get_by_role("textbox").last.fill("approved in the UI e2e")
            page.screenshot(path=str(ARTIFACTS / "ui-destroy-approve-filled.png"), full_page=True)
            page.get_by_role("button", name="Submit").click()
            expect(page.get_by_text("Flow run resumed").first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "ui-destroy-resumed.png"), full_page=True)
        finally:
            browser.close()
    if os.environ.get("CI"):
        print(f"\nUI approval screenshots in {ARTIFACTS}")
