"""Tasks for LoRA adapters: read what an adapter is, and register it under its base model."""

from __future__ import annotations

from typing import Any

from prefect import task

from budcluster.modelfacts.lora import AdapterFacts, load_adapter_facts
from budcluster.store import lora_adapters
from tasks._logging import task_logger
from tasks._store import results_store


# Like the model's facts: only headers and the config are read, maybe from a slow mount.
@task(retries=2, retry_delay_seconds=5, timeout_seconds=300, task_run_name="adapter-facts")
def read_adapter_facts(adapter_path: str) -> AdapterFacts:
    return load_adapter_facts(adapter_path)


# A short store write; a retry covers a dropped connection.
@task(retries=2, retry_delay_seconds=2, timeout_seconds=60, task_run_name="register-adapters")
def register_adapters(model_id: int, adapters: list[dict[str, Any]]) -> list[int]:
    """Register each ``{"name", "source_uri", "format", "rank", "alpha"}`` under the model."""
    with results_store().session() as session:
        ids = [
            lora_adapters.register_adapter(session, model_id=model_id, **adapter).id
            for adapter in adapters
        ]
    task_logger(__name__).info(
        "model %s: adapters %s registered", model_id, ", ".join(a["name"] for a in adapters)
    )
    return ids
