"""What a model transfer leaves on the target nodes: :class:`StagedModel`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StagedModel:
    """A model verified in place on every target node."""

    model_name: str
    path: str
    """Directory of the model on each node (the same on all of them)."""
    nodes: list[str]
    files: int
    bytes: int
    bytes_copied: int
    """What this run actually moved; less than ``bytes`` when it resumed."""
    seconds: float
    manifest_sha256: str
    """SHA-256 of the manifest (every file's path, size and sha256)."""
    manifest: list[dict[str, object]] = field(default_factory=list)
    """The verified files: ``{"path", "size", "sha256"}`` each, as the transfer wrote them."""
