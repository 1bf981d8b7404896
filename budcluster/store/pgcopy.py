"""Rows of ``benchmark_requests`` in Postgres's binary COPY format.

Binary COPY skips turning every float into text and back (``repr`` is the dearest step
on the client), and sends chunk times as raw bytes instead of hex. The layout (from the
Postgres docs, "COPY ... Binary Format"): a fixed header; per row a big-endian int16
field count, then per field an int32 byte length (-1 for NULL) and the value in the
type's binary send format; an int16 -1 trailer. Field types must match the columns
exactly: int4, int8, float8, varchar/text (UTF-8), bytea, bool.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator

from budcluster.bench.records import RequestRecord
from budcluster.store.types import pack_float64
from budcluster.store.validation import InvalidValue

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
FIELD_COUNT = 15

_NULL = struct.pack(">i", -1)
_INT4 = struct.Struct(">ii")
_FLOAT8 = struct.Struct(">id")
# The common row: every number present. One pack call instead of nine.
_FULL_PREFIX = struct.Struct(">h" + "ii" + "iq" + "ii" + "id" * 4 + "ii" * 2)
_RETRIES_WARMUP = struct.Struct(">iiib")


def _int4(value: int | None) -> bytes:
    return _NULL if value is None else _INT4.pack(4, value)


def _float8(value: float | None) -> bytes:
    return _NULL if value is None else _FLOAT8.pack(8, value)


def _text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    # Postgres text cannot hold NUL; the text COPY path dropped it the same way.
    data = value.replace("\0", "").encode()
    return struct.pack(">i", len(data)) + data


def _prefix(run_id: int, r: RequestRecord) -> bytes:
    numbers = (r.sent_s, r.first_token_s, r.end_s, r.prompt_tokens, r.output_tokens)
    if None not in numbers:
        return _FULL_PREFIX.pack(
            FIELD_COUNT,
            4, run_id,
            8, r.request_id,
            4, r.level,
            8, r.scheduled_s,
            8, r.sent_s,
            8, r.first_token_s,
            8, r.end_s,
            4, r.prompt_tokens,
            4, r.output_tokens,
        )  # fmt: skip
    return b"".join(
        (
            struct.pack(">hiiiq", FIELD_COUNT, 4, run_id, 8, r.request_id),
            _int4(r.level),
            _float8(r.scheduled_s),
            _float8(r.sent_s),
            _float8(r.first_token_s),
            _float8(r.end_s),
            _int4(r.prompt_tokens),
            _int4(r.output_tokens),
        )
    )


def check_finite(r: RequestRecord) -> None:
    times = (r.scheduled_s, r.sent_s, r.first_token_s, r.end_s)
    if not all(math.isfinite(t) for t in times if t is not None):
        raise InvalidValue(
            f"request {r.request_id} has a non-finite time; use None for 'never happened'"
        )
    if not all(map(math.isfinite, r.chunk_times_s)):
        raise InvalidValue(
            f"request {r.request_id} chunk_times_s holds a non-finite value; "
            "chunk times must be finite numbers of seconds"
        )


def encode_row(run_id: int, r: RequestRecord) -> bytes:
    check_finite(r)
    try:
        prefix = _prefix(run_id, r)
        tail = _RETRIES_WARMUP.pack(4, r.retries, 1, r.warmup)
    except struct.error as exc:
        raise InvalidValue(
            f"request {r.request_id} has a number out of range for its column: {exc}"
        ) from exc
    chunks = pack_float64(r.chunk_times_s)
    return b"".join(
        (
            prefix,
            _text(r.output_tokens_source),
            struct.pack(">i", len(chunks)),
            chunks,
            _text(r.error_kind),
            _text(r.error),
            tail,
        )
    )


def encode_rows(run_id: int, records: Iterable[RequestRecord]) -> Iterator[bytes]:
    for record in records:
        yield encode_row(run_id, record)
