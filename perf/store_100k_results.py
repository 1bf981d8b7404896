"""Issue #15 row 8c: a benchmark of 100,000 requests saved to the results store.

Saves one benchmark run of ``--requests`` synthetic requests through the real save path,
``budcluster.store.benchmarks.save_run`` (one transaction: run row, summaries, every
request, commit), on a throwaway Postgres database, and prints rows/s against the
50,000 rows/s target. The baseline is measured in the same run: the same save forced onto
SQLAlchemy's executemany path (multi-row INSERT ... VALUES pages, what save_run uses on
SQLite) instead of binary COPY (what it uses on Postgres). SQLite is measured for
comparison. The pieces are perf/store_bulk_insert.py's (which also compares chunk counts
and COPY formats); this script is its pass/fail summary for the reliability table.

Usage:
    PYTHONPATH=$PWD .venv/bin/python perf/store_100k_results.py [--requests 100000]
        [--chunks 0,16] [--repeat 3] [--skip-sqlite]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from store_bulk_insert import TARGET_ROWS_PER_S, measure, throwaway_postgres


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests per run")
    parser.add_argument(
        "--chunks",
        default="0,16",
        help="chunk (token) times stored per request, comma list; 16 is a short streamed "
        "answer, 0 a non-streamed one",
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of this many saves")
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    chunk_counts = [int(c) for c in args.chunks.split(",")]
    started = time.perf_counter()
    # Rows/s are wall-clock: on a shared machine they fall with its load, so it is shown.
    load_before = os.getloadavg()[0]

    with throwaway_postgres(args.postgres_admin_url) as url:
        pg = measure(
            "postgres", url, ["copy", "executemany"], chunk_counts, args.requests, args.repeat
        )
    sqlite: dict[tuple[str, int], float] = {}
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'perf.db'}"
            sqlite = measure(
                "sqlite", url, ["executemany"], chunk_counts, args.requests, args.repeat
            )

    print(f"--- {args.requests:,} requests per save; target {TARGET_ROWS_PER_S:,} rows/s")
    for chunks in chunk_counts:
        copy, many = pg[("copy", chunks)], pg[("executemany", chunks)]
        line = (
            f"chunks/request={chunks:<3d} postgres COPY {copy:,.0f} rows/s "
            f"({copy / TARGET_ROWS_PER_S:.2f}x target); baseline executemany {many:,.0f} "
            f"rows/s ({many / TARGET_ROWS_PER_S:.2f}x target); COPY/executemany "
            f"{copy / many:.2f}x"
        )
        if ("executemany", chunks) in sqlite:
            lite = sqlite[("executemany", chunks)]
            line += f"; sqlite {lite:,.0f} rows/s ({lite / TARGET_ROWS_PER_S:.2f}x target)"
        print(line)
    worst = min(pg[("copy", chunks)] for chunks in chunk_counts)
    verdict = "meets" if worst >= TARGET_ROWS_PER_S else "MISSES"
    print(
        f"headline: postgres save_run, slowest configuration {worst:,.0f} rows/s = "
        f"{worst / TARGET_ROWS_PER_S:.2f}x the {TARGET_ROWS_PER_S:,} rows/s target: {verdict}"
    )
    print(
        f"script wall time {time.perf_counter() - started:.1f}s; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs"
    )
    return 0 if worst >= TARGET_ROWS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
