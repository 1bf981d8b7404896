"""A model that escapes its root is refused with an error that names the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcluster.transfer import (
    LocalDirSource,
    UnsafeModelPath,
    build_manifest,
    parse_source,
    transfer_model,
)
from budcluster.transfer.paths import check_relative_path
from tests.transfer.model_files import write_model


def test_symlink_to_etc_passwd_is_refused_by_manifest_and_transfer(tmp_path: Path) -> None:
    root = tmp_path / "model"
    write_model(root, {"config.json": 10})
    (root / "tokenizer.json").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeModelPath) as by_manifest:
        build_manifest(root)
    message = str(by_manifest.value)
    assert "tokenizer.json" in message and "/etc/passwd" in message

    dest = tmp_path / "dest"
    with pytest.raises(UnsafeModelPath, match=r"tokenizer\.json"):
        transfer_model(parse_source(str(root)), dest)
    assert not (dest / "tokenizer.json").exists()


def test_relative_symlink_climbing_out_and_symlinked_dir_out_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    write_model(outside, {"key.pem": 5})
    root = tmp_path / "model"
    write_model(root, {"config.json": 10})
    (root / "weights.bin").symlink_to("../secret/key.pem")
    with pytest.raises(UnsafeModelPath, match=r"weights\.bin"):
        build_manifest(root)
    (root / "weights.bin").unlink()
    (root / "more").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeModelPath, match="more"):
        build_manifest(root)


def test_symlinks_that_stay_inside_the_root_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "model"
    contents = write_model(root, {"blobs/abc": 1000, "config.json": 10})
    (root / "model.safetensors").symlink_to("blobs/abc")
    (root / "loop").symlink_to(".", target_is_directory=True)  # a loop inside: listed once
    manifest = build_manifest(root).by_path()
    assert manifest["model.safetensors"].size == len(contents["blobs/abc"])
    assert manifest["model.safetensors"].sha256 == manifest["blobs/abc"].sha256
    assert not any(p.startswith("loop/") for p in manifest)


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("/etc/passwd", "absolute"),
        ("a\\b", "backslash"),
        ("", "empty"),
        ("./", "root itself"),
        (".budcluster-manifest.json", "reserved"),
    ],
)
def test_relative_path_check_says_why(rel: str, reason: str) -> None:
    with pytest.raises(UnsafeModelPath) as caught:
        check_relative_path(rel, origin="s3://b/p")
    assert reason in str(caught.value) and "s3://b/p" in str(caught.value)


def test_harmless_paths_are_normalised() -> None:
    assert check_relative_path("a//b/./c.bin", origin="x") == "a/b/c.bin"


def test_a_symlinked_directory_in_the_destination_is_not_written_through(tmp_path: Path) -> None:
    root = tmp_path / "model"
    write_model(root, {"sub/weights.bin": 100})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafeModelPath, match="outside"):
        transfer_model(LocalDirSource(root), dest)
    assert list(elsewhere.iterdir()) == []
