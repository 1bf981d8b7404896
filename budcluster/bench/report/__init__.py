"""Benchmark reports: summary.json, requests.csv, report.md and a self-contained report.html."""

from budcluster.bench.report.summary import summary_dict
from budcluster.bench.report.writers import write_report

__all__ = ["summary_dict", "write_report"]
