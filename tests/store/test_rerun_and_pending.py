"""Store.transact's rerun rules, idempotent benchmark saves and the pending-run file.

The outages themselves (a stopped Postgres, a locked SQLite) are in
tests/faults/test_store_outages.py; these are the rules around them, on both backends.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budcluster.store import Conflict, Store, StoreUnavailable
from budcluster.store import benchmarks as bench
from budcluster.store.engine import EngineOptions
from budcluster.store.errors import StoreInterrupted
from budcluster.store.models import BenchmarkRequest, BenchmarkRun
from budcluster.store.pending_runs import (
    InvalidPendingFile,
    PendingRun,
    read_pending,
    write_pending,
)
from tests.store.test_benchmarks import _requests, _run, _summaries


def _counts(store: Store) -> tuple[int, int]:
    with store.session() as session:
        runs = session.scalar(select(func.count(BenchmarkRun.id)))
        requests = session.scalar(select(func.count(BenchmarkRequest.request_id)))
    return int(runs or 0), int(requests or 0)


def test_saving_the_same_run_twice_stores_it_once(store: Store) -> None:
    run, summaries, requests = _run(), _summaries(), _requests(300)
    with store.session() as session:
        first = bench.store_run(session, run, summaries, requests)
    with store.session() as session:
        second = bench.store_run(session, run, summaries, requests)
    assert first.created and not second.created
    assert second.run_id == first.run_id
    assert _counts(store) == (1, 300)
    # Another run (another start) is another row.
    with store.session() as session:
        other = bench.store_run(session, _run(name="sweep-2"), summaries, requests)
    assert other.created and other.run_id != first.run_id
    assert _counts(store) == (2, 600)


def test_transact_reruns_an_interrupted_transaction_and_nothing_else(store: Store) -> None:
    calls: list[int] = []

    def cut_off_twice(session: Session) -> int:
        calls.append(1)
        session.add(_marker_run())
        if len(calls) < 3:
            raise StoreInterrupted("simulated: the connection dropped")
        return len(calls)

    assert store.transact(cut_off_twice, action="test") == 3
    # The two cut-off tries were rolled back: one row, from the third.
    assert _counts(store) == (1, 0)

    refusals: list[int] = []

    def refused(_session: Session) -> None:
        refusals.append(1)
        raise Conflict("a duplicate name")

    with pytest.raises(Conflict):
        store.transact(refused, action="test")
    assert refusals == [1], "a permanent error is not retried"


def _marker_run() -> BenchmarkRun:
    run = _run()
    return BenchmarkRun(
        name=run.name,
        endpoint_url=run.url,
        model=run.model,
        api=run.api,
        profile=run.profile,
        status=run.status,
        tool_version=run.tool_version,
        started_at=run.started_at,
        started_monotonic=run.started_monotonic,
        settings={},
    )


def test_transact_with_no_deadline_tries_once_and_names_the_setting(store: Store) -> None:
    once = Store(store.url, EngineOptions(retry_deadline_s=0))
    calls: list[int] = []

    def cut_off(_session: Session) -> None:
        calls.append(1)
        raise StoreInterrupted("simulated: connection refused")

    try:
        with pytest.raises(StoreUnavailable) as caught:
            once.transact(cut_off, action="record something")
    finally:
        once.dispose()
    assert calls == [1]
    assert not isinstance(caught.value, StoreInterrupted)
    message = str(caught.value)
    assert message.startswith("record something: the store stayed unavailable")
    assert "BUDCLUSTER_DATABASE_RETRY_DEADLINE_S=0" in message


@pytest.mark.postgres
def test_a_statement_timeout_is_unavailable_but_not_rerun(throwaway_postgres: object) -> None:
    url = throwaway_postgres.url  # type: ignore[attr-defined]
    store = Store(url, EngineOptions(statement_timeout_s=0.1, retry_deadline_s=30))
    calls: list[int] = []

    def slow(session: Session) -> None:
        calls.append(1)
        session.execute(select(func.pg_sleep(2)))

    try:
        with pytest.raises(StoreUnavailable, match="statement timeout") as caught:
            store.transact(slow, action="sleep")
    finally:
        store.dispose()
    # The same statement would time out again: no rerun, and not an interruption.
    assert calls == [1]
    assert not isinstance(caught.value, StoreInterrupted)


def test_the_pending_file_round_trips_the_run_exactly(tmp_path: Path) -> None:
    pending = PendingRun(
        run=_run(),
        levels=_summaries(),
        records=_requests(200),
        deployment_id=7,
        usd_per_hour=2.5,
        price={"source": "test", "devices": 1},
    )
    path = write_pending(tmp_path / "report" / "store-pending.json.gz", pending)
    assert read_pending(path) == pending
    assert bench.run_key(read_pending(path).run) == bench.run_key(pending.run)
    assert not list((tmp_path / "report").glob(".*part")), "no partial file is left"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not gzip", "not a gzip JSON pending run"),
        (gzip.compress(b'{"format": "other"}'), "not a pending benchmark run"),
        (
            gzip.compress(b'{"format": "budcluster-store-pending-run", "version": 9}'),
            "version 9",
        ),
        (
            gzip.compress(b'{"format": "budcluster-store-pending-run", "version": 1}'),
            "missing or malformed",
        ),
    ],
    # gzip stamps the time into its bytes: ids from the bytes differ between xdist workers.
    ids=["not-gzip", "other-format", "unknown-version", "malformed-run"],
)
def test_a_bad_pending_file_is_refused_naming_it(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "store-pending.json.gz"
    path.write_bytes(content)
    with pytest.raises(InvalidPendingFile, match=expected) as caught:
        read_pending(path)
    assert str(path) in str(caught.value)
