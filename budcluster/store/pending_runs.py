"""A benchmark run the store could not take, kept in a file until it can.

When the store stays unavailable past its retry deadline at the end of a benchmark, the
run (its info, level summaries, every request, its price and deployment) is written as
gzip JSON beside the report. ``budcluster bench import FILE`` loads it later; saving is
keyed by the run itself (``benchmarks.run_key``), so importing twice, or importing a run
whose first save did land after all, stores nothing new.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from budcluster.bench.records import LatencyStats, LevelSummary, RequestRecord, RunInfo
from budcluster.errors import PermanentError
from budcluster.store.errors import StoreError

PENDING_FILE_NAME = "store-pending.json.gz"
_FORMAT = "budcluster-store-pending-run"
_VERSION = 1
# Requests are rows of values under one list of field names: a file of 100k requests is
# written in about a second where one object per request took several.
_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))


class InvalidPendingFile(StoreError, PermanentError):
    """The file is not a pending run this version can read."""


@dataclass(slots=True)
class PendingRun:
    """Everything ``save_run`` needs, as it was at the end of the benchmark."""

    run: RunInfo
    levels: list[LevelSummary]
    records: list[RequestRecord]
    deployment_id: int | None = None
    usd_per_hour: float | None = None
    price: dict[str, Any] | None = None


def write_pending(path: Path, pending: PendingRun) -> Path:
    """Write ``pending`` to ``path`` whole (a temporary file renamed over it)."""
    document = {
        "format": _FORMAT,
        "version": _VERSION,
        "run": _run_document(pending.run),
        "levels": [asdict(level) for level in pending.levels],
        "record_fields": _RECORD_FIELDS,
        "records": [
            [getattr(record, name) for name in _RECORD_FIELDS] for record in pending.records
        ],
        "deployment_id": pending.deployment_id,
        "usd_per_hour": pending.usd_per_hour,
        "price": pending.price,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    # Encoded whole, then compressed at level 1: the run is written while a benchmark
    # waits on it, and size matters less than time.
    data = json.dumps(document, allow_nan=False, separators=(",", ":")).encode()
    with gzip.open(partial, "wb", compresslevel=1) as handle:
        handle.write(data)
    partial.replace(path)
    return path


def read_pending(path: Path) -> PendingRun:
    """The run kept in ``path``; InvalidPendingFile naming the file when it is not one."""
    try:
        with gzip.open(path, "rb") as handle:
            document = json.loads(handle.read())
    except FileNotFoundError as exc:
        raise InvalidPendingFile(
            f"{path}: no such file; give the {PENDING_FILE_NAME} path the benchmark's error named"
        ) from exc
    except (OSError, EOFError, ValueError) as exc:
        raise InvalidPendingFile(f"{path}: not a gzip JSON pending run ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise InvalidPendingFile(f"{path}: not a pending benchmark run (format {_FORMAT!r})")
    if document.get("version") != _VERSION:
        raise InvalidPendingFile(
            f"{path}: pending-run version {document.get('version')!r}; this budcluster "
            f"reads version {_VERSION}"
        )
    try:
        return PendingRun(
            run=_run_info(document["run"]),
            levels=[_level(level) for level in document["levels"]],
            records=_records(document["record_fields"], document["records"]),
            deployment_id=document.get("deployment_id"),
            usd_per_hour=document.get("usd_per_hour"),
            price=document.get("price"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPendingFile(f"{path}: a field is missing or malformed ({exc!r})") from exc


def _run_document(run: RunInfo) -> dict[str, Any]:
    document = asdict(run)
    document["started_at"] = run.started_at.isoformat()
    document["finished_at"] = run.finished_at.isoformat() if run.finished_at else None
    return document


def _run_info(document: dict[str, Any]) -> RunInfo:
    finished = document.get("finished_at")
    return RunInfo(
        **{
            **document,
            "started_at": datetime.fromisoformat(document["started_at"]),
            "finished_at": datetime.fromisoformat(finished) if finished else None,
        }
    )


def _records(names: list[str], rows: list[list[Any]]) -> list[RequestRecord]:
    unknown = set(names) - set(_RECORD_FIELDS)
    if unknown:
        raise ValueError(f"request fields this version does not know: {sorted(unknown)}")
    return [RequestRecord(**dict(zip(names, row, strict=True))) for row in rows]


def _level(document: dict[str, Any]) -> LevelSummary:
    latencies = {key: LatencyStats(**stats) for key, stats in document["latencies_ms"].items()}
    return LevelSummary(**{**document, "latencies_ms": latencies})
