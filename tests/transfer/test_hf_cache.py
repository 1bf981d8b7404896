"""The local Hugging Face cache source, on a cache laid out the way huggingface_hub does:
``models--org--name/{blobs,refs,snapshots}``, snapshot files symlinked into blobs/."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from budcluster.transfer import (
    InvalidSourceUri,
    ManifestMismatch,
    SourceNotFound,
    UnsafeModelPath,
    parse_source,
    transfer_model,
)
from tests.transfer.model_files import sha256_of

COMMIT_MAIN = "a" * 40
COMMIT_V2 = "b" * 40


@dataclass(frozen=True)
class FakeCache:
    cache: Path
    repo: Path
    files: dict[str, dict[str, bytes]]
    """commit -> snapshot-relative path -> content."""


def _blob_name(rel: str, data: bytes) -> str:
    # LFS files (weights) are stored under their sha256, small git files under the git
    # blob sha1, as huggingface_hub does.
    if rel.endswith(".safetensors"):
        return sha256_of(data)
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _snapshot(repo: Path, commit: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        blob = repo / "blobs" / _blob_name(rel, data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


@pytest.fixture
def hf_cache(tmp_path: Path) -> FakeCache:
    rng = random.Random(3)
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--acme--tiny-llama"
    main = {
        "config.json": b'{"model_type": "llama"}',
        "model.safetensors": rng.randbytes(300_000),
        "tokenizer/tokenizer.json": rng.randbytes(4_000),
    }
    v2 = {**main, "config.json": b'{"model_type": "llama", "v": 2}'}
    _snapshot(repo, COMMIT_MAIN, main)
    _snapshot(repo, COMMIT_V2, v2)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT_MAIN)
    (repo / "refs" / "v2").write_text(COMMIT_V2)
    return FakeCache(cache, repo, {COMMIT_MAIN: main, COMMIT_V2: v2})


def _copied(dest: Path) -> dict[str, bytes]:
    return {
        p.relative_to(dest).as_posix(): p.read_bytes()
        for p in dest.rglob("*")
        if p.is_file() and not p.name.startswith(".budcluster-")
    }


def test_hf_cache_entry_is_copied_as_regular_files(hf_cache: FakeCache, tmp_path: Path) -> None:
    source = parse_source("hf://acme/tiny-llama", {"HF_HUB_CACHE": str(hf_cache.cache)})
    assert source.uri == f"hf://acme/tiny-llama@{COMMIT_MAIN}"
    dest = tmp_path / "dest"
    result = transfer_model(source, dest)
    assert _copied(dest) == hf_cache.files[COMMIT_MAIN]
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    entries = result.manifest.by_path()
    assert entries["model.safetensors"].sha256 == sha256_of(
        hf_cache.files[COMMIT_MAIN]["model.safetensors"]
    )


@pytest.mark.parametrize("revision", ["v2", COMMIT_V2])
def test_revision_by_ref_or_commit(hf_cache: FakeCache, tmp_path: Path, revision: str) -> None:
    source = parse_source(
        f"hf://acme/tiny-llama@{revision}", {"HF_HOME": str(hf_cache.cache.parent)}
    )
    transfer_model(source, tmp_path / "dest")
    assert _copied(tmp_path / "dest") == hf_cache.files[COMMIT_V2]


def test_an_lfs_blob_whose_content_no_longer_matches_its_name_is_refused(
    hf_cache: FakeCache, tmp_path: Path
) -> None:
    weights = hf_cache.files[COMMIT_MAIN]["model.safetensors"]
    blob = hf_cache.repo / "blobs" / sha256_of(weights)
    blob.write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))  # bit rot, same size
    source = parse_source("hf://acme/tiny-llama", {"HF_HUB_CACHE": str(hf_cache.cache)})
    with pytest.raises(ManifestMismatch, match=r"model\.safetensors"):
        transfer_model(source, tmp_path / "dest")


def test_a_snapshot_link_leaving_the_cache_entry_is_refused(
    hf_cache: FakeCache, tmp_path: Path
) -> None:
    (hf_cache.repo / "snapshots" / COMMIT_MAIN / "extra.txt").symlink_to("/etc/passwd")
    source = parse_source("hf://acme/tiny-llama", {"HF_HUB_CACHE": str(hf_cache.cache)})
    with pytest.raises(UnsafeModelPath, match=r"extra\.txt.*/etc/passwd"):
        transfer_model(source, tmp_path / "dest")


def test_missing_model_or_revision_lists_what_exists(hf_cache: FakeCache) -> None:
    env = {"HF_HUB_CACHE": str(hf_cache.cache)}
    with pytest.raises(SourceNotFound, match="not in the Hugging Face cache"):
        parse_source("hf://acme/other", env)
    with pytest.raises(SourceNotFound, match=r"refs: \['main', 'v2'\]"):
        parse_source("hf://acme/tiny-llama@nope", env)


@pytest.mark.parametrize("uri", ["hf://", "hf://../etc", "hf://a/b/c", "hf://acme/x@../main"])
def test_malformed_hf_uris_are_refused(uri: str, hf_cache: FakeCache) -> None:
    with pytest.raises(InvalidSourceUri):
        parse_source(uri, {"HF_HUB_CACHE": str(hf_cache.cache)})


def test_cache_dir_follows_huggingface_hub_precedence(tmp_path: Path) -> None:
    from budcluster.transfer import hf_cache_dir

    assert hf_cache_dir({"HF_HUB_CACHE": "/x", "HF_HOME": "/y"}) == Path("/x")
    assert hf_cache_dir({"HF_HOME": "/y"}) == Path("/y/hub")
    assert hf_cache_dir({"XDG_CACHE_HOME": "/z"}) == Path("/z/huggingface/hub")
    assert hf_cache_dir({}) == Path("~/.cache/huggingface/hub").expanduser()
