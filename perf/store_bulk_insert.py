"""How fast the store saves per-request benchmark samples.

Times ``budcluster.store.benchmarks.save_run`` (one transaction: run row, summaries, all
requests, commit) for N synthetic requests, on a throwaway Postgres database and on a
SQLite file, comparing the bulk paths:

- ``copy``: COPY FROM STDIN on the session's connection (what save_run uses on Postgres)
- ``executemany``: SQLAlchemy executemany (psycopg2 "insertmanyvalues", i.e. multi-row
  INSERT ... VALUES pages like execute_values; what save_run uses on SQLite)

Usage:
    .venv/bin/python perf/store_bulk_insert.py [--rows 100000] [--chunks 0,16,128] [--repeat 3]

Prints one line per backend/strategy/chunks with the best of --repeat rows/s, and the
ratio copy/executemany. Target: >= 50,000 rows/s on Postgres.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from budcluster.bench.records import RequestRecord, RunInfo
from budcluster.store import Store
from budcluster.store import benchmarks as bench
from budcluster.store.migrate import upgrade

TARGET_ROWS_PER_S = 50_000


def synthetic_requests(rows: int, chunks: int, seed: int = 11) -> list[RequestRecord]:
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        start = i * 0.001 + rng.random()
        times = [start + 0.05 + k * 0.011 + rng.random() * 1e-3 for k in range(chunks)]
        failed = i % 50 == 49
        records.append(
            RequestRecord(
                request_id=i,
                level=i // 10_000,
                scheduled_s=start,
                sent_s=start + rng.random() * 1e-4,
                first_token_s=None if failed or not times else times[0],
                end_s=None if failed else start + 1.0 + rng.random(),
                prompt_tokens=rng.randint(64, 4096),
                output_tokens=None if failed else max(chunks, 1),
                chunk_times_s=[] if failed else times,
                error_kind="timeout" if failed else None,
                error="read timed out after 60.0 s" if failed else None,
            )
        )
    return records


def run_info() -> RunInfo:
    return RunInfo(
        name="perf",
        url="http://127.0.0.1:8000/v1",
        model="perf-model",
        api="openai-completions",
        profile="concurrency:64",
        tool_version="perf",
        started_at=datetime.now(UTC),
        started_monotonic=time.monotonic(),
    )


def time_save(store: Store, records: list[RequestRecord]) -> float:
    started = time.perf_counter()
    with store.session() as session:
        bench.save_run(session, run_info(), [], records)
    return time.perf_counter() - started


@contextmanager
def forced_strategy(name: str) -> Iterator[None]:
    """Make save_run use one bulk path regardless of the backend."""
    original: Callable[..., Any] = bench._copy_requests
    if name == "executemany":
        bench._copy_requests = bench._executemany_requests  # type: ignore[assignment]
    try:
        yield
    finally:
        bench._copy_requests = original  # type: ignore[assignment]


@contextmanager
def throwaway_postgres(admin_url: str) -> Iterator[str]:
    name = f"budcluster_perf_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def measure(
    label: str, url: str, strategies: list[str], chunk_counts: list[int], rows: int, repeat: int
) -> dict[tuple[str, int], float]:
    upgrade(url)
    store = Store(url)
    results: dict[tuple[str, int], float] = {}
    try:
        for chunks in chunk_counts:
            records = synthetic_requests(rows, chunks)
            for strategy in strategies:
                with forced_strategy(strategy):
                    best = min(time_save(store, records) for _ in range(repeat))
                rate = rows / best
                results[(strategy, chunks)] = rate
                print(
                    f"{label:8s} {strategy:12s} chunks/request={chunks:<4d} rows={rows} "
                    f"best={best:.3f}s  {rate:,.0f} rows/s",
                    flush=True,
                )
    finally:
        store.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunks", default="0,16,128", help="chunk times per request, comma list")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    chunk_counts = [int(c) for c in args.chunks.split(",")]

    with throwaway_postgres(args.postgres_admin_url) as url:
        pg = measure("postgres", url, ["copy", "executemany"], chunk_counts, args.rows, args.repeat)
    for chunks in chunk_counts:
        ratio = pg[("copy", chunks)] / pg[("executemany", chunks)]
        print(f"postgres chunks/request={chunks}: copy / executemany = {ratio:.2f}x")
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'perf.db'}"
            measure("sqlite", url, ["executemany"], chunk_counts, args.rows, args.repeat)

    headline = pg[("copy", chunk_counts[0])]
    verdict = "meets" if headline >= TARGET_ROWS_PER_S else "MISSES"
    print(
        f"headline: postgres COPY {headline:,.0f} rows/s for {args.rows} samples "
        f"(chunks/request={chunk_counts[0]}) {verdict} the {TARGET_ROWS_PER_S:,} rows/s target"
    )
    return 0 if headline >= TARGET_ROWS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
