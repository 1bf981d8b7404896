"""Prefect flows. Each one composes tasks and reads like the runbook for its job."""

__all__: list[str] = []
