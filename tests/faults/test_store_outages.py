"""The results store goes away mid-flow: a Postgres of the test's own is stopped, crashed
and restarted during a benchmark save and during a rollout's bookkeeping, and a SQLite
file is held locked by another writer.

Promises checked, with exact row counts: a transaction the database cut off is rerun
whole (``Store.transact``) and lands once, no sample lost or duplicated; past
``BUDCLUSTER_DATABASE_RETRY_DEADLINE_S`` the benchmark's run is kept in
``store-pending.json.gz`` and nothing half-written is left in the database, and
``budcluster bench import`` stores it exactly once; a rollout whose store stayed away is
left in a state the next run's repair undoes. Each test prints what it measured.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import tasks.records as records
import tasks.rollout as rollout
from budcluster.bench.records import LatencyStats, LevelSummary, RequestRecord, RunInfo
from budcluster.bench.result import BenchmarkResult
from budcluster.lifecycle import DeploymentStatus
from budcluster.settings import get_settings
from budcluster.store import Store, StoreUnavailable
from budcluster.store import benchmarks as bench_rows
from budcluster.store import deployments as deployment_rows
from budcluster.store.benchmark_results import RunKeptInFile, save_result
from budcluster.store.clusters import register_cluster
from budcluster.store.engine import EngineOptions
from budcluster.store.errors import StoreInterrupted
from budcluster.store.migrate import upgrade
from budcluster.store.models import (
    Base,
    BenchmarkRequest,
    BenchmarkRun,
    BenchmarkSummary,
    DeploymentRevision,
    RolloutAttempt,
    RolloutAttemptState,
)
from budcluster.store.models_catalog import save_model
from budcluster.targets.base import RuntimeState, RuntimeStatus
from budcluster.targets.ref import ClusterRef
from tasks._store import results_store
from tasks.recovery import begin_rollout_attempt, repair_interrupted_rollout

# The tasks are imported at the top, not in the test: Prefect configures logging when it
# is first imported, which drops the handler caplog put in place for a running test.
from tests.support.private_postgres import PrivatePostgres, private_postgres

PROJECT = Path(__file__).resolve().parents[2]
DEADLINE_SETTING = "BUDCLUSTER_DATABASE_RETRY_DEADLINE_S"
SAMPLES = 20_000
STARTED = datetime(2026, 12, 6, 21, 0, 0, 125000, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        upgrade(server.url)
        yield server


@pytest.fixture
def pg(postgres: PrivatePostgres) -> PrivatePostgres:
    """The module's server, running, with empty tables."""
    if not postgres.is_running():
        postgres.start()
    store = Store(postgres.url)
    try:
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        with store.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        store.dispose()
    return postgres


def _store(url: str, deadline_s: float, **options: Any) -> Store:
    return Store(url, EngineOptions(connect_timeout_s=2, retry_deadline_s=deadline_s, **options))


def _count(store: Store, column: Any) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count(column))) or 0)


def _counts(store: Store) -> tuple[int, int, int]:
    return (
        _count(store, BenchmarkRun.id),
        _count(store, BenchmarkRequest.request_id),
        _count(store, BenchmarkSummary.id),
    )


class FaultMidway(list[RequestRecord]):
    """The run's requests; the first pass over them calls ``fault`` at row ``at``, that is
    while ``save_run`` is streaming them to the database (later passes, the rerun's and
    the pending file's, do not)."""

    def __init__(self, records: list[RequestRecord], at: int, fault: Callable[[], None]) -> None:
        super().__init__(records)
        self.at = at
        self.fault: Callable[[], None] | None = fault

    def __iter__(self) -> Iterator[RequestRecord]:
        fault, self.fault = self.fault, None
        for index, record in enumerate(super().__iter__()):
            if fault is not None and index == self.at:
                fault()
            yield record


def _result(records: list[RequestRecord], name: str = "outage") -> BenchmarkResult:
    stats = LatencyStats(
        mean=12.0, std=1.5, min=9.0, p50=11.0, p90=14.0, p95=15.0, p99=18.0, max=25.0, count=10
    )
    level = LevelSummary(
        level=0,
        label="concurrency:8",
        target_concurrency=8,
        target_rate=None,
        duration_s=60.0,
        requests_completed=len(records),
        requests_failed=0,
        request_throughput=len(records) / 60,
        output_token_throughput=1000.0,
        total_token_throughput=3000.0,
        goodput=None,
        error_rate=0.0,
        latencies_ms={"ttft_ms": stats, "e2e_ms": stats},
    )
    run = RunInfo(
        name=name,
        url="http://10.0.0.7:8000",
        model="demo-tiny",
        api="completions",
        profile="concurrency:8",
        tool_version="budcluster-bench test",
        started_at=STARTED,
        started_monotonic=5123.456789,
        finished_at=STARTED + timedelta(minutes=1),
        status="completed",
        settings={"seed": 3},
    )
    return BenchmarkResult(run=run, levels=[level], overall=level, records=records)


def _requests(count: int) -> list[RequestRecord]:
    return [
        RequestRecord(
            request_id=i,
            level=0,
            scheduled_s=i * 0.003,
            sent_s=i * 0.003 + 0.0001,
            first_token_s=i * 0.003 + 0.02,
            end_s=i * 0.003 + 0.3,
            prompt_tokens=128,
            output_tokens=16,
            chunk_times_s=[i * 0.003 + 0.02 + k * 0.01 for k in range(4)],
        )
        for i in range(count)
    ]


def _tries_cut_off(caplog: pytest.LogCaptureFixture) -> int:
    return sum("cut off" in record.getMessage() for record in caplog.records)


# --- (a) Postgres stopped and restarted in the middle of saving a large run -------------


def test_postgres_restart_mid_save_stores_every_sample_once(
    pg: PrivatePostgres, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small COPY batches: two have gone to the server when it stops, a third is on its way.
    monkeypatch.setattr(bench_rows, "COPY_BATCH_ROWS", 5_000)
    caplog.set_level(logging.WARNING, logger="budcluster.store.engine")
    events: dict[str, float] = {}
    restarter = threading.Timer(1.0, lambda: (pg.start(), events.update(up=time.monotonic())))

    def stop_then_restart_later() -> None:
        pg.stop("fast")
        events["down"] = time.monotonic()
        restarter.start()

    records = FaultMidway(_requests(SAMPLES), at=12_000, fault=stop_then_restart_later)
    store = _store(pg.url, deadline_s=30)
    try:
        run_id = save_result(_result(records), store)
        saved = time.monotonic()
        assert "down" in events, "the fault never fired: the save did not stream the rows"
        restarter.join()
        assert _counts(store) == (1, SAMPLES, 1)
        with store.session() as session:
            ids = session.scalars(
                select(BenchmarkRequest.request_id).where(BenchmarkRequest.run_id == run_id)
            ).all()
        assert sorted(ids) == list(range(SAMPLES))
    finally:
        store.dispose()
    tries = _tries_cut_off(caplog)
    assert tries >= 2, "the server was down for a second: more than one try was cut off"
    print(
        f"\n[a] {SAMPLES} rows: server down {events['up'] - events['down']:.2f} s, "
        f"{tries} tries cut off, stored {saved - events['down']:.2f} s after the stop"
    )


def test_commit_whose_answer_is_lost_is_not_stored_twice(
    pg: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    """The commit lands but the answer never arrives: simulated by cutting the transaction
    off right after the server committed it. The rerun finds the run by its key."""
    from sqlalchemy import event

    caplog.set_level(logging.WARNING, logger="budcluster.store.engine")
    store = _store(pg.url, deadline_s=10)
    lost = {"answers": 0}

    def lose_the_first_answer(_session: Any) -> None:
        if lost["answers"] == 0:
            lost["answers"] += 1
            raise StoreInterrupted("simulated: the connection dropped before COMMIT's answer")

    event.listen(store.session_factory, "after_commit", lose_the_first_answer)
    try:
        first = save_result(_result(_requests(2_000)), store)
        assert lost["answers"] == 1
        assert _tries_cut_off(caplog) == 1
        assert _counts(store) == (1, 2_000, 1)
        again = save_result(_result(_requests(2_000)), store)
        assert again == first
        assert _counts(store) == (1, 2_000, 1)
    finally:
        store.dispose()


# --- (b) Postgres down past the deadline: the pending file and bench import ---------------


def _bench_import(path: Path, url: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("budcluster")
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run(
        [str(cli), "bench", "import", str(path), "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_postgres_down_past_deadline_keeps_the_run_for_bench_import(
    pg: PrivatePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_rows, "COPY_BATCH_ROWS", 5_000)
    deadline_s = 1.5
    stopped: list[float] = []

    def stop() -> None:
        pg.stop("fast")
        stopped.append(time.monotonic())

    records = FaultMidway(_requests(SAMPLES), at=12_000, fault=stop)
    store = _store(pg.url, deadline_s=deadline_s)
    try:
        with pytest.raises(RunKeptInFile) as caught:
            save_result(_result(records), store, pending_dir=tmp_path / "report")
        gave_up_s = time.monotonic() - stopped[0]
        pending = caught.value.path
        message = str(caught.value)
        assert pending == tmp_path / "report" / "store-pending.json.gz"
        assert pending.is_file()
        assert f"{DEADLINE_SETTING}={deadline_s:g}" in message
        assert f"budcluster bench import {pending}" in message
        assert isinstance(caught.value, StoreUnavailable)

        pg.start()
        assert _counts(store) == (0, 0, 0), "a cut-off save left rows behind"
    finally:
        store.dispose()

    first = _bench_import(pending, pg.url)
    assert first.returncode == 0, first.stderr
    assert f"{SAMPLES} requests" in first.stdout
    check = _store(pg.url, deadline_s=0)
    try:
        assert _counts(check) == (1, SAMPLES, 1)
        second = _bench_import(pending, pg.url)
        assert second.returncode == 0, second.stderr
        assert "already stored; nothing written" in second.stdout
        assert _counts(check) == (1, SAMPLES, 1)
    finally:
        check.dispose()
    print(
        f"\n[b] file written {gave_up_s:.2f} s after the stop mid-save (deadline {deadline_s} s); "
        f"pending file {pending.stat().st_size} B for {SAMPLES} requests; "
        "import stored 1 run once"
    )


# --- (c) a rollout's bookkeeping while Postgres restarts and crashes ---------------------


@pytest.fixture
def rollout_store(
    pg: PrivatePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[float], None]]:
    """The tasks' store is the private server; returns a setter for the retry deadline."""
    monkeypatch.setenv("BUDCLUSTER_DATABASE_URL", pg.url)
    monkeypatch.setenv("BUDCLUSTER_DATABASE_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("BUDCLUSTER_SECRETS_DIR", str(tmp_path / "secrets"))

    def set_deadline(seconds: float) -> None:
        monkeypatch.setenv(DEADLINE_SETTING, str(seconds))
        get_settings.cache_clear()
        if results_store.cache_info().currsize:
            results_store().dispose()
        results_store.cache_clear()

    set_deadline(30)
    yield set_deadline
    results_store().dispose()
    results_store.cache_clear()
    get_settings.cache_clear()


def _rendered(replicas: int) -> RuntimeStatus:
    manifest = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: chat\n"
        f"spec:\n  replicas: {replicas}\n"
    )
    return RuntimeStatus(RuntimeState.RUNNING, "http://chat:8000", detail={"manifests": manifest})


def _rollout_state(store: Store, deployment_id: int) -> dict[str, Any]:
    with store.session() as session:
        deployment = deployment_rows.get_deployment(session, deployment_id)
        attempts = session.scalars(select(RolloutAttempt).order_by(RolloutAttempt.id)).all()
        return {
            "status": deployment.status,
            "attempts": [a.state for a in attempts],
            "revisions": session.scalar(select(func.count(DeploymentRevision.id))),
            "history": [
                (change.from_status, change.to_status)
                for change in deployment_rows.status_history(session, deployment_id)
            ],
        }


def test_rollout_bookkeeping_survives_restarts_and_a_rerun_repairs_it(
    pg: PrivatePostgres,
    rollout_store: Callable[[float], None],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Driven at the task level (each task's ``.fn``, as the flow calls them, in the flow's
    order); the cluster's undo is a recorder, since what is under test is the store."""
    caplog.set_level(logging.WARNING, logger="budcluster.store.engine")
    monkeypatch.setattr(records, "create_markdown_artifact", lambda **_: None)
    undone: list[list[dict[str, Any]] | None] = []

    class UndoRecorder:
        @staticmethod
        def fn(_cluster: ClusterRef, _deployment: str, previous: Any) -> RuntimeStatus:
            undone.append(previous)
            return RuntimeStatus(RuntimeState.RUNNING)

    monkeypatch.setattr(rollout, "undo_rollout", UndoRecorder)

    setup = Store(pg.url)
    with setup.session() as session:
        register_cluster(session, name="lab", kind="kubernetes", provider="onprem")
        model_id = save_model(
            session, name="demo", source_uri="file:///models/demo", format="gguf", files=[]
        ).id

    def outage(mode: str, down_s: float) -> threading.Timer:
        pg.stop(mode)
        restarter = threading.Timer(down_s, pg.start)
        restarter.start()
        return restarter

    # First rollout: the server stops before the attempt is recorded and crashes
    # (immediate) before the revision is, each time back within a second.
    deployment_id, redeploy = records.open_deployment.fn("lab", "chat", model_id, "h1", "plan")
    assert not redeploy
    records.move_deployment.fn(deployment_id, "deploying", "starting")
    restart = outage("fast", 0.8)
    attempt_id = begin_rollout_attempt.fn(deployment_id, "h1", None)
    restart.join()
    restart = outage("immediate", 0.8)
    assert records.record_revision.fn(deployment_id, _rendered(1), "h1", attempt_id) == 1
    restart.join()
    records.move_deployment.fn(deployment_id, "ready", "serving")
    first = _rollout_state(setup, deployment_id)
    assert first["status"] is DeploymentStatus.READY
    assert first["attempts"] == [RolloutAttemptState.FINISHED]
    assert first["revisions"] == 1
    assert first["history"] == [
        (None, "pending"),
        ("pending", "planning"),
        ("planning", "deploying"),
        ("deploying", "ready"),
    ]
    tries = _tries_cut_off(caplog)
    assert tries >= 2

    # Second rollout: the server stops after the runtime started and stays down past the
    # deadline while the revision is recorded. Nothing is half-recorded: no revision 2,
    # the attempt still started, the deployment still deploying.
    deployment_id, redeploy = records.open_deployment.fn("lab", "chat", model_id, "h2", "plan")
    assert redeploy
    attempt_id = begin_rollout_attempt.fn(deployment_id, "h2", [{"kind": "Deployment"}])
    rollout_store(1.0)
    pg.stop("fast")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=DEADLINE_SETTING):
        records.record_revision.fn(deployment_id, _rendered(2), "h2", attempt_id)
    gave_up_s = time.monotonic() - started
    pg.start()
    rollout_store(30)
    left = _rollout_state(setup, deployment_id)
    assert left["status"] is DeploymentStatus.DEPLOYING
    assert left["attempts"] == [RolloutAttemptState.FINISHED, RolloutAttemptState.STARTED]
    assert left["revisions"] == 1

    # The next run repairs it: the started attempt is undone (back to revision 1's
    # manifests, as recorded), the deployment marked failed, and it can deploy again.
    cluster = ClusterRef(name="lab", kind="kubernetes", credentials_block="lab")
    reason = repair_interrupted_rollout.fn(cluster, "chat")
    assert reason is not None and "restored the previous revision" in reason
    assert undone == [[{"kind": "Deployment"}]]
    repaired = _rollout_state(setup, deployment_id)
    assert repaired["status"] is DeploymentStatus.FAILED
    assert repaired["attempts"] == [RolloutAttemptState.FINISHED, RolloutAttemptState.UNDONE]
    assert repaired["revisions"] == 1
    assert repair_interrupted_rollout.fn(cluster, "chat") is None
    assert records.open_deployment.fn("lab", "chat", model_id, "h2", "retry") == (
        deployment_id,
        False,
    )
    history = _rollout_state(setup, deployment_id)["history"]
    setup.dispose()
    # Every move once: no duplicate from a rerun transaction.
    assert history == [
        (None, "pending"),
        ("pending", "planning"),
        ("planning", "deploying"),
        ("deploying", "ready"),
        ("ready", "deploying"),
        ("deploying", "failed"),
        ("failed", "planning"),
    ]
    print(
        f"\n[c] two restarts during bookkeeping: {tries} tries cut off, state consistent; "
        f"down past a 1 s deadline: gave up after {gave_up_s:.2f} s, repaired by the rerun"
    )


# --- (d) SQLite: another writer holds the lock ------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return url


def _hold_write_lock(path: Path, seconds: float, held: threading.Event) -> threading.Thread:
    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(seconds)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(5), "the other writer never took the lock"
    return thread


def test_sqlite_write_waits_out_a_lock_held_past_the_busy_timeout(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="budcluster.store.engine")
    store = _store(sqlite_url, deadline_s=10, sqlite_busy_timeout_s=0.2)
    held = threading.Event()
    try:
        holder = _hold_write_lock(tmp_path / "store.db", 1.0, held)
        started = time.monotonic()
        run_id = save_result(_result(_requests(500)), store)
        landed_s = time.monotonic() - started
        holder.join()
        tries = _tries_cut_off(caplog)
        assert tries >= 2, "the lock outlasted the busy timeout: the write was retried"
        assert _counts(store) == (1, 500, 1)
        with store.session() as session:
            assert bench_rows.load_run(session, run_id).info.name == "outage"
    finally:
        store.dispose()
    print(
        f"\n[d] lock held 1.0 s, busy timeout 0.2 s: {tries} tries, landed after {landed_s:.2f} s"
    )


def test_sqlite_lock_held_past_the_deadline_names_the_setting(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = _store(sqlite_url, deadline_s=0.6, sqlite_busy_timeout_s=0.2)
    held = threading.Event()
    try:
        holder = _hold_write_lock(tmp_path / "store.db", 2.5, held)
        with pytest.raises(StoreUnavailable) as caught:
            save_result(_result(_requests(500)), store)
        message = str(caught.value)
        assert f"{DEADLINE_SETTING}=0.6" in message
        assert "database is locked" in message
        assert not isinstance(caught.value, StoreInterrupted)
        holder.join()
        assert _counts(store) == (0, 0, 0)
    finally:
        store.dispose()
