"""What the engine needs from a model source: a listing and ranged reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from budcluster.transfer.manifest import Manifest


@dataclass(frozen=True)
class SourceFile:
    path: str
    """POSIX path relative to the model root, already checked by ``check_relative_path``."""
    size: int
    version: str
    """Identity of this content at the source (local size:mtime, S3 ETag, HF blob name).

    A partial ``.part`` file is resumed only when the version recorded when it was
    started is still the source's version; otherwise it is copied again from byte 0.
    """
    sha256: str | None = None
    """Known before copying (an HF LFS blob name), or None."""


class RangeReader(Protocol):
    """A stream positioned at the requested offset."""

    def readinto(self, buffer: memoryview, /) -> int:
        """Fill up to ``len(buffer)`` bytes; 0 means the end of the file."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ModelSource(Protocol):
    """A model that can be listed and read: a directory, an HF cache entry, an S3 prefix."""

    @property
    def uri(self) -> str:
        """Where the model comes from, fit for logs (never holds credentials)."""
        ...

    def list_files(self) -> list[SourceFile]:
        """Every file of the model, sorted by path. Raises UnsafeModelPath for an escape."""
        ...

    def expected_manifest(self) -> Manifest | None:
        """The manifest shipped with the model (``.budcluster-manifest.json`` at its root)."""
        ...

    def open_range(self, file: SourceFile, offset: int) -> RangeReader:
        """A reader for ``file`` starting at byte ``offset``."""
        ...
