"""Models as found at their source: format, size, file manifest with checksums, config facts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from budcluster.store.errors import translated_errors
from budcluster.store.models import CatalogModel, ModelFormat
from budcluster.store.rows import get_or_not_found
from budcluster.store.validation import (
    InvalidValue,
    parse_choice,
    require_non_negative,
    require_text,
)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SAVE_FIRST = "save it to the catalogue first"


@dataclass(frozen=True, slots=True)
class ModelFile:
    path: str
    size: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


def _check_files(files: Sequence[ModelFile]) -> None:
    seen: set[str] = set()
    for file in files:
        if not _SHA256.fullmatch(file.sha256):
            raise InvalidValue(
                f"manifest file {file.path!r} sha256={file.sha256!r} is not 64 lowercase hex digits"
            )
        require_non_negative(file.size, f"manifest file {file.path!r} size")
        if file.path in seen:
            raise InvalidValue(f"manifest lists {file.path!r} twice; list each file once")
        seen.add(file.path)


def save_model(
    session: Session,
    *,
    name: str,
    source_uri: str,
    format: str,
    files: Sequence[ModelFile],
    config_facts: dict[str, Any] | None = None,
) -> CatalogModel:
    """Insert the model, or refresh it when its source URI is already known.

    The size is the sum of the manifest, so the two cannot disagree.
    """
    source_uri = require_text(source_uri, "model source_uri", 2048)
    _check_files(files)
    values = {
        "name": require_text(name, "model name", 512),
        "format": parse_choice(ModelFormat, format, "model format"),
        "size_bytes": sum(file.size for file in files),
        "manifest": [file.as_json() for file in sorted(files, key=lambda f: f.path)],
        "config_facts": dict(config_facts or {}),
    }
    model = session.scalar(select(CatalogModel).where(CatalogModel.source_uri == source_uri))
    if model is None:
        model = CatalogModel(source_uri=source_uri, **values)
        session.add(model)
    else:
        for key, value in values.items():
            setattr(model, key, value)
    with translated_errors(f"save model {source_uri}"):
        session.flush()
    return model


def get_model(session: Session, model_id: int) -> CatalogModel:
    return get_or_not_found(session, CatalogModel, what="model", fix=_SAVE_FIRST, id=model_id)


def get_model_by_uri(session: Session, source_uri: str) -> CatalogModel:
    return get_or_not_found(
        session, CatalogModel, what="model", fix=_SAVE_FIRST, source_uri=source_uri
    )


def manifest_files(model: CatalogModel) -> list[ModelFile]:
    return [ModelFile(path=f["path"], size=f["size"], sha256=f["sha256"]) for f in model.manifest]
