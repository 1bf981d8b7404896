"""Thin Prefect tasks: retries, timeouts, logging and artifacts around ``budcluster`` calls."""

__all__: list[str] = []
