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


class StoreInterrupted(StoreUnavailable):
    """The transaction was cut off by the database going away or being busy for a while.

    The connection dropped or was refused, the server was shutting down, starting up or
    crashed, a serialization or deadlock check aborted it, or (SQLite) another writer held
    the lock past the busy timeout. Nothing of it is committed, unless the commit itself
    went through and only its answer was lost; running the whole transaction again is the
    fix (:meth:`budcluster.store.engine.Store.transact` does, until its deadline).
    """


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
    the connection, timeouts and lock waits are StoreUnavailable, which callers may retry;
    of those, the ones a rerun of the transaction fixes are StoreInterrupted.
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
        unavailable = StoreInterrupted if is_interruption(exc) else StoreUnavailable
        raise unavailable(f"{action}: database unavailable: {_first_line(exc.orig)}") from exc
    except sa_exc.IntegrityError as exc:
        raise Conflict(f"{action}: {_first_line(exc.orig)}") from exc
    except (sa_exc.TimeoutError, sa_exc.InterfaceError) as exc:
        # A pool with no free connection, or a connection the server already closed. The
        # latter is often the rollback after the real error: keep that one's words.
        detail = _first_line(getattr(exc, "orig", None) or exc)
        if isinstance(exc.__context__, StoreError):
            detail = f"{detail}, after {_first_line(exc.__context__)}"
        raise StoreInterrupted(f"{action}: database unavailable: {detail}") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated or is_interruption(exc):
            raise StoreInterrupted(f"{action}: connection lost: {_first_line(exc.orig)}") from exc
        raise


# Postgres SQLSTATEs after which the same transaction, run again, can succeed: class 08
# (connection exception), admin_shutdown / crash_shutdown / cannot_connect_now (a server
# stopping, crashed or starting up), serialization_failure and deadlock_detected.
# Not statement_timeout (57014): the same statement would time out again.
_INTERRUPTION_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01"})
_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")


def is_interruption(error: BaseException) -> bool:
    """Whether ``error`` (SQLAlchemy's or the driver's own) is one a rerun of the whole
    transaction may get past: the server gone, restarting or busy, not the statement."""
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if error.orig is None:
            return False
        error = error.orig
    code = getattr(error, "pgcode", None)
    if code is not None:
        return str(code).startswith("08") or code in _INTERRUPTION_SQLSTATES
    kind = type(error).__name__
    module = type(error).__module__
    if module.startswith("psycopg2"):
        # Without a SQLSTATE the driver lost or never had the connection: refused, closed
        # unexpectedly, connect timeout, "connection already closed".
        return kind in {"OperationalError", "InterfaceError"}
    if module == "sqlite3":
        return kind == "OperationalError" and str(error).startswith(_SQLITE_BUSY)
    return False


_UNDEFINED_TABLE = "42P01"  # Postgres SQLSTATE


def _is_missing_table(exc: sa_exc.DBAPIError) -> bool:
    if getattr(exc.orig, "pgcode", None) == _UNDEFINED_TABLE:
        return True
    return "no such table" in str(exc.orig)


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
