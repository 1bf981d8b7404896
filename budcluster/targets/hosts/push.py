"""What the controller sends to a remote host itself: a model directory it holds, and the
runtime executable it built.

On ``ansible_connection: local`` the host shares the controller's filesystem, so the host
copies the model with ``budcluster.transfer`` and runs the executable where it was built. A
host reached over SSH has neither: the playbooks copy each listed file from the controller
(Ansible's ``copy``, which skips a file whose checksum already matches), check every file's
sha256 on the host against the list computed here, and only then write the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budcluster.transfer.errors import TransferError
from budcluster.transfer.local import LocalDirSource
from budcluster.transfer.manifest import Manifest, ManifestEntry, hash_file
from budcluster.transfer.uri import parse_source
from budcluster.transfer.walk import walk_files

ENGINES_DIR = "engines"
"""Under the host's state directory: ``engines/<name>-<sha256[:16]>/<name>``."""


@dataclass(frozen=True)
class PushedModel:
    """A controller-side model directory, listed and hashed for copying to remote hosts."""

    files: list[dict[str, Any]]
    """``{"path": relative path, "src": controller path, "size", "sha256"}`` per file."""
    manifest: Manifest

    def extravars(self) -> dict[str, Any]:
        return {
            "push_files": self.files,
            "push_manifest_json": self.manifest.to_json(),
            "push_manifest_sha256": self.manifest.sha256(),
            "push_bytes_total": self.manifest.total_bytes,
        }


def controller_model(uri: str) -> PushedModel | None:
    """The files of ``uri`` when it is a directory on this machine (a path, ``file://`` or
    an ``hf://`` entry of the local cache); None for a source the host reads itself (s3://)
    or a path this machine does not have (then it names a directory on the host)."""
    if uri.startswith("s3://"):
        return None
    try:
        source = parse_source(uri, env={})
    except TransferError:
        return None
    if not isinstance(source, LocalDirSource) or not source.root.is_dir():
        return None
    files: list[dict[str, Any]] = []
    entries = []
    for found in walk_files(source.root, containment_root=source.containment_root):
        digest, size = hash_file(found.path)
        entries.append(ManifestEntry(found.rel, size, digest))
        files.append({"path": found.rel, "src": str(found.path), "size": size, "sha256": digest})
    return PushedModel(files, Manifest.of(entries))


def executable_install(name: str, controller_path: str) -> dict[str, Any] | None:
    """How deploy_runtime.yml installs ``controller_path`` on a remote host, or None when
    this machine has no such file (then the path names the host's own executable).

    The host keeps it at ``<state>/engines/<name>-<sha256[:16]>/<name>``: a new build lands
    beside the old one instead of replacing a binary a runtime may be executing.
    """
    path = Path(controller_path)
    if not path.is_file():
        return None
    digest, _ = hash_file(path)
    return {
        "name": name,
        "controller_path": controller_path,
        "sha256": digest,
        "dir": f"{ENGINES_DIR}/{name}-{digest[:16]}",
    }
