"""reconcile-deployments and cluster-health against this machine, for real."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from budcluster.store import Store
from budcluster.store.models import Deployment
from flows.cluster_health import cluster_health
from flows.reconcile_deployments import reconcile_deployments
from tests.e2e_hosts.conftest import MainJob

pytestmark = pytest.mark.e2e
KEY = "this-machine/cat-demo"


def _write(
    main_job: MainJob, *, max_len: int = 512, entries: bool = True, prune: bool = False
) -> str:
    catalogue = {
        "prune": prune,
        "clusters": ["this-machine"],
        "deployments": [
            {
                "name": "cat-demo",
                "cluster": "this-machine",
                "model": {"uri": str(main_job.model_dir)},
                "hardware": {"device": "cpu"},
                "runtime": {"max_model_len": max_len, "concurrency": 2, "port": 18451},
            }
        ]
        if entries
        else [],
    }
    path = main_job.workdir / "catalogue.yaml"
    path.write_text(yaml.safe_dump(catalogue))
    return str(path)


def _status(main_job: MainJob, name: str) -> str | None:
    store = Store(main_job.database_url)
    try:
        with store.session() as session:
            row = session.scalar(select(Deployment).where(Deployment.name == name))
            return row.status.value if row else None
    finally:
        store.dispose()


def test_cluster_health_reaches_this_machine(main_job: MainJob) -> None:
    rows = cluster_health()
    mine = [r for r in rows if r["cluster"] == "this-machine"]
    assert mine and all(r["reachable"] for r in mine)


def test_reconcile_deploys_then_keeps_then_redeploys_then_prunes(main_job: MainJob) -> None:
    first = reconcile_deployments(_write(main_job))
    assert first[KEY]["action"] == "deploy" and first[KEY]["result"] == "Completed"
    assert _status(main_job, "cat-demo") == "ready"

    again = reconcile_deployments(_write(main_job))
    assert again[KEY]["action"] == "unchanged"

    changed = reconcile_deployments(_write(main_job, max_len=256))
    assert changed[KEY]["action"] == "redeploy" and changed[KEY]["result"] == "Completed"

    kept = reconcile_deployments(_write(main_job, entries=False), dry_run=True)
    assert kept[KEY]["action"] == "drift"  # absent from the catalogue, prune is off

    pruned = reconcile_deployments(_write(main_job, entries=False, prune=True))
    assert pruned[KEY]["action"] == "prune" and pruned[KEY]["result"] == "Completed"
    assert _status(main_job, "cat-demo") == "deleted"
    assert not Path(
        main_job.workdir / "host-state" / "runtimes" / "cat-demo" / "child.pid"
    ).exists()
