"""Errors of the model transfer engine.

Every message names the path or field at fault and what to do about it.
"""

from __future__ import annotations

from budcluster.errors import BudClusterError, ConfigurationError, PermanentError, TemporaryError


class TransferError(BudClusterError):
    """Base class of the transfer engine's errors."""


class UnsafeModelPath(TransferError, PermanentError):
    """A file would land outside the model root: ``..``, an absolute path, a symlink out."""


class InvalidDestination(TransferError, ConfigurationError):
    """The destination cannot be a model directory: a file, or not creatable by this user."""


class ManifestMismatch(TransferError, PermanentError):
    """A file's size or sha256 differs from what the manifest or the listing promised."""


class SourceNotFound(TransferError, PermanentError):
    """The source (directory, cache entry, bucket prefix) does not exist or is empty."""


class InvalidSourceUri(TransferError, ConfigurationError):
    """The source URI cannot be parsed or lacks what its scheme needs (e.g. S3 keys)."""


class SourceUnavailable(TransferError, TemporaryError):
    """The source did not answer in time or failed mid-read; retrying resumes the copy."""


class InvalidManifest(TransferError, PermanentError):
    """A manifest file is not valid JSON of the expected shape."""


class DestinationFull(TransferError, PermanentError):
    """The destination's filesystem ran out of space (or quota); what was copied is kept,
    and a rerun once there is room resumes it. Retrying without making room cannot help."""


class DestinationBusy(TransferError, TemporaryError):
    """Another transfer (e.g. one left running by a killed controller) is writing into the
    same destination; a rerun once it has ended resumes where it stopped."""
