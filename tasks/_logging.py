"""One logger helper for every task module."""

from __future__ import annotations

import logging

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger


def task_logger(name: str) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run logger inside a Prefect run; a module logger when a task runs as ``.fn``."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)
