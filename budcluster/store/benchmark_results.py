"""Save a benchmark result to the results store (runs, level summaries, every request).

The one place the benchmark engine meets the store: the run, its per-level summaries and
its per-request samples go in one transaction (``save_run`` bulk-writes the samples),
rerun while the database is briefly away (``Store.transact``). When it stays away past
the deadline and the caller gave a folder, the run is kept there in a file
(:mod:`budcluster.store.pending_runs`) for ``budcluster bench import``.
"""

from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session

from budcluster.bench.result import BenchmarkResult
from budcluster.errors import ConfigurationError
from budcluster.pricing import HourlyPrice
from budcluster.store.benchmarks import SavedRun, store_run
from budcluster.store.engine import Store
from budcluster.store.errors import StoreUnavailable
from budcluster.store.migrate import upgrade
from budcluster.store.pending_runs import PENDING_FILE_NAME, PendingRun, read_pending, write_pending


class RunKeptInFile(StoreUnavailable):
    """The store stayed unavailable; the run is kept in ``path`` for ``bench import``."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


def _revision(session: Session) -> str | None:
    return MigrationContext.configure(session.connection()).get_current_revision()


def ensure_schema(store: Store) -> None:
    """A fresh local SQLite file is migrated on first use; any other database must already
    be (migrating a shared server is the operator's call, not a benchmark's)."""
    if store.transact(_revision, action="read the store's revision") is not None:
        return
    if store.backend == "sqlite":
        upgrade(store.url)
        return
    raise ConfigurationError(
        "the results store has no schema yet; run `budcluster db upgrade` first "
        "(or pass --no-store to skip saving)"
    )


def save_result(
    result: BenchmarkResult,
    store: Store,
    deployment_id: int | None = None,
    price: HourlyPrice | None = None,
    *,
    pending_dir: Path | None = None,
) -> int:
    """Write the run with its level summaries and requests; return the stored run id.

    With ``price``, the run keeps its devices' hourly price and each level its cost per
    million output tokens. With ``pending_dir`` (the report folder), a store still
    unavailable after its retry deadline gets the run written to
    ``pending_dir/store-pending.json.gz`` and :class:`RunKeptInFile` says how to load it.
    """
    pending = PendingRun(
        run=result.run,
        levels=result.levels,
        records=result.records,
        deployment_id=deployment_id,
        usd_per_hour=price.usd_per_hour if price else None,
        price=price.as_record() if price else None,
    )
    try:
        return save_pending(pending, store).run_id
    except StoreUnavailable as exc:
        if pending_dir is None:
            raise
        path = write_pending(pending_dir / PENDING_FILE_NAME, pending)
        raise RunKeptInFile(
            f"{exc}. The run's {len(pending.records)} requests are kept in {path}: once the "
            f"store is back, run `budcluster bench import {path}` to store them (importing "
            "twice stores nothing twice)",
            path,
        ) from exc


def save_pending(pending: PendingRun, store: Store) -> SavedRun:
    """Store the run unless the store holds it already; reruns while the database is away."""
    ensure_schema(store)
    return store.transact(
        lambda session: store_run(
            session,
            pending.run,
            pending.levels,
            pending.records,
            deployment_id=pending.deployment_id,
            usd_per_hour=pending.usd_per_hour,
            price=pending.price,
        ),
        action=f"save benchmark run {pending.run.name!r}",
    )


def import_pending(path: Path, store: Store) -> tuple[PendingRun, SavedRun]:
    """Load a run kept by :func:`save_result` into the store; a stored run is not stored twice."""
    pending = read_pending(path)
    return pending, save_pending(pending, store)
