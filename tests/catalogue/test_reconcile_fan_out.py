"""reconcile-deployments handing its rollouts to deploy-model's own flow runs (deploy_via),
against a real Prefect server and store; no worker, so nothing really deploys here
(perf/reconcile_50.py runs the whole thing through a pool of process workers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterName,
)
from prefect.states import Completed, Failed

from budcluster.errors import ConfigurationError
from tests.support.flow_environment import flow_environment

DEPLOY_VIA = "deploy-model/deploy-model"


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with flow_environment(tmp_path_factory.mktemp("fan-out")) as database_url:
        yield database_url


@pytest.fixture
def deploy_model_deployment(environment: str) -> Iterator[UUID]:
    """A fresh ``deploy-model/deploy-model`` deployment with no work pool: runs stay queued."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("deploy-model")
        deployment_id = client.create_deployment(flow_id=flow_id, name="deploy-model")
    yield deployment_id
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment_id)


def _runs_of(deployment_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )


def _catalogue(path: Path, names: list[str]) -> Path:
    entries = [{"name": n, "cluster": "lab", "model": {"uri": f"/models/{n}"}} for n in names]
    path.write_text(yaml.safe_dump({"deployments": entries}), encoding="utf-8")
    return path


def test_each_rollout_is_a_deploy_model_run_that_reconcile_waits_for(
    deploy_model_deployment: UUID, environment: str, tmp_path: Path
) -> None:
    from budcluster.store import Store
    from budcluster.store.models import Deployment
    from flows.reconcile_deployments import ReconcileIncomplete, reconcile_deployments

    catalogue = _catalogue(tmp_path / "deployments.yaml", ["alpha", "beta"])
    with pytest.raises(ReconcileIncomplete) as failed:
        reconcile_deployments(
            str(catalogue), check_runtimes=False, deploy_via=DEPLOY_VIA, deploy_wait_s=3
        )
    # No worker took them: the reconcile says so for each, and leaves them queued.
    assert "lab/alpha (deploy): not finished after 3 s" in str(failed.value)
    assert "lab/beta (deploy): not finished after 3 s" in str(failed.value)
    runs = _runs_of(deploy_model_deployment)
    requests = {run.parameters["request"]["name"]: run.parameters["request"] for run in runs}
    assert sorted(requests) == ["alpha", "beta"], "one run per entry, none twice"
    assert requests["alpha"]["model"]["uri"] == "/models/alpha"
    assert requests["alpha"]["cluster"] == "lab"
    assert {run.state_type.value for run in runs} == {"SCHEDULED"}
    # Each is a child of the reconcile run (the UI shows them under it).
    with get_client(sync_client=True) as client:
        [reconcile] = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["reconcile-deployments"])),
            limit=1,
            sort="START_TIME_DESC",  # type: ignore[arg-type]
        )
        parents = {client.read_task_run(run.parent_task_run_id).flow_run_id for run in runs}  # type: ignore[arg-type]
    assert parents == {reconcile.id}
    # Nothing was deployed inside the reconcile run itself.
    store = Store(environment)
    try:
        with store.session() as session:
            assert session.query(Deployment).count() == 0
    finally:
        store.dispose()


def test_a_retried_submission_finds_its_run_instead_of_making_a_second(
    deploy_model_deployment: UUID,
) -> None:
    from tasks.fan_out import submit_run

    @flow
    def submit_twice() -> list[str]:
        parameters = {"request": {"name": "alpha"}}
        first = submit_run.fn(DEPLOY_VIA, "lab/alpha", parameters)
        again = submit_run.fn(DEPLOY_VIA, "lab/alpha", parameters)
        other = submit_run.fn(DEPLOY_VIA, "lab/beta", parameters)
        return [first, again, other]

    first, again, other = submit_twice()
    assert first == again and other != first
    assert len(_runs_of(deploy_model_deployment)) == 2


def test_wait_reports_how_each_run_ended_and_which_did_not(deploy_model_deployment: UUID) -> None:
    from tasks.fan_out import wait_for_runs

    with get_client(sync_client=True) as client:
        ids = {
            key: client.create_flow_run_from_deployment(deploy_model_deployment).id
            for key in ("lab/ok", "lab/broken", "lab/queued")
        }
        client.set_flow_run_state(ids["lab/ok"], Completed(), force=True)
        client.set_flow_run_state(ids["lab/broken"], Failed(message="no free GPU"), force=True)
    ended = wait_for_runs.fn({k: str(v) for k, v in ids.items()}, 3, 1.0)
    assert (ended["lab/ok"].state, ended["lab/ok"].completed) == ("Completed", True)
    assert ended["lab/broken"].completed is False
    assert ended["lab/broken"].message == "no free GPU"
    assert ended["lab/queued"].state == "NotFinished"
    assert ended["lab/queued"].message == "not finished after 1 s"
    assert ended["lab/queued"].run_id == str(ids["lab/queued"])


def test_a_deploy_via_that_is_not_flow_slash_deployment_is_refused() -> None:
    from tasks.fan_out import check_deployment_name

    assert check_deployment_name(DEPLOY_VIA) == DEPLOY_VIA
    for bad in ("deploy-model", "/deploy-model", "deploy-model/", "a/b/c"):
        with pytest.raises(ConfigurationError, match=r"deploy_via .* is not FLOW/DEPLOYMENT"):
            check_deployment_name(bad)
