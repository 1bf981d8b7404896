"""LoRA adapters registered for a base model of the catalogue, one per (model, name)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from budcluster.store.errors import translated_errors
from budcluster.store.models import AdapterFormat, CatalogModel, LoraAdapter
from budcluster.store.rows import get_or_not_found
from budcluster.store.validation import (
    InvalidValue,
    parse_choice,
    require_non_negative,
    require_text,
)


def register_adapter(
    session: Session,
    *,
    model_id: int,
    name: str,
    source_uri: str,
    format: str,
    rank: int | None = None,
    alpha: float | None = None,
) -> LoraAdapter:
    """Insert the adapter, or point its name at the new source when it is registered already.

    The model must be in the catalogue: an adapter only means something on its base.
    """
    get_or_not_found(
        session, CatalogModel, what="model", fix="save it to the catalogue first", id=model_id
    )
    require_non_negative(rank, "adapter rank")
    if rank == 0:
        raise InvalidValue("adapter rank 0 is not a LoRA rank; give r >= 1 or leave it unknown")
    values = {
        "source_uri": require_text(source_uri, "adapter source_uri", 2048),
        "format": parse_choice(AdapterFormat, format, "adapter format"),
        "rank": rank,
        "alpha": alpha,
    }
    name = require_text(name, "adapter name", 63)
    adapter = session.scalar(
        select(LoraAdapter).where(LoraAdapter.model_id == model_id, LoraAdapter.name == name)
    )
    if adapter is None:
        adapter = LoraAdapter(model_id=model_id, name=name, **values)
        session.add(adapter)
    else:
        for key, value in values.items():
            setattr(adapter, key, value)
    with translated_errors(f"register adapter {name} of model {model_id}"):
        session.flush()
    return adapter


def list_adapters(session: Session, model_id: int | None = None) -> list[LoraAdapter]:
    """The adapters of one model (all models when None), by model and name."""
    query = select(LoraAdapter).order_by(LoraAdapter.model_id, LoraAdapter.name)
    if model_id is not None:
        query = query.where(LoraAdapter.model_id == model_id)
    return list(session.scalars(query))


def get_adapter(session: Session, model_id: int, name: str) -> LoraAdapter:
    return get_or_not_found(
        session,
        LoraAdapter,
        what="adapter",
        fix="register it with `budcluster lora register` or deploy-model's adapters",
        model_id=model_id,
        name=name,
    )
