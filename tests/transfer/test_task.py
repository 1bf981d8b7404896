"""The Prefect transfer task, called as a plain function with the artifact calls recorded."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.states import Failed

import tasks.transfer as transfer_tasks
from budcluster.targets.base import ModelSourceSpec
from budcluster.transfer import LocalDirSource, SourceFile, SourceUnavailable, UnsafeModelPath
from budcluster.transfer.source import ModelSource, RangeReader
from tests.transfer.model_files import write_model


class _SlowSource(LocalDirSource):
    def open_range(self, file: SourceFile, offset: int) -> RangeReader:
        time.sleep(0.05)
        return super().open_range(file, offset)


def test_task_publishes_a_progress_artifact_under_a_stable_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "model"
    write_model(root, {f"shard-{i}.bin": 20_000 for i in range(12)})
    artifact_id = uuid4()
    created: list[dict[str, Any]] = []
    updates: list[float] = []
    seen_env: list[Mapping[str, str]] = []

    def create(**kwargs: Any) -> UUID:
        created.append(kwargs)
        return artifact_id

    def update(found: UUID, progress: float, description: str | None = None) -> UUID:
        assert found == artifact_id
        updates.append(progress)
        return found

    def parse(uri: str, env: Mapping[str, str]) -> ModelSource:
        seen_env.append(env)
        return _SlowSource(Path(uri))

    monkeypatch.setattr(transfer_tasks, "create_progress_artifact", create)
    monkeypatch.setattr(transfer_tasks, "update_progress_artifact", update)
    monkeypatch.setattr(transfer_tasks, "parse_source", parse)
    monkeypatch.setattr(transfer_tasks, "ARTIFACT_INTERVAL_S", 0.05)

    spec = ModelSourceSpec(uri=str(root), credentials_env={"AWS_ACCESS_KEY_ID": "from-block"})
    result = transfer_tasks.transfer_model_local.fn(
        spec, str(tmp_path / "dest"), "Tiny Llama/v1", 1
    )

    assert result.files == 12 and result.files_copied == 12
    assert created == [
        {
            "progress": 0.0,
            "key": "transfer-tiny-llama-v1",
            "description": f"Transfer from {root}: listing files",
        }
    ]
    assert len(updates) >= 3, updates  # intermediate updates, then the final 100
    assert updates == sorted(updates) and updates[-1] == 100.0
    assert any(0 < u < 100 for u in updates)
    assert seen_env[0]["AWS_ACCESS_KEY_ID"] == "from-block"


def test_only_temporary_errors_are_retried() -> None:
    retry = transfer_tasks._retry_if_temporary
    assert retry(None, None, Failed(data=SourceUnavailable("timeout")))
    assert not retry(None, None, Failed(data=UnsafeModelPath("../x")))


def test_artifact_keys_are_valid_prefect_keys() -> None:
    assert transfer_tasks.transfer_artifact_key("Org/Model_Name 7B") == "transfer-org-model-name-7b"
    assert transfer_tasks.transfer_artifact_key("!!!") == "transfer-model"
