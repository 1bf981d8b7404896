"""Manifests: hashes, the digest of the manifest, the JSON form and its validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from budcluster.transfer import (
    MANIFEST_NAME,
    InvalidManifest,
    Manifest,
    ManifestEntry,
    UnsafeModelPath,
    build_manifest,
)
from tests.transfer.model_files import sha256_of, write_model


def test_build_manifest_lists_every_file_with_size_and_sha256(
    model_dir: tuple[Path, dict[str, bytes]],
) -> None:
    root, contents = model_dir
    manifest = build_manifest(root, workers=3)
    assert [e.path for e in manifest.files] == sorted(contents)
    for entry in manifest.files:
        assert entry.size == len(contents[entry.path])
        assert entry.sha256 == sha256_of(contents[entry.path])
    assert manifest.total_bytes == sum(len(c) for c in contents.values())


def test_worker_count_does_not_change_the_result(
    model_dir: tuple[Path, dict[str, bytes]],
) -> None:
    root, _ = model_dir
    assert build_manifest(root, workers=1) == build_manifest(root, workers=8)
    with pytest.raises(ValueError, match="workers"):
        build_manifest(root, workers=0)


def test_json_round_trip_keeps_entries_and_digest(
    model_dir: tuple[Path, dict[str, bytes]],
) -> None:
    manifest = build_manifest(model_dir[0])
    text = manifest.to_json()
    body = json.loads(text)
    assert body["manifest_sha256"] == manifest.sha256()
    assert body["total_bytes"] == manifest.total_bytes
    again = Manifest.from_json(text)
    assert again == manifest
    assert again.sha256() == manifest.sha256()


def test_digest_changes_with_any_path_size_or_hash() -> None:
    base = Manifest.of([ManifestEntry("a", 1, "0" * 64), ManifestEntry("b", 2, "1" * 64)])
    variants = [
        Manifest.of([ManifestEntry("a2", 1, "0" * 64), ManifestEntry("b", 2, "1" * 64)]),
        Manifest.of([ManifestEntry("a", 3, "0" * 64), ManifestEntry("b", 2, "1" * 64)]),
        Manifest.of([ManifestEntry("a", 1, "2" * 64), ManifestEntry("b", 2, "1" * 64)]),
        Manifest.of([ManifestEntry("a", 1, "0" * 64)]),
    ]
    digests = {base.sha256(), *(v.sha256() for v in variants)}
    assert len(digests) == 5
    # Order of construction does not matter: entries are sorted.
    assert Manifest.of(reversed(base.files)).sha256() == base.sha256()


def test_own_files_are_not_listed(tmp_path: Path) -> None:
    write_model(tmp_path, {"weights.bin": 10})
    (tmp_path / MANIFEST_NAME).write_text("{}")
    (tmp_path / ".budcluster-journal.jsonl").write_text("")
    assert [e.path for e in build_manifest(tmp_path).files] == ["weights.bin"]


def _manifest_text(files: list[object], **extra: object) -> str:
    return json.dumps({"format": "budcluster-manifest/1", "files": files, **extra})


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([{"path": "a", "size": -1, "sha256": "0" * 64}], r"files\[0\]\.size"),
        ([{"path": "a", "size": 1, "sha256": "xyz"}], r"files\[0\]\.sha256"),
        ([{"path": 5, "size": 1, "sha256": "0" * 64}], r"files\[0\]\.path"),
        (
            [{"path": "a", "size": 1, "sha256": "0" * 64}] * 2,
            "lists 'a' twice",
        ),
    ],
)
def test_invalid_manifest_names_the_field(files: list[object], message: str) -> None:
    with pytest.raises(InvalidManifest, match=message):
        Manifest.from_json(_manifest_text(files))


def test_wrong_format_and_tampered_digest_are_refused() -> None:
    with pytest.raises(InvalidManifest, match="'format'"):
        Manifest.from_json(json.dumps({"format": "other", "files": []}))
    good = Manifest.of([ManifestEntry("a", 1, "0" * 64)])
    body = json.loads(good.to_json())
    body["files"][0]["size"] = 2
    with pytest.raises(InvalidManifest, match="manifest_sha256"):
        Manifest.from_json(json.dumps(body))


@pytest.mark.parametrize(
    "path", ["../outside.bin", "sub/../../x", "/etc/passwd", "a\\..\\b", "", ".budcluster-x"]
)
def test_manifest_paths_that_escape_are_refused(path: str) -> None:
    text = _manifest_text([{"path": path, "size": 1, "sha256": "0" * 64}])
    with pytest.raises(UnsafeModelPath) as caught:
        Manifest.from_json(text, origin="uploaded.json")
    assert "uploaded.json" in str(caught.value)
