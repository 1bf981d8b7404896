"""Placement claims in the store: which count, when they are released, and that two
planners of one cluster serialize (budcluster/store/placement_claims.py), on both backends."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.orm import Session

from budcluster.store import Store
from budcluster.store import deployments as dep
from budcluster.store import placement_claims as claims
from budcluster.store.clusters import register_cluster
from budcluster.store.validation import InvalidValue
from tests.store.test_deployments import _cluster_and_model

GPU = "nvidia.com/gpu"


def test_a_claim_counts_for_other_deployments_until_released_after_their_epoch(
    store: Store,
) -> None:
    with store.session() as session:
        cluster_id, _ = _cluster_and_model(session)
        before = claims.placement_epoch(session, cluster_id)
        claims.record_claim(session, cluster_id, "a", {"n1": {GPU: 2}})
    with store.session() as session:
        # The claimer never counts its own claim; another deployment does.
        assert claims.claims_counting(session, cluster_id, seen_epoch=before, excluding="a") == {}
        assert claims.claims_counting(session, cluster_id, seen_epoch=before, excluding="b") == {
            "a": {"n1": {GPU: 2}}
        }
        assert claims.release_claim(session, cluster_id, "a") is True
        assert claims.release_claim(session, cluster_id, "a") is False  # once
        after = claims.placement_epoch(session, cluster_id)
    assert after == before + 1
    with store.session() as session:
        # Released after a planner read its epoch: that planner's detection may have missed
        # the claimer's pods, so the claim still counts for it; not for a later planner.
        held = claims.claims_counting(session, cluster_id, seen_epoch=before, excluding="b")
        assert held == {"a": {"n1": {GPU: 2}}}
        assert claims.claims_counting(session, cluster_id, seen_epoch=after, excluding="b") == {}
        # A new plan of the same deployment replaces the claim and holds again.
        claims.record_claim(session, cluster_id, "a", {"n2": {GPU: 1}})
    with store.session() as session:
        held = claims.claims_counting(session, cluster_id, seen_epoch=after, excluding="b")
        assert held == {"a": {"n2": {GPU: 1}}}


def test_leaving_the_rollout_releases_the_claim_and_moves_inside_it_do_not(store: Store) -> None:
    with store.session() as session:
        cluster_id, model_id = _cluster_and_model(session)
        deployment = dep.create_deployment(
            session, cluster_id=cluster_id, model_id=model_id, name="a"
        )
        claims.record_claim(session, cluster_id, "a", {"n1": {GPU: 2}})
        epoch = claims.placement_epoch(session, cluster_id)
        for status in ("planning", "transferring", "deploying"):
            dep.transition(session, deployment.id, status)
        assert claims.claims_counting(session, cluster_id, seen_epoch=epoch, excluding="b")
        dep.transition(session, deployment.id, "ready")
        assert claims.placement_epoch(session, cluster_id) == epoch + 1
    with store.session() as session:
        assert (
            claims.claims_counting(session, cluster_id, seen_epoch=epoch + 1, excluding="b") == {}
        )


def test_bad_claims_are_refused_naming_the_field(store: Store) -> None:
    with store.session() as session:
        cluster_id, _ = _cluster_and_model(session)
        with pytest.raises(InvalidValue, match=r"devices\['n1'\]\['nvidia.com/gpu'\]"):
            claims.record_claim(session, cluster_id, "a", {"n1": {GPU: -1}})
        with pytest.raises(InvalidValue, match="'nope' is not registered"):
            claims.lock_cluster_placement(session, "nope")


def test_two_planners_of_one_cluster_serialize_and_the_second_sees_the_first(
    store: Store,
) -> None:
    """Two threads plan at once: each locks the cluster, reads the claims, 'plans' (a
    sleep), claims. Without the lock both read no claim; with it the second to lock waits
    for the first's commit and reads its claim."""
    with store.session() as session:
        register_cluster(session, name="c1", kind="kubernetes", provider="onprem")
        register_cluster(session, name="c2", kind="kubernetes", provider="onprem")
    barrier = threading.Barrier(2)
    seen: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    spans: dict[str, tuple[float, float]] = {}
    errors: list[BaseException] = []

    def planner(cluster: str, name: str) -> None:
        def work(session: Session) -> None:
            cluster_id = claims.lock_cluster_placement(session, cluster)
            locked = time.monotonic()
            seen[name] = claims.claims_counting(session, cluster_id, seen_epoch=0, excluding=name)
            time.sleep(0.5)  # the plan
            claims.record_claim(session, cluster_id, name, {"n1": {GPU: 2}})
            spans[name] = (locked, time.monotonic())

        try:
            barrier.wait(timeout=10)
            store.transact(work, action=f"plan {name}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def run(pairs: list[tuple[str, str]]) -> None:
        threads = [threading.Thread(target=planner, args=pair) for pair in pairs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors

    run([("c1", "a"), ("c1", "b")])
    first, second = sorted(("a", "b"), key=lambda name: spans[name][0])
    assert seen[first] == {}
    assert seen[second] == {first: {"n1": {GPU: 2}}}
    # The second locked only after the first had written its claim (and committed).
    assert spans[second][0] >= spans[first][1]

    if store.backend != "postgresql":
        return  # SQLite has one write lock for the whole database: all planners queue.
    # On Postgres the lock is the cluster's row: planners of different clusters overlap.
    run([("c1", "x"), ("c2", "y")])
    assert spans["y"][0] < spans["x"][1] and spans["x"][0] < spans["y"][1]
