"""Runbook: benchmark every ready catalogue entry and compare it with its baseline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow

from budcluster.bench.specs import parse_profile
from budcluster.catalogue import BaselineKind
from budcluster.job_requests import BenchmarkEndpointRequest
from flows.benchmark_endpoint import benchmark_endpoint
from tasks.benchmark import BenchmarkRegression
from tasks.catalogue import compare_to_baseline, find_baseline, read_catalogue
from tasks.records import find_deployment


@flow(name="scheduled-benchmarks", log_prints=True)
def scheduled_benchmarks(
    catalogue_path: str = "deployments.yaml",
    only: list[str] | None = None,
    window_minutes: int = 60,
) -> dict[str, Any]:
    """Measure each ready entry with its profile; a regression fails the run.

    Entries without a ``schedule`` are measured on every run; entries with one only when
    their cron fired within the last ``window_minutes`` (match it to this deployment's
    own schedule). ``only`` names entries to measure now, schedules ignored.
    A comparison report (comparison.md, comparison.json) lands in each run's report folder.
    """
    catalogue = read_catalogue(catalogue_path)
    now = datetime.now(UTC)
    results: dict[str, Any] = {}
    regressions: list[str] = []
    for entry in catalogue.deployments:
        key = f"{entry.cluster}/{entry.name}"
        if entry.benchmark is None or (only and entry.name not in only):
            continue
        if not only and not entry.is_due(now, window_minutes * 60):
            results[key] = {"status": "not due", "schedule": entry.schedule}
            continue
        state = find_deployment(entry.cluster, entry.name)
        if state is None or state.status != "ready":
            results[key] = {"status": f"skipped: {state.status if state else 'not deployed'}"}
            continue
        profile = entry.benchmark.profile
        policy = entry.benchmark.baseline
        label = parse_profile(profile.profile).label()
        baseline, source = find_baseline(entry.name, policy, state.id, label)
        summary = benchmark_endpoint(
            # deploy-model serves the model under the deployment's name.
            BenchmarkEndpointRequest(
                cluster=entry.cluster, deployment=entry.name, model=entry.name, profile=profile
            )
        )
        # Each run stores its cost per level; `budcluster bench costs` lists them over time.
        outcome: dict[str, Any] = {
            "status": "measured",
            "report_dir": summary["report_dir"],
            "usd_per_million_output_tokens": summary["usd_per_million_output_tokens"],
        }
        if baseline is None:
            outcome["baseline"] = source
            if policy.kind is not BaselineKind.NONE:
                print(f"{key}: {source}; this run becomes the baseline")
        else:
            outcome |= compare_to_baseline(
                entry.name, policy, baseline, source, summary["report_dir"]
            )
            if outcome["regressions"]:
                outcome["status"] = "regression"
                regressions.append(f"{key}: {', '.join(outcome['regressions'])}")
        results[key] = outcome
        print(f"{key}: {outcome['status']} ({outcome.get('baseline')})")
    if regressions:
        raise BenchmarkRegression(
            "regression against the baseline: "
            + "; ".join(regressions)
            + " (comparison.md is in each run's report folder)"
        )
    return results
