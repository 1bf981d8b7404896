"""Save a benchmark result to the results store (runs, level summaries, every request).

The one place the benchmark engine meets the store: the run, its per-level summaries and
its per-request samples go in one transaction (``save_run`` bulk-writes the samples).
"""

from __future__ import annotations

from budcluster.bench.result import BenchmarkResult
from budcluster.errors import ConfigurationError
from budcluster.pricing import HourlyPrice
from budcluster.store.benchmarks import save_run
from budcluster.store.engine import Store
from budcluster.store.migrate import current_revision, upgrade


def ensure_schema(store: Store) -> None:
    """A fresh local SQLite file is migrated on first use; any other database must already
    be (migrating a shared server is the operator's call, not a benchmark's)."""
    if current_revision(store.url) is not None:
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
) -> int:
    """Write the run with its level summaries and requests; return the stored run id.

    With ``price``, the run keeps its devices' hourly price and each level its cost per
    million output tokens.
    """
    ensure_schema(store)
    with store.session() as session:
        return save_run(
            session,
            result.run,
            result.levels,
            result.records,
            deployment_id=deployment_id,
            usd_per_hour=price.usd_per_hour if price else None,
            price=price.as_record() if price else None,
        )
