"""When a task's failure is worth a retry."""

from __future__ import annotations

from typing import Any

from budcluster.errors import PermanentError


def unless_permanent(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry, except when the error says retrying cannot help."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, PermanentError)
