"""The summary as plain data: what ``summary.json`` holds and ``--json`` prints.

Top-level keys describe the whole run (for a single-level run, that one level); the
``levels`` list holds every level of a sweep with the same keys. ``client_lag`` is None, or
the warning that the client ran too late to time the run (``lag.py``); ``cost`` and
``usd_per_million_output_tokens`` are the run's price and cost (``cost.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from budcluster.bench.records import LevelSummary, RunInfo
from budcluster.bench.report.cost import add_cost
from budcluster.bench.report.lag import level_client_lag
from budcluster.bench.result import BenchmarkResult
from budcluster.pricing import HourlyPrice


def _clean(value: Any) -> Any:
    """NaN and infinities are not JSON; None says "undefined" honestly."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def level_dict(level: LevelSummary) -> dict[str, Any]:
    data: dict[str, Any] = {
        "level": level.level,
        "label": level.label,
        "target_concurrency": level.target_concurrency,
        "target_rate": level.target_rate,
        "duration_s": level.duration_s,
        "requests_completed": level.requests_completed,
        "requests_failed": level.requests_failed,
        "error_rate": level.error_rate,
        "request_throughput": level.request_throughput,
        "output_token_throughput": level.output_token_throughput,
        "total_token_throughput": level.total_token_throughput,
        "goodput": level.goodput,
        "retries": level.retries,
        "errors_by_kind": dict(level.errors_by_kind),
    }
    for key, stats in level.latencies_ms.items():
        data[key] = asdict(stats)
    return _clean(data)  # type: ignore[no-any-return]


def run_dict(run: RunInfo) -> dict[str, Any]:
    return _clean(  # type: ignore[no-any-return]
        {
            "name": run.name,
            "url": run.url,
            "model": run.model,
            "api": run.api,
            "profile": run.profile,
            "tool_version": run.tool_version,
            "status": run.status,
            "deployment_name": run.deployment_name,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "settings": run.settings,
        }
    )


def summary_dict(result: BenchmarkResult, price: HourlyPrice | None = None) -> dict[str, Any]:
    """The run's summary; with ``price`` (the deployment's devices per hour), the cost per
    million output tokens of the whole run and of each level too (``cost.py``)."""
    data = level_dict(result.overall)
    data.pop("level")
    data["run"] = run_dict(result.run)
    data["output_tokens_source"] = result.run.settings.get("output_tokens_source", [])
    data["levels"] = [level_dict(level) for level in result.levels]
    lag = level_client_lag(data)
    data["client_lag"] = _clean(lag.as_dict()) if lag else None
    return add_cost(data, price)
