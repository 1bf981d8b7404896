"""Local-directory transfers: verification, parallelism, reruns, mismatches, progress."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from budcluster.targets.base import TransferProgress
from budcluster.transfer import (
    MANIFEST_NAME,
    LocalDirSource,
    Manifest,
    ManifestEntry,
    ManifestMismatch,
    SourceFile,
    SourceNotFound,
    build_manifest,
    parse_source,
    read_manifest,
    transfer_model,
    verify_destination,
)
from budcluster.transfer.source import RangeReader
from tests.transfer.model_files import sha256_of, tree, write_model


def test_transfer_copies_every_file_and_writes_a_matching_manifest(
    model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, contents = model_dir
    dest = tmp_path / "dest"
    result = transfer_model(parse_source(str(root)), dest, workers=3)

    copied = tree(dest)
    manifest_text = copied.pop(MANIFEST_NAME).decode()
    copied.pop(".budcluster-journal.jsonl")
    copied.pop(".budcluster-lock")
    assert copied == contents
    assert Manifest.from_json(manifest_text) == result.manifest
    assert result.manifest == build_manifest(root)
    assert result.files == len(contents) == result.files_copied
    assert result.bytes_total == result.bytes_copied == sum(map(len, contents.values()))
    assert result.files_skipped == 0 and result.changed
    assert result.throughput == result.bytes_copied / result.seconds > 0
    assert verify_destination(dest) == result.manifest
    assert not list(dest.rglob("*.part"))


def test_files_are_copied_in_parallel(tmp_path: Path) -> None:
    """The first three reads wait at a barrier for each other: a serial copy would time out."""
    root = tmp_path / "model"
    write_model(root, {f"shard-{i}.bin": 50_000 for i in range(4)})
    barrier = threading.Barrier(3, timeout=5)
    inside: set[str] = set()
    lock = threading.Lock()

    class MeetingSource(LocalDirSource):
        def open_range(self, file: SourceFile, offset: int) -> RangeReader:
            with lock:
                first_three = len(inside) < 3
                inside.add(threading.current_thread().name)
            if first_three:
                barrier.wait()
            return super().open_range(file, offset)

    result = transfer_model(MeetingSource(root), tmp_path / "dest", workers=3)
    assert result.files_copied == 4
    assert len(inside) >= 3


def test_rerun_verifies_by_hash_and_changes_nothing(
    model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, _ = model_dir
    dest = tmp_path / "dest"
    transfer_model(LocalDirSource(root), dest)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dest.rglob("*") if p.is_file()}
    hashed: list[TransferProgress] = []
    again = transfer_model(LocalDirSource(root), dest, progress=hashed.append)
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dest.rglob("*") if p.is_file()}
    assert after == before  # not even the manifest was rewritten
    assert again.bytes_copied == 0 and again.files_skipped == again.files
    assert not again.changed
    assert hashed[-1].bytes_done == hashed[-1].bytes_total


def test_a_corrupted_destination_file_is_found_by_hash_and_recopied(
    model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, contents = model_dir
    dest = tmp_path / "dest"
    transfer_model(LocalDirSource(root), dest)
    victim = dest / "model-00002-of-00002.safetensors"
    damaged = bytearray(victim.read_bytes())
    damaged[1000] ^= 0xFF  # same size, different content
    victim.write_bytes(bytes(damaged))
    with pytest.raises(ManifestMismatch, match=r"model-00002"):
        verify_destination(dest)

    result = transfer_model(LocalDirSource(root), dest)
    assert result.files_copied == 1 and result.bytes_copied == len(damaged)
    assert victim.read_bytes() == contents[victim.name]
    verify_destination(dest)


def test_manifest_is_written_last(model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    root, _ = model_dir
    dest = tmp_path / "dest"
    seen_manifest_during_copy: list[bool] = []

    def watch(progress: TransferProgress) -> None:
        if progress.files_done < progress.files_total:
            seen_manifest_during_copy.append((dest / MANIFEST_NAME).exists())

    transfer_model(LocalDirSource(root), dest, workers=1, progress=watch)
    assert seen_manifest_during_copy and not any(seen_manifest_during_copy)
    assert read_manifest(dest) is not None


def test_a_shipped_manifest_is_enforced(
    model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, contents = model_dir
    good = build_manifest(root)
    entries = [
        ManifestEntry(e.path, e.size, "f" * 64) if e.path == "tokenizer.json" else e
        for e in good.files
    ]
    (root / MANIFEST_NAME).write_text(Manifest.of(entries).to_json())
    dest = tmp_path / "dest"
    with pytest.raises(ManifestMismatch, match=r"tokenizer\.json") as caught:
        transfer_model(LocalDirSource(root), dest, workers=1)
    assert sha256_of(contents["tokenizer.json"]) in str(caught.value)
    assert not (dest / "tokenizer.json").exists()
    assert not (dest / "tokenizer.json.part").exists()
    assert not (dest / MANIFEST_NAME).exists()

    (root / MANIFEST_NAME).write_text(good.to_json())
    assert transfer_model(LocalDirSource(root), dest).manifest == good


def test_a_shipped_manifest_must_list_the_same_files(tmp_path: Path) -> None:
    root = tmp_path / "model"
    write_model(root, {"a.bin": 10, "b.bin": 20})
    manifest = build_manifest(root)
    (root / "c.bin").write_bytes(b"new")
    (root / MANIFEST_NAME).write_text(manifest.to_json())
    with pytest.raises(ManifestMismatch, match=r"not in the manifest \['c.bin'\]"):
        transfer_model(LocalDirSource(root), tmp_path / "dest")


def test_a_source_that_grows_during_the_copy_is_a_mismatch(tmp_path: Path) -> None:
    root = tmp_path / "model"
    write_model(root, {"weights.bin": 1000})

    class GrowingSource(LocalDirSource):
        def open_range(self, file: SourceFile, offset: int) -> RangeReader:
            with (root / file.path).open("ab") as handle:
                handle.write(b"appended after listing")
            return super().open_range(file, offset)

    with pytest.raises(ManifestMismatch, match="source changed"):
        transfer_model(GrowingSource(root), tmp_path / "dest")
    assert not (tmp_path / "dest" / "weights.bin").exists()


def test_progress_reports_reach_the_totals(
    model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, contents = model_dir
    reports: list[TransferProgress] = []
    transfer_model(LocalDirSource(root), tmp_path / "dest", progress=reports.append)
    last = reports[-1]
    assert last.files_done == last.files_total == len(contents)
    assert last.bytes_done == last.bytes_total == sum(map(len, contents.values()))
    assert last.fraction == 1.0
    assert [r.bytes_done for r in reports] == sorted(r.bytes_done for r in reports)


def test_missing_or_empty_source_is_source_not_found(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match="does not exist"):
        transfer_model(parse_source(str(tmp_path / "nope")), tmp_path / "dest")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceNotFound, match="no files"):
        transfer_model(parse_source(f"file://{tmp_path / 'empty'}"), tmp_path / "dest")


def test_staged_model_carries_the_result(
    model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    result = transfer_model(LocalDirSource(model_dir[0]), tmp_path / "dest")
    staged = result.to_staged_model("tiny", ["localhost"])
    assert staged.path == str(tmp_path / "dest")
    assert staged.manifest_sha256 == result.manifest.sha256()
    assert (staged.files, staged.bytes, staged.nodes) == (
        result.files,
        result.bytes_total,
        ["localhost"],
    )


def _plant_part(root: Path, dest: Path, rel: str, prefix: bytes, *, journaled: bool) -> None:
    from budcluster.transfer.journal import Journal, JournalKey

    (listed,) = [f for f in LocalDirSource(root).list_files() if f.path == rel]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{rel}.part").write_bytes(prefix)
    if journaled:
        journal = Journal(dest)
        journal.record_start(JournalKey(listed.path, listed.size, listed.version))
        journal.close()


def test_a_part_with_a_bad_prefix_is_caught_by_the_manifest_and_copied_again(
    tmp_path: Path,
) -> None:
    root = tmp_path / "model"
    contents = write_model(root, {"weights.bin": 100_000})
    (root / MANIFEST_NAME).write_text(build_manifest(root).to_json())
    dest = tmp_path / "dest"
    _plant_part(root, dest, "weights.bin", b"\0" * 1000, journaled=True)

    result = transfer_model(LocalDirSource(root), dest)
    assert (dest / "weights.bin").read_bytes() == contents["weights.bin"]
    # The resumed attempt moved 99,000 bytes, failed its check, and the clean copy 100,000.
    assert result.bytes_copied == 2 * 100_000 - 1000


def test_a_part_that_the_journal_does_not_know_restarts_from_zero(tmp_path: Path) -> None:
    root = tmp_path / "model"
    contents = write_model(root, {"weights.bin": 100_000})
    dest = tmp_path / "dest"
    _plant_part(root, dest, "weights.bin", contents["weights.bin"][:5000], journaled=False)
    result = transfer_model(LocalDirSource(root), dest)
    assert result.bytes_copied == 100_000
    assert (dest / "weights.bin").read_bytes() == contents["weights.bin"]


def test_a_journaled_part_resumes_from_its_length(tmp_path: Path) -> None:
    root = tmp_path / "model"
    contents = write_model(root, {"weights.bin": 100_000})
    dest = tmp_path / "dest"
    _plant_part(root, dest, "weights.bin", contents["weights.bin"][:30_000], journaled=True)
    result = transfer_model(LocalDirSource(root), dest)
    assert result.bytes_copied == 70_000
    assert (dest / "weights.bin").read_bytes() == contents["weights.bin"]
