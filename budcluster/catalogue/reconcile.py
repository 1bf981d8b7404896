"""The reconcile planner: what to do so the clusters match the catalogue. Pure.

Given the catalogue and the store's deployments (with, where it was checked, whether the
runtime really runs), each deployment gets one action:

- ``deploy``: no live deployment (absent, deleted, or a failed rollout);
- ``redeploy``: ready, but its stored spec hash differs from the entry's, or the store
  says ready while the runtime is gone (drift that a rollout heals);
- ``unchanged``: ready with the entry's spec hash (and running, where checked);
- ``wait``: a rollout or removal is in progress; the next reconcile looks again;
- ``drift``: live state the catalogue does not explain and reconcile leaves alone
  (a deployment no entry names while ``prune`` is off);
- ``prune``: a deployment of a managed cluster that no entry names, with ``prune: true``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from budcluster.catalogue.schema import Catalogue, CatalogueEntry
from budcluster.lifecycle import ROLLOUT_IN_PROGRESS


class ActionKind(StrEnum):
    DEPLOY = "deploy"
    REDEPLOY = "redeploy"
    UNCHANGED = "unchanged"
    WAIT = "wait"
    DRIFT = "drift"
    PRUNE = "prune"


@dataclass(frozen=True)
class StoredDeployment:
    name: str
    cluster: str
    status: str
    spec_hash: str | None
    runtime: str | None = None
    """The target's view ("running", "absent", "failed", "starting"); None if unchecked."""
    run_alive: bool | None = None
    """Whether a live run holds the deployment's rollout slot; None if not asked."""


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    cluster: str
    name: str
    reason: str
    entry: CatalogueEntry | None = None
    drift: str | None = None
    """Set when live state disagreed with the store or the catalogue."""


_IN_PROGRESS = frozenset({"pending", "planning", "transferring", "deploying", "deleting"})
_GONE = frozenset({"deleted"})


def _for_entry(entry: CatalogueEntry, stored: StoredDeployment | None) -> Action:
    def act(kind: ActionKind, reason: str, drift: str | None = None) -> Action:
        return Action(kind, entry.cluster, entry.name, reason, entry, drift)

    if stored is None or stored.status in _GONE:
        return act(ActionKind.DEPLOY, "not deployed")
    if stored.status == "failed":
        return act(ActionKind.DEPLOY, "the last rollout failed; trying again")
    if stored.status in ROLLOUT_IN_PROGRESS and stored.run_alive is False:
        # No run holds the slot: the run that left this status died. deploy-model repairs
        # what it started (its rollout attempt) and deploys again.
        return act(
            ActionKind.DEPLOY,
            f"{stored.status}, but no run holds its rollout slot (the run died); repairing",
        )
    if stored.status in _IN_PROGRESS:
        return act(ActionKind.WAIT, f"{stored.status} in progress; left to finish")
    wanted = entry.spec_hash()
    if stored.spec_hash != wanted:
        return act(ActionKind.REDEPLOY, f"spec changed ({stored.spec_hash} -> {wanted})")
    if stored.runtime is not None and stored.runtime != "running":
        drift = f"the store says ready but the runtime is {stored.runtime}"
        return act(ActionKind.REDEPLOY, drift, drift)
    return act(ActionKind.UNCHANGED, "ready with this spec")


def plan_reconcile(catalogue: Catalogue, stored: Iterable[StoredDeployment]) -> list[Action]:
    """One action per catalogue entry, then one per stored deployment no entry names.

    Stored deployments on clusters the catalogue does not manage are not looked at, so
    one catalogue never prunes (or reports) another team's clusters.
    """
    by_key = {(s.cluster, s.name): s for s in stored}
    actions = [_for_entry(entry, by_key.get(entry.key)) for entry in catalogue.deployments]
    wanted = {entry.key for entry in catalogue.deployments}
    managed = catalogue.managed_clusters()
    for key in sorted(by_key):
        deployment = by_key[key]
        if key in wanted or deployment.cluster not in managed or deployment.status in _GONE:
            continue
        if catalogue.prune:
            actions.append(
                Action(
                    ActionKind.PRUNE,
                    deployment.cluster,
                    deployment.name,
                    f"not in the catalogue ({deployment.status}); prune is on",
                )
            )
        else:
            note = f"not in the catalogue ({deployment.status}); set prune: true to remove it"
            actions.append(
                Action(ActionKind.DRIFT, deployment.cluster, deployment.name, note, drift=note)
            )
    return actions


def summary_rows(actions: Iterable[Action]) -> list[dict[str, str]]:
    """Rows for the reconcile table artifact."""
    return [
        {"cluster": a.cluster, "deployment": a.name, "action": a.kind.value, "reason": a.reason}
        for a in actions
    ]
