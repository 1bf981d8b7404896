"""Baselines for scheduled benchmarks: find one per the entry's policy, compare, report.

A ``previous`` baseline comes from the results store (not a report folder on one
worker's disk) so any worker of a team finds the same one. The store keeps the levels of
a run; for a single-level run that level is the whole run, which is what the summary's
top level holds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from budcluster.bench.compare import Change, compare_summaries, load_summary, render_changes
from budcluster.bench.report.summary import level_dict, run_dict
from budcluster.catalogue.schema import BaselineKind, BaselinePolicy
from budcluster.store.benchmarks import StoredRun, list_runs_for_deployment, load_run


def summary_from_stored(run: StoredRun) -> dict[str, Any]:
    """A summary dict (the ``summary.json`` shape) rebuilt from a stored run."""
    levels = [level_dict(level) for level in run.summaries]
    top: dict[str, Any] = dict(levels[0]) if len(levels) == 1 else {}
    top.pop("level", None)
    top["run"] = run_dict(run.info)
    top["run"]["store_run_id"] = run.run_id
    top["levels"] = levels
    return top


def previous_run_id(session: Session, deployment_id: int, profile_label: str) -> int | None:
    """The latest completed run of the deployment measured with the same load profile."""
    runs = [
        header
        for header in list_runs_for_deployment(session, deployment_id)
        if header.info.profile == profile_label and header.info.status == "completed"
    ]
    return runs[-1].run_id if runs else None


def resolve_baseline(
    session: Session, policy: BaselinePolicy, deployment_id: int, profile_label: str
) -> tuple[dict[str, Any] | None, str]:
    """(baseline summary or None, where it came from) for the policy."""
    if policy.kind is BaselineKind.NONE:
        return None, "no baseline (policy none)"
    if policy.kind is BaselineKind.PINNED and policy.report is not None:
        return load_summary(Path(policy.report)), f"pinned report {policy.report}"
    run_id = policy.run_id
    if run_id is None:
        run_id = previous_run_id(session, deployment_id, profile_label)
        if run_id is None:
            return None, f"no earlier completed run with profile {profile_label}"
        return summary_from_stored(load_run(session, run_id)), f"previous run {run_id}"
    return summary_from_stored(load_run(session, run_id)), f"pinned run {run_id}"


@dataclass(frozen=True)
class Comparison:
    baseline: str
    regressions: list[str]
    table: str
    changes: list[dict[str, Any]]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


def compare_with_baseline(
    baseline: dict[str, Any], candidate: dict[str, Any], policy: BaselinePolicy, source: str
) -> Comparison:
    changes: list[Change] = compare_summaries(
        baseline, candidate, policy.threshold_pct, policy.threshold_map()
    )
    return Comparison(
        baseline=source,
        regressions=[f"{c.scope}:{c.metric}" for c in changes if c.regression],
        table=render_changes(changes),
        changes=[asdict(c) for c in changes],
    )


def render_comparison_markdown(entry: str, comparison: Comparison, report_dir: str) -> str:
    verdict = (
        f"**REGRESSION** in {', '.join(comparison.regressions)}"
        if comparison.regressed
        else "no regression"
    )
    return "\n".join(
        [
            f"# Scheduled benchmark of {entry}: {verdict}",
            "",
            f"- baseline: {comparison.baseline}",
            f"- candidate: {report_dir}",
            "",
            "```",
            comparison.table,
            "```",
            "",
        ]
    )


def write_comparison(folder: Path, entry: str, comparison: Comparison) -> Path:
    """``comparison.md`` and ``comparison.json`` next to the candidate's report."""
    (folder / "comparison.json").write_text(
        json.dumps(
            {
                "entry": entry,
                "baseline": comparison.baseline,
                "regressions": comparison.regressions,
                "changes": comparison.changes,
            },
            indent=2,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    path = folder / "comparison.md"
    path.write_text(render_comparison_markdown(entry, comparison, str(folder)), encoding="utf-8")
    return path
