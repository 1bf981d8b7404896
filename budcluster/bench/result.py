"""What a benchmark run gives back: :class:`BenchmarkResult`. Pure.

The runner makes one; reports and the results store read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from budcluster.bench.records import LevelSummary, RequestRecord, RunInfo


@dataclass(slots=True)
class BenchmarkResult:
    run: RunInfo
    levels: list[LevelSummary]
    overall: LevelSummary
    """All measured requests of the run as one level (equals ``levels[0]`` for one level)."""
    records: list[RequestRecord]
