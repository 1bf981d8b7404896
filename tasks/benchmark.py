"""Prefect tasks around the benchmark engine (``budcluster.bench``).

``run_benchmark`` measures an endpoint, writes the report folder, saves the rows to the
results store and publishes three artifacts: a markdown summary, a per-level table and a
link to the HTML report. ``compare_runs`` fails the task on a regression.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from budcluster.bench.compare import compare_summaries, load_summary, render_changes
from budcluster.bench.config import BenchmarkConfig
from budcluster.bench.report import summary_dict, write_report
from budcluster.bench.report.writers import render_markdown
from budcluster.bench.runner import run_benchmark as run_engine
from budcluster.errors import PermanentError
from budcluster.pricing import HourlyPrice
from budcluster.settings import get_settings
from budcluster.targets.ref import ClusterRef
from tasks._logging import task_logger
from tasks.targets import endpoint_access


def artifact_key(name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "bench"


def level_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per load level, the figures a reader compares first."""
    return [
        {
            "level": level["label"],
            "req/s": round(level["request_throughput"], 2),
            "output tok/s": round(level["output_token_throughput"], 1),
            "TTFT p50 ms": round(level["ttft_ms"]["p50"], 2),
            "TTFT p99 ms": round(level["ttft_ms"]["p99"], 2),
            "TPOT p50 ms": round(level["tpot_ms"]["p50"], 3),
            "ITL p99 ms": round(level["itl_ms"]["p99"], 3),
            "E2E p99 ms": round(level["e2e_ms"]["p99"], 1),
            "$ per 1M output tokens": _rounded(level.get("usd_per_million_output_tokens")),
            "errors": level["requests_failed"],
        }
        for level in summary["levels"]
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def publish_artifacts(summary: dict[str, Any], folder: Path) -> None:
    key = artifact_key(f"bench-{summary['run']['name']}")
    create_markdown_artifact(
        markdown=render_markdown(summary), key=key, description="Benchmark summary"
    )
    create_table_artifact(
        table=level_table(summary), key=f"{key}-levels", description="Per-level figures"
    )
    create_link_artifact(
        link=(folder / "report.html").resolve().as_uri(),
        link_text=f"HTML report: {folder.name}",
        key=f"{key}-report",
        description="Self-contained report with plots",
    )


# A benchmark is not idempotent in time or load: no automatic retry, a person decides.
@task(retries=0, timeout_seconds=6 * 3600, task_run_name="benchmark-{config.name}")
def run_benchmark(
    config: BenchmarkConfig,
    report_dir: str | None = None,
    save_to_store: bool = True,
    deployment_id: int | None = None,
    price: HourlyPrice | None = None,
    cluster: ClusterRef | str | None = None,
) -> dict[str, Any]:
    """Measure ``config.url``; returns the summary with ``report_dir`` and ``store_run_id``.

    ``price`` (the deployment's devices per hour) adds the cost per million output tokens
    at each level to the report, the store and the summary. ``cluster``: the cluster the
    endpoint runs on (resolved or by name); a Kubernetes Service's in-cluster URL is then
    reached through the API server's service proxy with the cluster's credentials (opened
    here, for this task only), and the report says so.
    """
    log = task_logger(__name__)
    access = endpoint_access(cluster, config.url)
    if access is not None:
        config = dataclasses.replace(config, access=access)
    log.info(
        "benchmarking %s (%s) with %s%s",
        config.url,
        config.model,
        config.profile.label(),
        f", {access.via}" if access is not None else "",
    )
    result = run_engine(config)
    folder = write_report(
        result, Path(report_dir) if report_dir else get_settings().reports_dir, price
    )
    run_id = None
    if save_to_store:
        from budcluster.store import Store
        from budcluster.store.benchmark_results import save_result

        store = Store.from_settings()
        try:
            # A store still away after its retry deadline: the run is kept in the report
            # folder and the task fails naming the `budcluster bench import` to run.
            run_id = save_result(result, store, deployment_id, price, pending_dir=folder)
        finally:
            store.dispose()
    summary = summary_dict(result, price)
    publish_artifacts(summary, folder)
    log.info(
        "%s: %.2f req/s, TTFT p50 %.1f ms, %d failed; report %s",
        config.name,
        summary["request_throughput"],
        summary["ttft_ms"]["p50"],
        summary["requests_failed"],
        folder,
    )
    summary["report_dir"] = str(folder)
    summary["store_run_id"] = run_id
    return summary


class BenchmarkRegression(PermanentError):
    """The candidate run is worse than the baseline beyond the thresholds."""


@task(retries=0, timeout_seconds=60, task_run_name="compare-benchmarks")
def compare_runs(
    baseline: str,
    candidate: str,
    threshold_pct: float = 10.0,
    thresholds: dict[str, float] | None = None,
) -> str:
    """Compare two report folders; raises :class:`BenchmarkRegression` on a regression."""
    changes = compare_summaries(
        load_summary(Path(baseline)), load_summary(Path(candidate)), threshold_pct, thresholds
    )
    table = render_changes(changes)
    regressions = [c for c in changes if c.regression]
    if regressions:
        names = ", ".join(f"{c.scope}:{c.metric}" for c in regressions)
        raise BenchmarkRegression(f"{len(regressions)} regression(s): {names}\n{table}")
    return table
