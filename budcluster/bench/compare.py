"""Compare two runs' summaries and flag regressions beyond thresholds.

A regression is a change in the bad direction larger than the metric's threshold:
latencies going up, throughputs going down (relative, in percent), or the error rate going
up (absolute, in percentage points). The whole run is compared, then every level whose
label appears in both runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budcluster.errors import ConfigurationError

HIGHER_IS_WORSE = tuple(
    f"{metric}.{stat}"
    for metric in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
    for stat in ("p50", "p99")
)
LOWER_IS_WORSE = ("request_throughput", "output_token_throughput")
ERROR_RATE = "error_rate"
DEFAULT_THRESHOLD_PCT = 10.0
DEFAULT_ERROR_RATE_POINTS = 1.0


@dataclass(frozen=True, slots=True)
class Change:
    scope: str
    metric: str
    before: float | None
    after: float | None
    change_pct: float | None
    """Relative change in percent; for error_rate, the change in percentage points."""
    threshold: float
    regression: bool


def load_summary(path: Path) -> dict[str, Any]:
    """A run's summary from its report folder or its summary.json."""
    file = path / "summary.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"{path}: no summary.json; pass a report folder or its summary.json"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{file}: not a readable summary JSON: {exc}") from exc
    if not isinstance(data, dict) or "request_throughput" not in data:
        raise ConfigurationError(f"{file}: not a budcluster benchmark summary")
    return data


def parse_thresholds(text: str | None) -> dict[str, float]:
    """``ttft_ms.p99=20%,request_throughput=5`` into {metric: percent}."""
    known = (*HIGHER_IS_WORSE, *LOWER_IS_WORSE, ERROR_RATE)
    result: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value.strip().removesuffix("%"))
        except ValueError:
            number = -1.0
        if not sep or name not in known or number < 0:
            raise ConfigurationError(
                f"--thresholds: cannot use {item!r}; give METRIC=PERCENT with METRIC one of "
                f"{', '.join(known)} (e.g. ttft_ms.p99=20%,request_throughput=5%)"
            )
        result[name] = number
    return result


def _value(level: dict[str, Any], metric: str) -> float | None:
    node: Any = level
    for part in metric.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, int | float) else None


def _compare_level(
    scope: str,
    before: dict[str, Any],
    after: dict[str, Any],
    default_pct: float,
    thresholds: dict[str, float],
) -> list[Change]:
    changes = []
    for metric in (*LOWER_IS_WORSE, *HIGHER_IS_WORSE):
        a, b = _value(before, metric), _value(after, metric)
        limit = thresholds.get(metric, default_pct)
        if a is None or b is None:
            changes.append(Change(scope, metric, a, b, None, limit, False))
            continue
        pct = (0.0 if b == 0 else float("inf")) if a == 0 else (b - a) / abs(a) * 100
        worse = -pct if metric in LOWER_IS_WORSE else pct
        changes.append(Change(scope, metric, a, b, pct, limit, worse > limit))
    a, b = _value(before, ERROR_RATE), _value(after, ERROR_RATE)
    limit = thresholds.get(ERROR_RATE, DEFAULT_ERROR_RATE_POINTS)
    if a is not None and b is not None:
        points = (b - a) * 100
        changes.append(Change(scope, ERROR_RATE, a, b, points, limit, points > limit))
    return changes


def compare_summaries(
    before: dict[str, Any],
    after: dict[str, Any],
    default_pct: float = DEFAULT_THRESHOLD_PCT,
    thresholds: dict[str, float] | None = None,
) -> list[Change]:
    limits = thresholds or {}
    changes = _compare_level("run", before, after, default_pct, limits)
    before_levels = {lv["label"]: lv for lv in before.get("levels", [])}
    after_levels = after.get("levels", [])
    if len(before_levels) > 1 or len(after_levels) > 1:
        for level in after_levels:
            match = before_levels.get(level["label"])
            if match is not None:
                changes += _compare_level(level["label"], match, level, default_pct, limits)
    return changes


def render_changes(changes: list[Change]) -> str:
    lines = [
        f"{'scope':<28} {'metric':<26} {'A':>12} {'B':>12} {'change':>9} {'limit':>7}  verdict"
    ]
    for c in changes:
        unit = "pp" if c.metric == ERROR_RATE else "%"
        change = "n/a" if c.change_pct is None else f"{c.change_pct:+.1f}{unit}"
        a = "n/a" if c.before is None else f"{c.before:.3f}"
        b = "n/a" if c.after is None else f"{c.after:.3f}"
        verdict = "REGRESSION" if c.regression else "ok"
        lines.append(
            f"{c.scope[:28]:<28} {c.metric:<26} {a:>12} {b:>12} {change:>9} "
            f"{c.threshold:>6g}{unit}  {verdict}"
        )
    return "\n".join(lines)
