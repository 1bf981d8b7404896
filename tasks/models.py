"""Tasks that look at a model before it moves: where its metadata can be read from."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from budcluster.errors import ConfigurationError
from budcluster.modelfacts import ModelFacts
from budcluster.targets.base import ModelSourceSpec


def local_model_path(uri: str) -> Path | None:
    """The controller-local path of a directory or file:// source; None for remote ones."""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    if "://" not in uri:
        return Path(uri)
    return None


# Resolving touches only metadata; one retry covers a flaky network mount.
@task(retries=1, retry_delay_seconds=5, timeout_seconds=300, task_run_name="locate-model-metadata")
def locate_model_metadata(source: ModelSourceSpec) -> str:
    """A local path whose config.json / safetensors headers / GGUF header describe the model.

    Planning happens before any weights move, so remote sources are read for metadata
    only.
    """
    local = local_model_path(source.uri)
    if local is not None:
        if not local.exists():
            raise ConfigurationError(
                f"model uri {source.uri!r}: {local} does not exist on this machine; "
                "give an existing directory, s3://bucket/prefix or hf://org/name"
            )
        return str(local.resolve())
    from budcluster.transfer.metadata import fetch_metadata

    return str(fetch_metadata(source.uri, source.credentials_env))


def model_format(facts: ModelFacts) -> str:
    """The store's name for the model's format."""
    return "gguf" if facts.source_format == "gguf" or facts.gguf_file else "hf-safetensors"
