"""The reconcile planner: deploy, redeploy, unchanged, wait, drift, prune."""

from __future__ import annotations

from typing import Any

from budcluster.catalogue import ActionKind, StoredDeployment, parse_catalogue, plan_reconcile
from budcluster.catalogue.reconcile import summary_rows


def _catalogue(*entries: dict[str, Any], **top: Any) -> Any:
    return parse_catalogue({"deployments": list(entries), **top})


def _entry(name: str, cluster: str = "lab", uri: str = "/models/m") -> dict[str, Any]:
    return {"name": name, "cluster": cluster, "model": {"uri": uri}}


def _kinds(actions: list[Any]) -> dict[tuple[str, str], ActionKind]:
    return {(a.cluster, a.name): a.kind for a in actions}


def test_each_entry_gets_the_action_its_stored_state_calls_for() -> None:
    catalogue = _catalogue(
        _entry("new"),
        _entry("same"),
        _entry("changed", uri="/models/v2"),
        _entry("broken"),
        _entry("busy"),
        _entry("gone"),
        _entry("lost"),
    )
    same_hash = catalogue.entry("same").spec_hash()
    stored = [
        StoredDeployment("same", "lab", "ready", same_hash, runtime="running"),
        StoredDeployment("changed", "lab", "ready", catalogue.entry("same").spec_hash()),
        StoredDeployment("broken", "lab", "failed", None),
        StoredDeployment("busy", "lab", "deploying", "old"),
        StoredDeployment("gone", "lab", "deleted", same_hash),
        StoredDeployment("lost", "lab", "ready", catalogue.entry("lost").spec_hash(), "absent"),
    ]
    actions = plan_reconcile(catalogue, stored)
    assert _kinds(actions) == {
        ("lab", "new"): ActionKind.DEPLOY,
        ("lab", "same"): ActionKind.UNCHANGED,
        ("lab", "changed"): ActionKind.REDEPLOY,
        ("lab", "broken"): ActionKind.DEPLOY,
        ("lab", "busy"): ActionKind.WAIT,
        ("lab", "gone"): ActionKind.DEPLOY,
        ("lab", "lost"): ActionKind.REDEPLOY,
    }
    by_name = {a.name: a for a in actions}
    assert by_name["lost"].drift == "the store says ready but the runtime is absent"
    assert by_name["same"].drift is None
    assert by_name["changed"].entry is not None
    assert by_name["changed"].entry.deploy_request().model.uri == "/models/v2"
    assert "spec changed" in by_name["changed"].reason


def test_a_changed_replica_count_is_a_redeploy() -> None:
    one = _catalogue(_entry("chat"))
    two = _catalogue({**_entry("chat"), "runtime": {"replicas": 2}})
    stored = [StoredDeployment("chat", "lab", "ready", one.entry("chat").spec_hash(), "running")]
    assert _kinds(plan_reconcile(one, stored)) == {("lab", "chat"): ActionKind.UNCHANGED}
    (action,) = plan_reconcile(two, stored)
    assert action.kind is ActionKind.REDEPLOY and "spec changed" in action.reason
    assert action.entry is not None and action.entry.deploy_request().replicas == 2


def test_unlisted_deployments_are_drift_unless_prune_is_on() -> None:
    stored = [
        StoredDeployment("keep", "lab", "ready", None),
        StoredDeployment("orphan", "lab", "ready", "x"),
        StoredDeployment("old", "lab", "deleted", "x"),
        StoredDeployment("theirs", "other-team", "ready", "x"),
    ]
    listed = _entry("keep")
    stored[0] = StoredDeployment(
        "keep", "lab", "ready", _catalogue(listed).entry("keep").spec_hash()
    )

    kept = plan_reconcile(_catalogue(listed), stored)
    assert _kinds(kept) == {
        ("lab", "keep"): ActionKind.UNCHANGED,
        ("lab", "orphan"): ActionKind.DRIFT,
    }
    assert "prune: true" in (kept[-1].drift or "")

    pruned = plan_reconcile(_catalogue(listed, prune=True), stored)
    assert _kinds(pruned)[("lab", "orphan")] is ActionKind.PRUNE
    # Deleted rows and clusters the catalogue does not manage are never touched.
    assert ("lab", "old") not in _kinds(pruned)
    assert ("other-team", "theirs") not in _kinds(pruned)

    managed = plan_reconcile(_catalogue(listed, prune=True, clusters=["other-team"]), stored)
    assert _kinds(managed)[("other-team", "theirs")] is ActionKind.PRUNE


def test_an_empty_catalogue_with_prune_removes_only_its_listed_clusters() -> None:
    stored = [StoredDeployment("a", "lab", "ready", "h"), StoredDeployment("b", "x", "ready", "h")]
    actions = plan_reconcile(_catalogue(prune=True, clusters=["lab"]), stored)
    assert _kinds(actions) == {("lab", "a"): ActionKind.PRUNE}
    assert summary_rows(actions) == [
        {
            "cluster": "lab",
            "deployment": "a",
            "action": "prune",
            "reason": "not in the catalogue (ready); prune is on",
        }
    ]


def test_an_in_progress_deployment_whose_run_died_is_deployed_again() -> None:
    """A status left by a killed run (no live run holds its rollout slot) is repaired by
    deploying again; a live run, or an unknown one, is left to finish."""
    catalogue = _catalogue(_entry("orphaned"), _entry("running"), _entry("unknown"))
    stored = [
        StoredDeployment("orphaned", "lab", "deploying", "old", run_alive=False),
        StoredDeployment("running", "lab", "deploying", "old", run_alive=True),
        StoredDeployment("unknown", "lab", "transferring", "old"),
    ]
    actions = plan_reconcile(catalogue, stored)
    assert _kinds(actions) == {
        ("lab", "orphaned"): ActionKind.DEPLOY,
        ("lab", "running"): ActionKind.WAIT,
        ("lab", "unknown"): ActionKind.WAIT,
    }
    orphaned = next(a for a in actions if a.name == "orphaned")
    assert "no run holds its rollout slot" in orphaned.reason
