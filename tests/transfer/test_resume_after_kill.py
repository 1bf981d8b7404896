"""``kill -9`` a real transfer process midway; the rerun copies only what is missing."""

from __future__ import annotations

import os
from pathlib import Path

from budcluster.transfer import MANIFEST_NAME, build_manifest, verify_destination
from tests.transfer.kill_helpers import run_transfer, start_and_kill
from tests.transfer.model_files import RESUMABLE_MODEL, tree, write_model


def test_killed_local_transfer_resumes_copying_only_missing_and_partial_bytes(
    tmp_path: Path,
) -> None:
    source = tmp_path / "model"
    contents = write_model(source, RESUMABLE_MODEL)
    total = sum(RESUMABLE_MODEL.values())
    dest = tmp_path / "dest"
    env = dict(os.environ)

    cut = start_and_kill(str(source), dest, RESUMABLE_MODEL, env)
    assert cut.complete, "no file was complete at the kill"
    assert cut.part_bytes, "no partial file was left by the kill"
    assert not (dest / MANIFEST_NAME).exists(), "an interrupted destination has no manifest"

    result = run_transfer(str(source), dest, env)

    # Exactly the bytes not already there were copied: complete files were skipped and
    # each .part was resumed from its length, not restarted.
    expected_copied = total - cut.complete_bytes - sum(cut.part_bytes.values())
    assert result["bytes_copied"] == expected_copied < total
    assert result["files_skipped"] == len(cut.complete)
    assert result["bytes_total"] == total
    for rel, (inode, mtime_ns) in cut.complete.items():
        stat = (dest / rel).stat()
        assert (stat.st_ino, stat.st_mtime_ns) == (inode, mtime_ns), f"{rel} was rewritten"

    # Everything verifies, byte for byte and against the manifest.
    assert verify_destination(dest).sha256() == result["manifest_sha256"]
    assert result["manifest_sha256"] == build_manifest(source).sha256()
    copied = tree(dest)
    copied.pop(MANIFEST_NAME)
    copied.pop(".budcluster-journal.jsonl")
    copied.pop(".budcluster-lock")
    assert copied == contents
