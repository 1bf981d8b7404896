"""A rollback that itself fails (issue #15, fault 3), on the Kubernetes API emulator.

deploy-model runs for real (registered cluster, S3 registry, transfer Job, Helm-rendered
runtime) and its rollout fails: the emulator crash-loops the runtime's pod. While the run
undoes it, the API server answers 503 to every DELETE of the release's objects for longer
than the adapter's retry deadline (``BUDCLUSTER_KUBERNETES_API_RETRY_S``, a few seconds
here instead of 60). The run fails; its attempt ends ``undo_failed`` with the undo's error;
the deployment ends ``failed`` with both errors and the fix; the runtime's objects are
still on the cluster. Once the API answers again, teardown-deployment removes them.

The same across processes: a run ``kill -9``-ed right after the runtime started leaves a
``started`` attempt; the next run's repair meets the same 503s, fails with
``RolloutRepairFailed`` and leaves the deployment ``failed`` with the interruption, the
undo's error and the fix.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import amx_cpu_node, h100_node
from tests.support.flow_environment import flow_environment
from tests.support.prefect_server import free_port

pytestmark = pytest.mark.e2e
PROJECT = Path(__file__).resolve().parents[2]
LLAMA_8B = Path(__file__).parents[1] / "fixtures" / "models" / "Llama-3.1-8B-Instruct"
S3_ENV = {"AWS_ACCESS_KEY_ID": "e2e-id", "AWS_SECRET_ACCESS_KEY": "e2e-secret"}
API_RETRY_S = 3.0
LEASE_S = 60.0  # Prefect's shortest slot lease: a killed run's slot frees this long after
INSTANCE = "app.kubernetes.io/instance"
RUNTIME_KINDS = (("deployments", "apps"), ("services", ""), ("poddisruptionbudgets", "policy"))
RUN_IN_CHILD = """
import json, sys
from budcluster.job_requests import DeployModelRequest
from flows.deploy_model import deploy_model
deploy_model(DeployModelRequest.model_validate(json.loads(sys.argv[1])))
"""


@dataclass(frozen=True)
class Lab:
    emulator: Emulator
    database_url: str


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from moto.server import ThreadedMotoServer

    from blocks.kubeconfig import KubeconfigCredentials
    from blocks.s3 import S3Registry
    from budcluster.adapters.s3 import make_s3_client
    from budcluster.job_requests import RegisterClusterRequest
    from flows.register_cluster import register_cluster

    workdir = tmp_path_factory.mktemp("undo-fails")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    kube = start_emulator(flavour="kubernetes", nodes=[h100_node(), amx_cpu_node()])
    try:
        settings = {
            "BUDCLUSTER_KUBERNETES_API_RETRY_S": str(API_RETRY_S),
            "BUDCLUSTER_ROLLOUT_LEASE_S": str(LEASE_S),
        }
        with flow_environment(workdir, **settings) as database_url:
            s3 = make_s3_client(
                endpoint_url=endpoint,
                region="us-east-1",
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket(Bucket="models")
            for file in sorted(LLAMA_8B.iterdir()):
                s3.put_object(Bucket="models", Key=f"llama-8b/{file.name}", Body=file.read_bytes())
            S3Registry.from_keys(
                "models",
                bucket="models",
                endpoint_url=endpoint,
                access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            ).save("models")
            KubeconfigCredentials.from_kubeconfig(
                "lab", yaml.safe_dump(kube.kubeconfig_dict())
            ).save("lab")
            register_cluster(
                RegisterClusterRequest(name="lab", kind="kubernetes", credentials_block="lab")
            )
            yield Lab(kube, database_url)
    finally:
        kube.stop()
        moto.stop()


def _request(name: str, **overrides: Any) -> Any:
    from budcluster.job_requests import DeployModelRequest

    values: dict[str, Any] = {
        "name": name,
        "cluster": "lab",
        "model": {"uri": "s3://models/llama-8b", "registry_block": "models"},
        "device": "cuda",
        "max_model_len": 8192,
        "concurrency": 1,
        "ready_timeout_s": 120,
        **overrides,
    }
    return DeployModelRequest.model_validate(values)


def _runtime_objects(emulator: Emulator, release: str) -> list[str]:
    return sorted(
        f"{kind}/{o['metadata']['name']}"
        for kind, group in RUNTIME_KINDS
        for o in emulator.objects(kind, group)
        if o["metadata"].get("labels", {}).get(INSTANCE) == release
    )


@dataclass(frozen=True)
class Recorded:
    status: str
    reason: str
    attempts: list[tuple[str, str, str | None]]
    """(state, detail, flow run id), oldest first."""


def _recorded(database_url: str, name: str) -> Recorded:
    from budcluster.store import Store
    from budcluster.store.models import Deployment, RolloutAttempt

    store = Store(database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == name))
            assert row is not None
            attempts = session.scalars(
                select(RolloutAttempt)
                .where(RolloutAttempt.deployment_id == row.id)
                .order_by(RolloutAttempt.id)
            )
            return Recorded(
                row.status.value,
                row.status_reason or "",
                [(a.state.value, a.detail or "", a.flow_run_id) for a in attempts],
            )
    finally:
        store.dispose()


def _flow_run_state(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid.UUID(flow_run_id))
    assert run.state is not None
    return run.state.type.value


def _turn_away_deletes(emulator: Emulator, release: str) -> Any:
    """Every DELETE of the release's objects answered 503 (no Retry-After), however often
    it is tried: the rollout deletes none of them, so only an undo meets it."""
    return emulator.inject_api_fault(
        "DELETE",
        rf"/.+/{re.escape(release)}[^/]*",
        status=503,
        count=1_000_000,
        retry_after_s=None,
    )


def test_an_undo_the_api_turns_away_ends_failed_with_both_errors_and_teardown_cleans_up(
    lab: Lab,
) -> None:
    from budcluster.job_requests import TeardownRequest
    from budcluster.targets.kubernetes import release_for
    from budcluster.targets.kubernetes.errors import KubernetesRuntimeFailed
    from flows.deploy_model import deploy_model
    from flows.teardown_deployment import teardown_deployment

    name = "undo-503"
    release = release_for(name)
    emu = lab.emulator
    # The rollout fails for a real reason: the runtime's pod crash-loops.
    crash = emu.inject_fault("CrashLoopBackOff", selector=f"{INSTANCE}={release}")
    # And the API server cannot serve the undo's DELETEs.
    turned_away = _turn_away_deletes(emu, release)
    started = time.monotonic()
    try:
        with pytest.raises(Exception, match="CrashLoopBackOff") as failed:
            deploy_model(_request(name))
        took = time.monotonic() - started
    finally:
        emu.clear_faults(crash)

    # The undo tried its DELETE for the whole retry deadline, then gave up.
    tries = [r for r in emu.api_fault_log() if r.fault_id == turned_away.id]
    assert len(tries) >= 3, tries
    assert {(r.method, r.status) for r in tries} == {("DELETE", 503)}
    tried_for = tries[-1].at - tries[0].at
    assert tried_for <= API_RETRY_S
    # The run failed with the rollout's error (the undo's is logged and recorded), and
    # Prefect recorded the run as failed.
    assert isinstance(failed.value, KubernetesRuntimeFailed)
    recorded = _recorded(lab.database_url, name)
    [(state, undo_error, flow_run_id)] = recorded.attempts
    assert flow_run_id is not None and _flow_run_state(flow_run_id) == "FAILED"
    # The attempt ends undo_failed with the undo's error: the call, the 503, how long.
    assert state == "undo_failed", recorded.attempts
    assert undo_error.startswith("KubernetesTargetTemporary: "), undo_error
    assert f"delete {name}" in undo_error
    assert "the API server answered 503 ServiceUnavailable to all" in undo_error
    deleted = rf"\(DELETE /apis/apps/v1/namespaces/[^/]+/deployments/{re.escape(release)}\)"
    assert re.search(deleted, undo_error), undo_error
    assert f"each call retries for up to {API_RETRY_S:g} s" in undo_error
    # The deployment is failed, and its reason holds both errors and the fix.
    assert recorded.status == "failed"
    reason = recorded.reason
    rollout_error, _, after = reason.partition("; and undoing the rollout failed too: ")
    assert "CrashLoopBackOff" in rollout_error, reason
    assert "503 ServiceUnavailable" in after and f"delete {name}" in after, reason
    assert reason.endswith("What it started may still run: run teardown-deployment to remove it"), (
        reason
    )
    # What the rollout started is still there: the undo removed nothing.
    left = _runtime_objects(emu, release)
    assert f"deployments/{release}" in left and f"services/{release}" in left, left
    print(
        f"\nundo turned away: {len(tries)} DELETEs answered 503 over {tried_for:.2f} s "
        f"(deadline {API_RETRY_S:g} s); the run failed {took:.1f} s after it started; "
        f"left on the cluster: {', '.join(left)}"
    )

    # The API answers again: teardown-deployment removes what is left.
    emu.clear_api_faults()
    assert teardown_deployment(TeardownRequest(cluster="lab", deployment=name)) == "deleted"
    assert _runtime_objects(emu, release) == []
    assert not [
        p
        for p in emu.objects("pods")
        if p["metadata"].get("labels", {}).get(INSTANCE) == release
        and not p["metadata"].get("deletionTimestamp")
    ]
    after_teardown = _recorded(lab.database_url, name)
    assert after_teardown.status == "deleted"
    # Nothing is left open: the attempt stays ended, with the undo's error as its record.
    assert [a[:2] for a in after_teardown.attempts] == [("undo_failed", undo_error)]


def test_a_rollout_refused_part_way_is_undone_by_the_run_itself(lab: Lab) -> None:
    """The roll-out task itself fails after applying some objects (the Service is created,
    the Deployment's POST is turned away): Prefect runs no rollback hook for a task that
    failed, so the run's own undo must remove what was applied."""
    from budcluster.targets.kubernetes import release_for
    from flows.deploy_model import deploy_model

    name = "half-applied"
    release = release_for(name)
    emu = lab.emulator
    refused = emu.inject_api_fault(
        "POST",
        r"/apis/apps/v1/namespaces/[^/]+/deployments",
        status=503,
        count=1_000_000,
        retry_after_s=None,
    )
    try:
        with pytest.raises(Exception, match="503") as failed:
            deploy_model(_request(name))
    finally:
        emu.clear_api_faults()
    assert [r.method for r in emu.api_fault_log() if r.fault_id == refused.id][:1] == ["POST"]
    recorded = _recorded(lab.database_url, name)
    # What roll-out applied before it was refused is gone, and the attempt says so.
    assert _runtime_objects(emu, release) == [], _runtime_objects(emu, release)
    assert [a[0] for a in recorded.attempts] == ["undone"], recorded.attempts
    assert recorded.status == "failed"
    assert "503" in recorded.reason and "undoing the rollout failed" not in recorded.reason
    assert str(failed.value).splitlines()[0] in recorded.reason


@pytest.mark.slow
def test_a_repair_the_api_turns_away_fails_the_next_run_with_both_errors(lab: Lab) -> None:
    from prefect.settings import PREFECT_API_URL

    from budcluster.job_requests import TeardownRequest
    from budcluster.targets.kubernetes import release_for
    from flows.deploy_model import deploy_model
    from flows.teardown_deployment import teardown_deployment
    from tasks.recovery import RolloutRepairFailed

    name = "repair-503"
    release = release_for(name)
    emu = lab.emulator
    request = _request(name, if_busy="wait")
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        BUDCLUSTER_FAILPOINTS="after-roll-out=pause:600",
        PYTHONPATH=str(PROJECT),
    )
    child = subprocess.Popen(
        [sys.executable, "-c", RUN_IN_CHILD, request.model_dump_json()],
        cwd=PROJECT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while not (_started_attempt(lab, name) and _runtime_objects(emu, release)):
            assert child.poll() is None, child.communicate()[0].decode()[-3000:]
            assert time.monotonic() < deadline, "the child never started the runtime"
            time.sleep(1)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    killed_at = time.monotonic()
    started_objects = _runtime_objects(emu, release)
    turned_away = _turn_away_deletes(emu, release)

    # The next run waits for the dead run's slot lease, then repairs: its undo is turned away.
    with pytest.raises(RolloutRepairFailed) as failed:
        deploy_model(request)
    repaired_after = time.monotonic() - killed_at
    tries = [r for r in emu.api_fault_log() if r.fault_id == turned_away.id]
    assert len(tries) >= 3 and {(r.method, r.status) for r in tries} == {("DELETE", 503)}
    tried_for = tries[-1].at - tries[0].at
    assert tried_for <= API_RETRY_S
    recorded = _recorded(lab.database_url, name)
    [(state, undo_error, dead_run)] = recorded.attempts
    assert state == "undo_failed", recorded.attempts
    assert undo_error.startswith("KubernetesTargetTemporary: "), undo_error
    assert "the API server answered 503 ServiceUnavailable to all" in undo_error
    # Both errors and the fix, in the raised error and in the deployment's reason.
    assert recorded.status == "failed"
    for said in (str(failed.value), recorded.reason):
        interrupted, _, after = said.partition("; undoing it failed: ")
        assert interrupted == f"run {dead_run} ended after starting {name}'s runtime", said
        assert after.startswith("KubernetesTargetTemporary: ") and "503" in after, said
        assert said.endswith("or run teardown-deployment to remove it"), said
    # Nothing was removed: what the dead run started is still there.
    assert _runtime_objects(emu, release) == started_objects
    print(
        f"\nrepair turned away: {len(tries)} DELETEs answered 503 over {tried_for:.2f} s "
        f"(deadline {API_RETRY_S:g} s); the next run failed {repaired_after:.1f} s after "
        f"the kill (slot lease {LEASE_S:g} s); left: {', '.join(started_objects)}"
    )

    emu.clear_api_faults()
    assert teardown_deployment(TeardownRequest(cluster="lab", deployment=name)) == "deleted"
    assert _runtime_objects(emu, release) == []
    assert _recorded(lab.database_url, name).status == "deleted"


def _started_attempt(lab: Lab, name: str) -> bool:
    try:
        return [a[0] for a in _recorded(lab.database_url, name).attempts] == ["started"]
    except AssertionError:  # the child has not opened the deployment yet
        return False
