"""Planning reads a remote model's metadata without moving its weights."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from budcluster import secretfiles
from budcluster.modelfacts import load_model_facts
from budcluster.transfer.metadata import WHOLE_FILE_LIMIT, fetch_metadata
from tests.transfer.conftest import BUCKET, S3Server

QWEN = Path(__file__).parents[1] / "fixtures" / "models" / "Qwen2.5-0.5B-Instruct"


def _model_with_big_weights(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(QWEN / "config.json", root / "config.json")
    # Larger than the whole-file limit, so only its header may travel.
    weights = {"model.embed_tokens.weight": np.zeros((1024, 1536), dtype=np.float32)}
    save_file(weights, str(root / "model.safetensors"))
    assert (root / "model.safetensors").stat().st_size > WHOLE_FILE_LIMIT
    return root


def test_s3_metadata_gives_the_same_facts_as_the_full_model(
    s3_server: S3Server, tmp_path: Path
) -> None:
    original = _model_with_big_weights(tmp_path / "qwen-small")
    s3_server.upload_dir(original, "meta/qwen-small")
    fetched = fetch_metadata(f"s3://{BUCKET}/meta/qwen-small", s3_server.env, tmp_path / "cache")

    assert fetched.name == "qwen-small"
    copied = fetched / "model.safetensors"
    assert copied.stat().st_size < 1024  # the header only, not 6 MiB of weights
    full, remote = load_model_facts(original), load_model_facts(fetched)
    assert remote.name == full.name
    assert remote.parameter_count == full.parameter_count == 1024 * 1536
    assert remote.weight_bytes == full.weight_bytes == 1024 * 1536 * 4
    assert remote.num_kv_heads == full.num_kv_heads


def test_local_sources_are_read_in_place(tmp_path: Path) -> None:
    original = _model_with_big_weights(tmp_path / "local-model")
    assert fetch_metadata(str(original)) == original


def test_each_fetch_gets_its_own_private_directory(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two flows planning the same model at once must not remove each other's files, and a
    private bucket's config must not land in a directory other users can read."""
    monkeypatch.setenv("BUDCLUSTER_SECRETS_DIR", str(tmp_path / "secrets"))
    # The process directory is chosen once per process; forget any earlier test's choice so
    # this one is made under the directory set above.
    monkeypatch.setattr(secretfiles, "_process_dir", None)
    s3_server.upload_dir(_model_with_big_weights(tmp_path / "qwen-small"), "meta/qwen-small")
    uri = f"s3://{BUCKET}/meta/qwen-small"

    first = fetch_metadata(uri, s3_server.env)
    second = fetch_metadata(uri, s3_server.env)

    assert first != second
    assert (first / "config.json").is_file() and (second / "config.json").is_file()
    assert first.is_relative_to(tmp_path / "secrets")
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
