"""Column types that behave the same on SQLite and Postgres."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, LargeBinary, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on Postgres (indexable, compact); JSON text on SQLite.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends.

    SQLite has no time zones and hands back naive values; Postgres ``timestamptz`` hands
    back the session's zone. Both are normalised to UTC, and naive input is refused
    because its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"timestamp {value.isoformat()} has no time zone; pass an aware datetime "
                "such as datetime.now(UTC)"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # Stored as naive UTC text so that string order is time order.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def pack_float64(values: list[float]) -> bytes:
    """``values`` as little-endian IEEE 754 doubles: exact, 8 bytes each, fast both ways."""
    return struct.pack(f"<{len(values)}d", *values)


def unpack_float64(data: bytes) -> list[float]:
    if len(data) % 8:
        raise ValueError(f"a float64 array needs a multiple of 8 bytes, got {len(data)}")
    return list(struct.unpack(f"<{len(data) // 8}d", data))


class Float64Array(TypeDecorator[list[float]]):
    """A list of floats stored as packed little-endian doubles (BYTEA / BLOB).

    Used for per-chunk arrival times: a run holds millions of them, and parsing them as
    JSON numbers made the Postgres bulk insert ~10x slower (perf/store_bulk_insert.py).
    They are read back whole, never queried element by element, so SQL visibility is
    not needed.
    """

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: list[float] | None, dialect: Dialect) -> bytes | None:
        return None if value is None else pack_float64(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> list[float] | None:
        return None if value is None else unpack_float64(bytes(value))
