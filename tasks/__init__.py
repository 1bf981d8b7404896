"""Thin Prefect tasks: retries, timeouts, logging and artifacts around ``budcluster`` calls."""
