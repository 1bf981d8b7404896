"""Model transfer: a sha256 manifest, parallel resumable copies, path-safety checks.

Sources are a local directory, a local Hugging Face cache entry, or an S3 prefix
(``parse_source``). ``transfer_model`` copies one into a destination directory and
verifies every file; ``build_manifest`` hashes a directory.
"""

from __future__ import annotations

from budcluster.transfer.engine import TransferResult, transfer_model, verify_destination
from budcluster.transfer.errors import (
    InvalidManifest,
    InvalidSourceUri,
    ManifestMismatch,
    SourceNotFound,
    SourceUnavailable,
    TransferError,
    UnsafeModelPath,
)
from budcluster.transfer.local import LocalDirSource, hf_cache_dir, hf_cache_source
from budcluster.transfer.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    build_manifest,
    read_manifest,
)
from budcluster.transfer.progress import ProgressCallback, TransferProgress
from budcluster.transfer.source import ModelSource, RangeReader, SourceFile
from budcluster.transfer.staged import StagedModel
from budcluster.transfer.uri import parse_source

__all__ = [
    "MANIFEST_NAME",
    "InvalidManifest",
    "InvalidSourceUri",
    "LocalDirSource",
    "Manifest",
    "ManifestEntry",
    "ManifestMismatch",
    "ModelSource",
    "ProgressCallback",
    "RangeReader",
    "SourceFile",
    "SourceNotFound",
    "SourceUnavailable",
    "StagedModel",
    "TransferError",
    "TransferProgress",
    "TransferResult",
    "UnsafeModelPath",
    "build_manifest",
    "hf_cache_dir",
    "hf_cache_source",
    "parse_source",
    "read_manifest",
    "transfer_model",
    "verify_destination",
]
