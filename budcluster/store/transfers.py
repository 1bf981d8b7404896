"""Copies of model weights to clusters: progress, outcome and throughput."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from budcluster.store.errors import Conflict, translated_errors
from budcluster.store.models import Transfer, TransferStatus
from budcluster.store.rows import add_and_flush, get_or_not_found
from budcluster.store.types import utc_now
from budcluster.store.validation import (
    InvalidValue,
    parse_choice,
    require_aware,
    require_non_negative,
)

_FINISHED = frozenset({TransferStatus.SUCCEEDED, TransferStatus.FAILED, TransferStatus.CANCELLED})


def create_transfer(
    session: Session,
    *,
    model_id: int,
    cluster_id: int,
    deployment_id: int | None = None,
    destination: str | None = None,
    bytes_total: int | None = None,
    files_total: int | None = None,
) -> Transfer:
    require_non_negative(bytes_total, "transfer bytes_total")
    require_non_negative(files_total, "transfer files_total")
    transfer = Transfer(
        model_id=model_id,
        cluster_id=cluster_id,
        deployment_id=deployment_id,
        destination=destination,
        status=TransferStatus.PENDING,
        bytes_total=bytes_total,
        files_total=files_total,
        bytes_done=0,
        files_done=0,
    )
    with translated_errors("create transfer (does the model, cluster and deployment exist?)"):
        return add_and_flush(session, transfer)


def get_transfer(session: Session, transfer_id: int) -> Transfer:
    return get_or_not_found(session, Transfer, what="transfer", id=transfer_id)


def _unfinished(session: Session, transfer_id: int) -> Transfer:
    transfer = get_transfer(session, transfer_id)
    if transfer.status in _FINISHED:
        raise Conflict(
            f"transfer {transfer_id} already ended as {transfer.status.value}; start a new one"
        )
    return transfer


def start_transfer(session: Session, transfer_id: int, at: datetime | None = None) -> Transfer:
    transfer = _unfinished(session, transfer_id)
    transfer.status = TransferStatus.RUNNING
    transfer.started_at = require_aware(at, "transfer started_at") if at else utc_now()
    session.flush()
    return transfer


def record_progress(
    session: Session, transfer_id: int, *, bytes_done: int, files_done: int
) -> Transfer:
    require_non_negative(bytes_done, "transfer bytes_done")
    require_non_negative(files_done, "transfer files_done")
    transfer = _unfinished(session, transfer_id)
    transfer.bytes_done = bytes_done
    transfer.files_done = files_done
    session.flush()
    return transfer


def finish_transfer(
    session: Session,
    transfer_id: int,
    status: str,
    *,
    reason: str | None = None,
    at: datetime | None = None,
) -> Transfer:
    """End the transfer and compute its throughput from bytes copied over time running."""
    final = parse_choice(TransferStatus, status, "transfer status")
    if final not in _FINISHED:
        valid = ", ".join(sorted(s.value for s in _FINISHED))
        raise InvalidValue(f"transfer status {status!r} is not final; use one of: {valid}")
    transfer = _unfinished(session, transfer_id)
    finished_at = require_aware(at, "transfer finished_at") if at else utc_now()
    transfer.status = final
    transfer.status_reason = reason
    transfer.finished_at = finished_at
    if transfer.started_at is not None:
        elapsed = (finished_at - transfer.started_at).total_seconds()
        transfer.throughput_bytes_per_s = transfer.bytes_done / elapsed if elapsed > 0 else None
    session.flush()
    return transfer


def list_transfers(
    session: Session, *, model_id: int | None = None, cluster_id: int | None = None
) -> list[Transfer]:
    query = select(Transfer).order_by(Transfer.id)
    if model_id is not None:
        query = query.where(Transfer.model_id == model_id)
    if cluster_id is not None:
        query = query.where(Transfer.cluster_id == cluster_id)
    return list(session.scalars(query))
