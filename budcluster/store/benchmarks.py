"""Benchmark results: save a run with its summaries and per-request samples, read it back.

:func:`save_run` writes everything of one run in the caller's transaction, so a run is
either stored whole or not at all. Per-request samples are bulk-inserted: ``COPY ... FROM
STDIN`` in binary format on Postgres (on the session's own connection, inside the same transaction), and
``executemany`` elsewhere. ``perf/store_bulk_insert.py`` measures both.

Saving is idempotent: each run carries a key derived from the run itself (:func:`run_key`,
unique in the table), so a save rerun after the database cut off the first try, or a
later ``budcluster bench import`` of the same run, finds the stored run instead of
storing it twice.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from itertools import islice
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from budcluster.bench.records import LatencyStats, LevelSummary, RequestRecord, RunInfo
from budcluster.pricing import usd_per_million_output_tokens
from budcluster.store import pgcopy
from budcluster.store.errors import (
    Conflict,
    StoreError,
    StoreInterrupted,
    StoreUnavailable,
    is_interruption,
    translated_errors,
)
from budcluster.store.models import BenchmarkRequest, BenchmarkRun, BenchmarkSummary
from budcluster.store.rows import add_and_flush, get_or_not_found
from budcluster.store.validation import InvalidValue, require_aware, require_text

# Rows per COPY statement: bounds the memory of the text buffer on very long runs.
COPY_BATCH_ROWS = 50_000

_REQUEST_COLUMNS = (
    "run_id",
    "request_id",
    "level",
    "scheduled_s",
    "sent_s",
    "first_token_s",
    "end_s",
    "prompt_tokens",
    "output_tokens",
    "output_tokens_source",
    "chunk_times_s",
    "error_kind",
    "error",
    "retries",
    "warmup",
)
_COPY_SQL = (
    f"COPY {BenchmarkRequest.__tablename__} ({', '.join(_REQUEST_COLUMNS)}) "
    "FROM STDIN WITH (FORMAT binary)"
)


@dataclass(slots=True)
class StoredRun:
    """A run as read back from the store."""

    run_id: int
    deployment_id: int | None
    info: RunInfo
    summaries: list[LevelSummary]
    requests: list[RequestRecord]


@dataclass(slots=True)
class RunHeader:
    """A run without its samples, for listings and comparisons."""

    run_id: int
    deployment_id: int | None
    info: RunInfo


@dataclass(frozen=True, slots=True)
class SavedRun:
    run_id: int
    created: bool
    """False when the store already held this run (same :func:`run_key`): nothing written."""


def run_key(run: RunInfo) -> str:
    """The run's identity wherever it is saved from: its name, endpoint, wall-clock start
    (in UTC) and monotonic start. Two runs never share both starts."""
    started_at = require_aware(run.started_at, "run started_at").astimezone(UTC)
    material = "\0".join((run.name, run.url, started_at.isoformat(), repr(run.started_monotonic)))
    return hashlib.sha256(material.encode()).hexdigest()


def save_run(
    session: Session,
    run: RunInfo,
    summaries: Sequence[LevelSummary],
    requests: Iterable[RequestRecord],
    *,
    deployment_id: int | None = None,
    usd_per_hour: float | None = None,
    price: dict[str, Any] | None = None,
) -> int:
    """Store one run, its level summaries and every request; return the run's id.

    Nothing is committed here: call it inside ``with store.session():`` (or
    ``store.transact``) so the whole run lands in one transaction. ``request_id`` must be
    unique within the run. ``usd_per_hour`` (with ``price``, how it was made) prices the
    measured devices: each level then keeps its cost per million output tokens. A run
    already stored (same :func:`run_key`) is not stored again; its id is returned.
    """
    return store_run(
        session,
        run,
        summaries,
        requests,
        deployment_id=deployment_id,
        usd_per_hour=usd_per_hour,
        price=price,
    ).run_id


def store_run(
    session: Session,
    run: RunInfo,
    summaries: Sequence[LevelSummary],
    requests: Iterable[RequestRecord],
    *,
    deployment_id: int | None = None,
    usd_per_hour: float | None = None,
    price: dict[str, Any] | None = None,
) -> SavedRun:
    """:func:`save_run`, also saying whether this call stored the run or found it stored."""
    key = run_key(run)
    with translated_errors(f"look up benchmark run {run.name!r}"):
        stored = session.scalar(select(BenchmarkRun.id).where(BenchmarkRun.run_key == key))
    if stored is not None:
        return SavedRun(stored, created=False)
    run_row = BenchmarkRun(
        deployment_id=deployment_id,
        deployment_name=run.deployment_name,
        run_key=key,
        name=require_text(run.name, "run name", 512),
        endpoint_url=require_text(run.url, "run url", 2048),
        model=run.model,
        api=run.api,
        profile=run.profile,
        status=run.status,
        tool_version=run.tool_version,
        started_at=require_aware(run.started_at, "run started_at"),
        started_monotonic=run.started_monotonic,
        finished_at=require_aware(run.finished_at, "run finished_at") if run.finished_at else None,
        settings=_json_safe(run.settings, "run settings"),
        usd_per_hour=usd_per_hour,
        price=_json_safe(price, "run price") if price is not None else None,
    )
    action = f"save benchmark run {run.name!r} (request ids and levels are unique per run)"
    with translated_errors(action):
        add_and_flush(session, run_row)
        session.add_all(_summary_row(run_row.id, summary, usd_per_hour) for summary in summaries)
        session.flush()
        if session.get_bind().dialect.name == "postgresql":
            _copy_requests(session, run_row.id, requests)
        else:
            _executemany_requests(session, run_row.id, requests)
    return SavedRun(run_row.id, created=True)


def load_run(session: Session, run_id: int) -> StoredRun:
    """The run with its summaries (by level) and requests (by request id)."""
    run_row = get_or_not_found(session, BenchmarkRun, what="benchmark run", id=run_id)
    summary_rows = session.scalars(
        select(BenchmarkSummary)
        .where(BenchmarkSummary.run_id == run_id)
        .order_by(BenchmarkSummary.level)
    )
    columns = [getattr(BenchmarkRequest, name) for name in _REQUEST_COLUMNS[1:]]
    request_rows = session.execute(
        select(*columns)
        .where(BenchmarkRequest.run_id == run_id)
        .order_by(BenchmarkRequest.request_id)
    )
    return StoredRun(
        run_id=run_row.id,
        deployment_id=run_row.deployment_id,
        info=_run_info(run_row),
        summaries=[_level_summary(row) for row in summary_rows],
        requests=[RequestRecord(**row._mapping) for row in request_rows],
    )


def list_runs_for_deployment(session: Session, deployment_id: int) -> list[RunHeader]:
    """The deployment's runs, oldest first, without their samples."""
    return _headers(session, BenchmarkRun.deployment_id == deployment_id)


def list_runs_for_endpoint(session: Session, endpoint_url: str) -> list[RunHeader]:
    """Runs that measured ``endpoint_url`` (also those whose deployment is gone), oldest first."""
    return _headers(session, BenchmarkRun.endpoint_url == endpoint_url)


def _headers(session: Session, condition: Any) -> list[RunHeader]:
    rows = session.scalars(
        select(BenchmarkRun).where(condition).order_by(BenchmarkRun.started_at, BenchmarkRun.id)
    )
    return [RunHeader(row.id, row.deployment_id, _run_info(row)) for row in rows]


def _json_safe(value: Any, field: str) -> Any:
    # Postgres JSONB refuses NaN and Infinity; say which field held one instead of
    # failing deep inside the driver.
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"{field} cannot be stored as JSON: {exc}") from exc
    return value


def _summary_row(
    run_id: int, summary: LevelSummary, usd_per_hour: float | None = None
) -> BenchmarkSummary:
    latencies = {
        key: {
            "mean": s.mean,
            "std": s.std,
            "min": s.min,
            "p50": s.p50,
            "p90": s.p90,
            "p95": s.p95,
            "p99": s.p99,
            "max": s.max,
            "count": s.count,
        }
        for key, s in summary.latencies_ms.items()
    }
    return BenchmarkSummary(
        run_id=run_id,
        level=summary.level,
        label=summary.label,
        target_concurrency=summary.target_concurrency,
        target_rate=summary.target_rate,
        duration_s=summary.duration_s,
        requests_completed=summary.requests_completed,
        requests_failed=summary.requests_failed,
        request_throughput=summary.request_throughput,
        output_token_throughput=summary.output_token_throughput,
        total_token_throughput=summary.total_token_throughput,
        goodput=summary.goodput,
        error_rate=summary.error_rate,
        latencies_ms=_json_safe(latencies, f"level {summary.level} latencies_ms"),
        errors_by_kind=dict(summary.errors_by_kind),
        retries=summary.retries,
        usd_per_million_output_tokens=usd_per_million_output_tokens(
            usd_per_hour, summary.output_token_throughput
        ),
    )


def _level_summary(row: BenchmarkSummary) -> LevelSummary:
    return LevelSummary(
        level=row.level,
        label=row.label,
        target_concurrency=row.target_concurrency,
        target_rate=row.target_rate,
        duration_s=row.duration_s,
        requests_completed=row.requests_completed,
        requests_failed=row.requests_failed,
        request_throughput=row.request_throughput,
        output_token_throughput=row.output_token_throughput,
        total_token_throughput=row.total_token_throughput,
        goodput=row.goodput,
        error_rate=row.error_rate,
        latencies_ms={key: LatencyStats(**stats) for key, stats in row.latencies_ms.items()},
        errors_by_kind=dict(row.errors_by_kind),
        retries=row.retries,
    )


def _run_info(row: BenchmarkRun) -> RunInfo:
    return RunInfo(
        name=row.name,
        url=row.endpoint_url,
        model=row.model,
        api=row.api,
        profile=row.profile,
        tool_version=row.tool_version,
        started_at=row.started_at,
        started_monotonic=row.started_monotonic,
        finished_at=row.finished_at,
        status=row.status,
        deployment_name=row.deployment_name,
        settings=dict(row.settings),
    )


def _request_values(run_id: int, records: Iterable[RequestRecord]) -> Iterator[dict[str, Any]]:
    for r in records:
        pgcopy.check_finite(r)
        yield {
            "run_id": run_id,
            "request_id": r.request_id,
            "level": r.level,
            "scheduled_s": r.scheduled_s,
            "sent_s": r.sent_s,
            "first_token_s": r.first_token_s,
            "end_s": r.end_s,
            "prompt_tokens": r.prompt_tokens,
            "output_tokens": r.output_tokens,
            "output_tokens_source": r.output_tokens_source,
            "chunk_times_s": r.chunk_times_s,
            "error_kind": r.error_kind,
            "error": r.error,
            "retries": r.retries,
            "warmup": r.warmup,
        }


def _executemany_requests(session: Session, run_id: int, records: Iterable[RequestRecord]) -> None:
    values = _request_values(run_id, records)
    while batch := list(islice(values, COPY_BATCH_ROWS)):
        # Core insert of the mapped class: one executemany, no ORM objects per row.
        session.execute(insert(BenchmarkRequest), batch)


def _copy_requests(session: Session, run_id: int, records: Iterable[RequestRecord]) -> None:
    import psycopg2  # the Postgres driver; imported here so SQLite-only use does not need it

    # The raw DBAPI connection behind the session's own connection: the COPY runs in the
    # same transaction as the run row, so a failure rolls back the whole run.
    dbapi_connection: Any = session.connection().connection.dbapi_connection
    rows = pgcopy.encode_rows(run_id, records)
    while batch := list(islice(rows, COPY_BATCH_ROWS)):
        buffer = io.BytesIO(b"".join((pgcopy.HEADER, *batch, pgcopy.TRAILER)))
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.copy_expert(_COPY_SQL, buffer)
        except psycopg2.IntegrityError as exc:
            raise Conflict(
                f"benchmark requests of run {run_id}: {_first_line(exc)} "
                "(request ids and levels are unique per run)"
            ) from exc
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            # The raw driver error: classified here, since SQLAlchemy never saw it.
            unavailable = StoreInterrupted if is_interruption(exc) else StoreUnavailable
            raise unavailable(f"benchmark requests of run {run_id}: {_first_line(exc)}") from exc
        except psycopg2.Error as exc:
            raise StoreError(f"benchmark requests of run {run_id}: {_first_line(exc)}") from exc


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
