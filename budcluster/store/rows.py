"""The two steps every store module repeats: read one row by its key, write one new row."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from budcluster.store.errors import NotFound
from budcluster.store.models import Base

RowT = TypeVar("RowT", bound=Base)


def get_or_not_found(
    session: Session,
    model: type[RowT],
    *,
    what: str,
    fix: str | None = None,
    for_update: bool = False,
    **key: object,
) -> RowT:
    """The row of ``model`` whose attributes equal ``key``; NotFound naming it if none does.

    ``what`` names the row for people ("cluster", "benchmark run"); ``fix`` says what to
    do about a missing one. A lookup by primary key goes through ``session.get``, so a row
    this session already holds costs no query. ``for_update`` locks the row (Postgres
    ``SELECT ... FOR UPDATE``) so two workers cannot both change it from the same state.
    """
    if not key:
        raise TypeError(f"get_or_not_found({model.__name__}) needs at least one key attribute")
    identity = None if for_update else _primary_key_identity(model, key)
    row: RowT | None
    if identity is not None:
        row = session.get(model, identity)
    else:
        query = select(model).filter_by(**key)
        if for_update:
            query = query.with_for_update()
        row = session.scalar(query)
    if row is None:
        raise NotFound(not_found_message(what, key, fix))
    return row


def _primary_key_identity(model: type[Base], key: dict[str, object]) -> object | None:
    """What ``session.get`` takes when ``key`` is exactly the primary key, else None."""
    mapper = inspect(model)
    names = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    if set(names) != set(key):
        return None
    return key[names[0]] if len(names) == 1 else tuple(key[name] for name in names)


def not_found_message(what: str, key: dict[str, object], fix: str | None = None) -> str:
    """``no cluster named 'lab'; <fix>``: the thing, the key it was looked up by, the fix."""
    message = f"no {what} {_describe_key(key)}"
    return f"{message}; {fix}" if fix else message


def _describe_key(key: dict[str, object]) -> str:
    # The two keys nearly every lookup uses read as prose; the messages people and tests
    # already know ("no cluster named 'lab'", "no transfer with id 3") keep their wording.
    if len(key) == 1:
        ((attribute, value),) = key.items()
        if attribute == "name":
            return f"named {value!r}"
        if attribute == "id":
            return f"with id {value!r}"
    return "with " + ", ".join(f"{attribute}={_shown(value)!r}" for attribute, value in key.items())


def _shown(value: object) -> object:
    # An enum's repr (<ClusterStatus.READY: 'ready'>) is Python's, not what the column holds.
    return value.value if isinstance(value, Enum) else value


def add_and_flush(session: Session, row: RowT) -> RowT:
    """Add ``row`` and flush it so its id and server defaults are set; returns the row.

    SQLAlchemy's errors pass through: callers wrap the call in
    :func:`budcluster.store.errors.translated_errors` with the action it belongs to.
    """
    session.add(row)
    session.flush()
    return row
