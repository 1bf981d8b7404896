"""Prefect task around the model transfer engine (``budcluster.transfer``).

``transfer_model_local`` copies a model into a directory on the machine the task runs on
and keeps a progress artifact (key ``transfer-<model>``) up to date while it runs. It
retries only temporary failures (the source did not answer); a retry resumes the copy.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from budcluster.errors import TemporaryError
from budcluster.targets.base import ModelSourceSpec, TransferProgress
from budcluster.transfer import TransferResult, parse_source, transfer_model

ARTIFACT_INTERVAL_S = 1.0
"""How often the progress artifact is updated: each update is an API call."""


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def transfer_artifact_key(model_name: str) -> str:
    """A stable artifact key per model (Prefect keys: lowercase letters, digits, dashes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")
    return f"transfer-{slug or 'model'}"


def _describe(progress: TransferProgress | None, source_uri: str) -> str:
    if progress is None:
        return f"Transfer from {source_uri}: listing files"
    return (
        f"Transfer from {source_uri}: {progress.files_done}/{progress.files_total} files, "
        f"{progress.bytes_done}/{progress.bytes_total} bytes, {progress.elapsed_s:.0f} s"
    )


def _retry_if_temporary(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only errors that say retrying can help (TemporaryError)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, TemporaryError)


@task(
    retries=2,
    retry_delay_seconds=15,
    retry_condition_fn=_retry_if_temporary,
    timeout_seconds=6 * 3600,
    # The source spec carries credentials: never hash or persist the inputs.
    cache_policy=NO_CACHE,
    task_run_name="transfer-{model_name}",
)
def transfer_model_local(
    source: ModelSourceSpec, dest: str, model_name: str, workers: int = 4
) -> TransferResult:
    """Copy ``source`` into ``dest`` on this machine and verify every file.

    The engine runs in a worker thread; this (the task's) thread publishes its progress,
    so the artifact calls keep the task's Prefect context.
    """
    env = {**os.environ, **source.credentials_env}
    model_source = parse_source(source.uri, env)
    logger = _logger()
    logger.info("transferring %s from %s into %s", model_name, model_source.uri, dest)
    # async_dispatch types the call as UUID-or-coroutine; from sync code it is a UUID.
    artifact_id = cast(
        UUID,
        create_progress_artifact(
            progress=0.0,
            key=transfer_artifact_key(model_name),
            description=_describe(None, model_source.uri),
        ),
    )
    latest: list[TransferProgress] = []
    published = -1.0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="transfer-main") as runner:
        future = runner.submit(
            transfer_model, model_source, Path(dest), workers=workers, progress=latest.append
        )
        while True:
            try:
                result = future.result(timeout=ARTIFACT_INTERVAL_S)
                break
            except TimeoutError:
                pass
            if latest:
                current = latest[-1]
                latest.clear()
                percent = round(100.0 * current.fraction, 1)
                if percent != published:
                    update_progress_artifact(
                        artifact_id, percent, description=_describe(current, model_source.uri)
                    )
                    published = percent
                logger.info(_describe(current, model_source.uri))
    final = TransferProgress(
        files_total=result.files,
        files_done=result.files,
        bytes_total=result.bytes_total,
        bytes_done=result.bytes_total,
        elapsed_s=result.seconds,
    )
    update_progress_artifact(artifact_id, 100.0, description=_describe(final, model_source.uri))
    logger.info(
        "%s: %d files verified, %d copied (%d bytes) in %.1f s, manifest %s",
        model_name,
        result.files,
        result.files_copied,
        result.bytes_copied,
        result.seconds,
        result.manifest.sha256(),
    )
    return result
