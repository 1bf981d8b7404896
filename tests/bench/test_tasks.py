"""The Prefect benchmark tasks, called as plain functions with the artifact calls recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tasks.benchmark as bench_tasks
from budcluster.bench.runner import BenchmarkConfig
from budcluster.bench.specs import TokenLengthSpec, parse_profile
from budcluster.bench.testing_server import ServerBehaviour, StreamingServer


def test_run_benchmark_task_writes_report_and_publishes_three_artifacts(
    tmp_path: Path, server_thread: Callable[..., StreamingServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    published: dict[str, dict[str, Any]] = {}
    for name in ("create_markdown_artifact", "create_table_artifact", "create_link_artifact"):
        monkeypatch.setattr(
            bench_tasks, name, lambda name=name, **kw: published.setdefault(name, kw)
        )
    server = server_thread(ServerBehaviour(chunks=3))
    config = BenchmarkConfig(
        url=server.url,
        model="m",
        profile=parse_profile("concurrency:2"),
        max_requests=6,
        input_tokens=TokenLengthSpec("fixed", 2),
        output_tokens=TokenLengthSpec("fixed", 3),
        name="Nightly Run_1",
    )
    summary = bench_tasks.run_benchmark.fn(config, report_dir=str(tmp_path), save_to_store=False)

    folder = Path(summary["report_dir"])
    assert json.loads((folder / "summary.json").read_text())["requests_completed"] == 6
    assert summary["store_run_id"] is None
    markdown = published["create_markdown_artifact"]
    assert markdown["key"] == "bench-nightly-run-1"
    assert "| TTFT |" in markdown["markdown"]
    (row,) = published["create_table_artifact"]["table"]
    assert row["level"] == "concurrency:2" and row["errors"] == 0
    link = published["create_link_artifact"]["link"]
    assert link.startswith("file://") and link.endswith("report.html")


def test_compare_task_raises_on_regression(tmp_path: Path) -> None:
    def summary(folder: Path, rps: float) -> str:
        folder.mkdir()
        stats = {"p50": 1.0, "p99": 1.0}
        data = {"request_throughput": rps, "output_token_throughput": rps, "error_rate": 0.0}
        data.update({k: stats for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")})  # type: ignore[misc]
        (folder / "summary.json").write_text(json.dumps(data))
        return str(folder)

    base, worse = summary(tmp_path / "a", 100.0), summary(tmp_path / "b", 50.0)
    assert "ok" in bench_tasks.compare_runs.fn(base, base)
    with pytest.raises(bench_tasks.BenchmarkRegression, match="request_throughput"):
        bench_tasks.compare_runs.fn(base, worse)
