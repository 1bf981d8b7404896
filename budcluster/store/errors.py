"""Errors of the results store. Each one chains the SQLAlchemy error it replaces."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from budcluster import lifecycle
from budcluster.errors import BudClusterError, PermanentError, TemporaryError


class StoreError(BudClusterError):
    """Base class of the store's errors."""


class StoreUnavailable(StoreError, TemporaryError):
    """The database could not be reached, timed out or was busy; retrying may help."""


class NotFound(StoreError, PermanentError):
    """The row asked for does not exist."""


class Conflict(StoreError, PermanentError):
    """The write breaks a uniqueness or reference rule (a duplicate name, a missing parent)."""


class SchemaMissing(StoreError, PermanentError):
    """The store's tables are missing or out of date: run ``budcluster db upgrade``."""


class IllegalTransition(StoreError, lifecycle.IllegalTransition):
    """A deployment status change that :mod:`budcluster.lifecycle` does not allow."""


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Turn SQLAlchemy errors raised by ``action`` into store errors, keeping the cause.

    IntegrityError is a Conflict (retrying the same write fails the same way); errors of
    the connection, timeouts and lock waits are StoreUnavailable, which callers may retry.
    """
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.ProgrammingError) as exc:
        if _is_missing_table(exc):
            raise SchemaMissing(
                f"{action}: the store has no schema ({_first_line(exc.orig)}); "
                "run `budcluster db upgrade` against this database first"
            ) from exc
        if isinstance(exc, sa_exc.ProgrammingError):
            raise
        raise StoreUnavailable(f"{action}: database unavailable: {_first_line(exc.orig)}") from exc
    except sa_exc.IntegrityError as exc:
        raise Conflict(f"{action}: {_first_line(exc.orig)}") from exc
    except (sa_exc.TimeoutError, sa_exc.InterfaceError) as exc:
        detail = _first_line(getattr(exc, "orig", None) or exc)
        raise StoreUnavailable(f"{action}: database unavailable: {detail}") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"{action}: connection lost: {_first_line(exc.orig)}") from exc
        raise


_UNDEFINED_TABLE = "42P01"  # Postgres SQLSTATE


def _is_missing_table(exc: sa_exc.DBAPIError) -> bool:
    if getattr(exc.orig, "pgcode", None) == _UNDEFINED_TABLE:
        return True
    return "no such table" in str(exc.orig)


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
