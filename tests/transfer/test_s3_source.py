"""The S3 source against moto's server mode: a real S3 protocol peer on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from budcluster.errors import TemporaryError
from budcluster.transfer import (
    MANIFEST_NAME,
    InvalidSourceUri,
    Manifest,
    ManifestEntry,
    ManifestMismatch,
    SourceNotFound,
    UnsafeModelPath,
    build_manifest,
    parse_source,
    transfer_model,
    verify_destination,
)
from tests.support.prefect_server import free_port
from tests.transfer.conftest import BUCKET, S3Server
from tests.transfer.kill_helpers import run_transfer, start_and_kill
from tests.transfer.model_files import RESUMABLE_MODEL, SMALL_MODEL, tree, write_model


def _without_own_files(dest: Path) -> dict[str, bytes]:
    files = tree(dest)
    return {k: v for k, v in files.items() if not k.startswith(".budcluster-")}


def test_transfer_from_s3_verifies_against_the_local_manifest(
    s3_server: S3Server, tmp_path: Path
) -> None:
    contents = write_model(tmp_path / "model", SMALL_MODEL)
    s3_server.upload_dir(tmp_path / "model", "tiny/v1")
    source = parse_source(f"s3://{BUCKET}/tiny/v1/", s3_server.env)
    assert source.uri == f"s3://{BUCKET}/tiny/v1"
    dest = tmp_path / "dest"
    result = transfer_model(source, dest, workers=3)
    assert _without_own_files(dest) == contents
    assert result.manifest == build_manifest(tmp_path / "model")
    assert verify_destination(dest) == result.manifest
    rerun = transfer_model(source, dest)
    assert rerun.bytes_copied == 0 and not rerun.changed


def test_a_manifest_shipped_in_the_bucket_is_enforced(s3_server: S3Server, tmp_path: Path) -> None:
    root = tmp_path / "model"
    write_model(root, {"weights.bin": 50_000, "config.json": 100})
    lying = Manifest.of(
        ManifestEntry(e.path, e.size, "0" * 64) if e.path == "weights.bin" else e
        for e in build_manifest(root).files
    )
    (root / MANIFEST_NAME).write_text(lying.to_json())
    s3_server.upload_dir(root, "shipped")
    with pytest.raises(ManifestMismatch, match=r"weights\.bin"):
        transfer_model(parse_source(f"s3://{BUCKET}/shipped", s3_server.env), tmp_path / "dest")
    assert not (tmp_path / "dest" / "weights.bin").exists()


@pytest.mark.parametrize(
    ("key", "reason"),
    [("evil/../../../etc/cron.d/x", "'..'"), ("evil//etc/passwd", "absolute")],
)
def test_keys_that_escape_the_prefix_are_refused(
    s3_server: S3Server, tmp_path: Path, key: str, reason: str
) -> None:
    s3_server.client.put_object(Bucket=BUCKET, Key="evil/config.json", Body=b"{}")
    s3_server.client.put_object(Bucket=BUCKET, Key=key, Body=b"pwned")
    try:
        with pytest.raises(UnsafeModelPath, match=reason) as caught:
            transfer_model(parse_source(f"s3://{BUCKET}/evil", s3_server.env), tmp_path / "d")
        assert key in str(caught.value)
    finally:
        s3_server.client.delete_object(Bucket=BUCKET, Key=key)


def test_an_object_replaced_after_listing_is_not_spliced(s3_server: S3Server) -> None:
    s3_server.client.put_object(Bucket=BUCKET, Key="moving/w.bin", Body=b"a" * 1000)
    source = parse_source(f"s3://{BUCKET}/moving", s3_server.env)
    (listed,) = source.list_files()
    s3_server.client.put_object(Bucket=BUCKET, Key="moving/w.bin", Body=b"b" * 1000)
    with pytest.raises(ManifestMismatch, match="changed after it was listed"):
        source.open_range(listed, 500)


def test_missing_bucket_prefix_and_keys(s3_server: S3Server, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match="NoSuchBucket"):
        transfer_model(parse_source("s3://no-such-bucket/x", s3_server.env), tmp_path / "d")
    with pytest.raises(SourceNotFound, match="no files"):
        transfer_model(parse_source(f"s3://{BUCKET}/empty-prefix", s3_server.env), tmp_path / "d")
    partial = {k: v for k, v in s3_server.env.items() if k != "AWS_SECRET_ACCESS_KEY"}
    with pytest.raises(InvalidSourceUri, match="AWS_SECRET_ACCESS_KEY"):
        parse_source(f"s3://{BUCKET}/x", partial)


def test_an_endpoint_that_does_not_answer_is_temporary(tmp_path: Path) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "BUDCLUSTER_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
    }
    with pytest.raises(TemporaryError, match="did not answer"):
        transfer_model(parse_source(f"s3://{BUCKET}/x", env), tmp_path / "d")


def test_killed_s3_transfer_resumes(s3_server: S3Server, tmp_path: Path) -> None:
    contents = write_model(tmp_path / "model", RESUMABLE_MODEL)
    s3_server.upload_dir(tmp_path / "model", "resumable")
    uri = f"s3://{BUCKET}/resumable"
    env = {**os.environ, **s3_server.env}
    dest = tmp_path / "dest"

    cut = start_and_kill(uri, dest, RESUMABLE_MODEL, env)
    assert cut.complete and cut.part_bytes
    result = run_transfer(uri, dest, env)

    total = sum(RESUMABLE_MODEL.values())
    assert result["bytes_copied"] == total - cut.complete_bytes - sum(cut.part_bytes.values())
    for rel, (inode, mtime_ns) in cut.complete.items():
        stat = (dest / rel).stat()
        assert (stat.st_ino, stat.st_mtime_ns) == (inode, mtime_ns), f"{rel} was rewritten"
    assert _without_own_files(dest) == contents
    assert verify_destination(dest).sha256() == result["manifest_sha256"]
