"""One rollout per deployment at a time, across every worker: a global concurrency limit.

The limit is named after the cluster and the deployment and holds one slot. It is
created on first use (active), so nothing has to be set up by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from budcluster.errors import TemporaryError
from budcluster.settings import get_settings
from tasks._logging import task_logger


class RolloutInProgress(TemporaryError):
    """Another run holds this deployment's rollout slot."""


def limit_name(cluster: str, deployment: str) -> str:
    # Limit names may not contain / % & > <; cluster and deployment names are DNS labels.
    return f"rollout-{cluster}-{deployment}"


def ensure_limit(name: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        # Another run may create it first; one slot either way.
        with suppress(ObjectAlreadyExists):
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=1, active=True)
            )


def slot_is_held(cluster: str, deployment: str) -> bool | None:
    """Whether a live run holds the deployment's rollout slot; None when Prefect cannot say.

    A killed run's lease runs out (BUDCLUSTER_ROLLOUT_LEASE_S), so a slot still held after
    that belongs to a run that is alive.
    """
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(limit_name(cluster, deployment))
    except ObjectNotFound:
        return False
    except Exception as exc:
        task_logger(__name__).warning("cannot read the rollout slot of %s: %s", deployment, exc)
        return None
    return limit.active_slots > 0


@contextmanager
def exclusive_rollout(cluster: str, deployment: str, *, wait: bool) -> Iterator[None]:
    """Hold the deployment's slot; wait for it, or fail at once when ``wait`` is False."""
    name = limit_name(cluster, deployment)
    ensure_limit(name)
    try:
        # The slot is leased, and the lease renewed while this run lives: a worker killed
        # mid-rollout frees it when the lease runs out, and the next run repairs its work.
        with concurrency(
            name,
            occupy=1,
            timeout_seconds=None if wait else 2.0,
            strict=True,
            lease_duration=get_settings().rollout_lease_s,
        ):
            task_logger(__name__).info("holding rollout slot %s", name)
            yield
    except TimeoutError as exc:
        raise RolloutInProgress(
            f"another run is rolling out {deployment!r} on {cluster!r} (limit {name}); "
            "wait for it, or rerun with if_busy='wait'"
        ) from exc
