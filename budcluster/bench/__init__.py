"""Endpoint benchmarks: load profiles, the streaming client, metrics, comparisons, reports.

Nothing is re-exported: callers import the module they need (``runner``, ``client``,
``report``, ...).
"""

__all__: list[str] = []
