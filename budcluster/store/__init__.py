"""The results store: clusters, nodes, models, transfers, deployments and benchmark results.

SQLAlchemy 2 typed models with Alembic migrations. SQLite is the embedded default;
Postgres is used when ``BUDCLUSTER_DATABASE_URL`` names one. Repository functions take a
:class:`sqlalchemy.orm.Session`; :class:`budcluster.store.engine.Store` hands out sessions
that commit on success and roll back on error.
"""

from budcluster.store.engine import Store, make_engine
from budcluster.store.errors import (
    Conflict,
    IllegalTransition,
    NotFound,
    StoreError,
    StoreInterrupted,
    StoreUnavailable,
)

__all__ = [
    "Conflict",
    "IllegalTransition",
    "NotFound",
    "Store",
    "StoreError",
    "StoreInterrupted",
    "StoreUnavailable",
    "make_engine",
]
