"""The results store of this process, opened once."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from sqlalchemy.orm import Session

from budcluster.store import Store

T = TypeVar("T")


@lru_cache(maxsize=1)
def results_store() -> Store:
    return Store.from_settings()


def transact(work: Callable[[Session], T], action: str) -> T:
    """``work`` in one transaction of the results store, rerun whole while the database is
    stopped, restarting or locked (until ``BUDCLUSTER_DATABASE_RETRY_DEADLINE_S``)."""
    return results_store().transact(work, action=action)
