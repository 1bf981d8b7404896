"""Checks on values handed to the store, with errors that name the field and the fix."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from budcluster.errors import PermanentError

E = TypeVar("E", bound=StrEnum)


class InvalidValue(PermanentError):
    """A value given to the store is not acceptable; the message names the field."""


def parse_choice(enum_class: type[E], value: str, field: str) -> E:
    try:
        return enum_class(value)
    except ValueError as exc:
        valid = ", ".join(member.value for member in enum_class)
        raise InvalidValue(f"{field}={value!r} is not valid; use one of: {valid}") from exc


def require_aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(
            f"{field}={value.isoformat()} has no time zone; pass an aware datetime "
            "such as datetime.now(UTC)"
        )
    return value


def require_non_negative(value: int | float | None, field: str) -> None:
    if value is not None and value < 0:
        raise InvalidValue(f"{field}={value} is negative; it counts something, use 0 or more")


def require_text(value: str, field: str, max_length: int) -> str:
    stripped = value.strip()
    if not stripped:
        raise InvalidValue(f"{field} is empty; give a non-blank value")
    if len(stripped) > max_length:
        raise InvalidValue(f"{field} is {len(stripped)} characters long; the limit is {max_length}")
    return stripped
