"""The results store of this process, opened once."""

from __future__ import annotations

from functools import lru_cache

from budcluster.store import Store


@lru_cache(maxsize=1)
def results_store() -> Store:
    return Store.from_settings()
