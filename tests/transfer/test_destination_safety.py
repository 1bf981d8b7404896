"""The destination side of a transfer: a bad DEST_DIR is one line, a symlink planted in
the destination cannot redirect a write, and data reaches the disk before the manifest
that vouches for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.transfer import MANIFEST_NAME, LocalDirSource, UnsafeModelPath, transfer_model
from budcluster.transfer import engine as engine_module
from budcluster.transfer import manifest as manifest_module
from budcluster.transfer.console import EXIT_PERMANENT
from budcluster.transfer.journal import Journal, JournalKey
from tests.transfer.model_files import write_model

runner = CliRunner()


def _transfer_cli(source: Path, dest: Path) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, ["model", "transfer", str(source), str(dest)])
    exception = None if isinstance(result.exception, SystemExit) else result.exception
    return result.exit_code, result.stderr, exception


@pytest.mark.parametrize("where", ["dest", "parent"])
def test_a_destination_that_is_a_file_is_one_line_naming_it(tmp_path: Path, where: str) -> None:
    source = tmp_path / "model"
    write_model(source, {"config.json": 10})
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    dest = afile if where == "dest" else afile / "model"
    code, stderr, exception = _transfer_cli(source, dest)
    assert exception is None, repr(exception)
    assert code == EXIT_PERMANENT
    assert "Traceback" not in stderr
    (line,) = stderr.splitlines()
    assert line.startswith("error: ") and str(dest) in line
    assert "not a directory" in line and "DEST_DIR" in line
    assert afile.read_text() == "not a directory"


def test_a_symlink_planted_in_the_destination_cannot_redirect_a_new_directory(
    tmp_path: Path,
) -> None:
    """dest/sub -> elsewhere: copying sub/deep/er/weights.bin must not mkdir elsewhere/deep."""
    source = tmp_path / "model"
    write_model(source, {"config.json": 10, "sub/deep/er/weights.bin": 100})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafeModelPath, match="sub"):
        transfer_model(LocalDirSource(source), dest, workers=1)
    assert list(elsewhere.iterdir()) == []
    assert not (dest / MANIFEST_NAME).exists()


def test_a_symlink_deeper_in_the_destination_is_refused_too(tmp_path: Path) -> None:
    source = tmp_path / "model"
    write_model(source, {"a/b/c/weights.bin": 100})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    (dest / "a").mkdir(parents=True)
    (dest / "a" / "b").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafeModelPath, match="a/b"):
        transfer_model(LocalDirSource(source), dest, workers=1)
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_swapped_in_after_the_check_is_not_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .part replaced by a symlink between the check and the open is not followed."""
    source = tmp_path / "model"
    write_model(source, {"weights.bin": 100})
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    dest = tmp_path / "dest"
    real_record_start = Journal.record_start

    def plant_just_before_the_open(journal: Journal, key: JournalKey) -> None:
        real_record_start(journal, key)
        (dest / (key.path + ".part")).symlink_to(outside)

    monkeypatch.setattr(Journal, "record_start", plant_just_before_the_open)
    with pytest.raises(UnsafeModelPath, match="symlink"):
        transfer_model(LocalDirSource(source), dest, workers=1)
    assert outside.read_bytes() == b"precious"


def test_every_file_and_directory_is_fsynced_before_the_manifest_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "model"
    files = {"config.json": 10, "w/a.bin": 70_000, "w/deep/b.bin": 300, "c.txt": 0}
    write_model(source, files)
    dest = tmp_path / "dest"
    events: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        events.append("fsync " + str(Path(f"/proc/self/fd/{fd}").readlink()))
        real_fsync(fd)

    real_write_manifest = manifest_module.write_manifest

    def recording_write_manifest(directory: Path, manifest: object) -> Path:
        events.append("manifest")
        return real_write_manifest(directory, manifest)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(engine_module, "write_manifest", recording_write_manifest)
    transfer_model(LocalDirSource(source), dest, workers=2)

    assert "manifest" in events
    before = events[: events.index("manifest")]
    root = dest.resolve()
    for rel in files:
        target = root / rel
        assert any(e in (f"fsync {target}", f"fsync {target}.part") for e in before), rel
    # The renames into place are durable only once their directories are synced, after
    # the last file landed.
    last_file = max(
        i for i, e in enumerate(before) if any(e.startswith(f"fsync {root / r}") for r in files)
    )
    synced_dirs = {e.removeprefix("fsync ") for e in before[last_file:]}
    for directory in (root, root / "w", root / "w" / "deep"):
        assert str(directory) in synced_dirs, directory


def test_files_already_in_place_are_fsynced_before_a_new_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun after a crash trusts files a previous run renamed but may not have synced."""
    source = tmp_path / "model"
    write_model(source, {"a.bin": 1000, "b.bin": 10})
    dest = tmp_path / "dest"
    transfer_model(LocalDirSource(source), dest, workers=1)
    (dest / MANIFEST_NAME).unlink()
    (dest / "b.bin").unlink()
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    result = transfer_model(LocalDirSource(source), dest, workers=1)
    assert result.files_skipped == 1
    assert str(dest.resolve() / "a.bin") in synced


@pytest.mark.parametrize("name", [".budcluster-manifest.json.tmp", ".budcluster-journal.jsonl"])
def test_the_engines_own_files_are_not_written_through_a_planted_symlink(
    tmp_path: Path, name: str
) -> None:
    source = tmp_path / "model"
    write_model(source, {"weights.bin": 100})
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / name).symlink_to(outside)
    with pytest.raises(UnsafeModelPath, match="symlink"):
        transfer_model(LocalDirSource(source), dest, workers=1)
    assert outside.read_text() == "precious"
