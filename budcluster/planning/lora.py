"""LoRA adapters in a plan: the engine flags that load them and how a request selects one.

llama-server loads each GGUF adapter with ``--lora-scaled FILE:0``, at a global scale of
0, so a request without a ``lora`` field is answered by the base model and one with
``"lora": [{"id": N, "scale": 1.0}]`` by adapter N (the order of the flags). Its
``--lora-init-without-apply`` is not used: the server built here (llama-cpp-python 0.3.36)
still applies the adapters at scale 1 with it. vLLM loads PEFT directories with ``--enable-lora --lora-modules
name=DIR ...`` and serves each under its name: a request selects one with ``model``.

The plan carries the adapters' paths as the controller sees them; the target replaces
them with the staged directories (:func:`relocate_adapters`), as it does for the model. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from budcluster.errors import ConfigurationError
from budcluster.modelfacts.lora import AdapterFacts
from budcluster.planning.models import Engine, PlannedAdapter, RuntimePlan

ADAPTER_MOUNT = "/adapters"
"""Where a container sees the adapters: ``/adapters/<name>``."""
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for ``--max-lora-rank``."""
_ENGINE_FORMAT = {"llama.cpp": "gguf", "vllm": "peft"}


def staged_adapter_name(adapter_name: str, source_uri: str) -> str:
    """The name an adapter is staged under: its own name and a digest of its source, so
    two deployments naming different adapters alike never share a directory."""
    digest = hashlib.sha256(source_uri.encode()).hexdigest()[:12]
    return f"lora-{adapter_name}-{digest}"


def planned_adapter(name: str, facts: AdapterFacts) -> PlannedAdapter:
    """The adapter ``facts`` describe, served under ``name``."""
    return PlannedAdapter(
        name=name, format=facts.format, rank=facts.rank, source_path=facts.path, file=facts.file
    )


def _location(adapter: PlannedAdapter, directory: str) -> str:
    where = directory.rstrip("/") + (f"/{adapter.file}" if adapter.file else "")
    # Both engines split their adapter lists (llama.cpp's --lora-scaled takes FILE:SCALE
    # items separated by commas, vLLM reads an item with a comma as JSON), so a comma or a
    # colon would load the wrong thing.
    if "," in where or ":" in where:
        raise ConfigurationError(
            f"adapters: the path {where!r} of adapter {adapter.name!r} holds a ',' or ':', "
            "which the engine would read as a separator; stage it under a path without one"
        )
    return where


def _max_lora_rank(adapters: Sequence[PlannedAdapter]) -> int | None:
    ranks = [a.rank for a in adapters if a.rank is not None]
    if not ranks:
        return None
    for allowed in VLLM_MAX_LORA_RANKS:
        if allowed >= max(ranks):
            return allowed
    raise ConfigurationError(
        f"adapters: rank {max(ranks)} is above vLLM's largest --max-lora-rank "
        f"({VLLM_MAX_LORA_RANKS[-1]}); use an adapter of a smaller rank"
    )


def adapter_args(
    engine: Engine, adapters: Sequence[PlannedAdapter], directories: Mapping[str, str]
) -> list[str]:
    """The engine flags that load ``adapters``, each from ``directories[name]``."""
    if not adapters:
        return []
    missing = sorted(a.name for a in adapters if a.name not in directories)
    if missing:
        raise ConfigurationError(
            f"adapters {missing} have no staged directory; stage them with the model first"
        )
    if engine == "llama.cpp":
        args: list[str] = []
        for adapter in adapters:
            args += ["--lora-scaled", f"{_location(adapter, directories[adapter.name])}:0"]
        return args
    args = ["--enable-lora", "--max-loras", str(len(adapters))]
    rank = _max_lora_rank(adapters)
    if rank is not None:
        args += ["--max-lora-rank", str(rank)]
    modules = [f"{a.name}={_location(a, directories[a.name])}" for a in adapters]
    return [*args, "--lora-modules", *modules]


def check_adapters(engine: Engine, adapters: Sequence[PlannedAdapter], served: str) -> None:
    """Each adapter in the format the engine loads, under a name of its own."""
    wanted = _ENGINE_FORMAT[engine]
    names = [a.name for a in adapters]
    for adapter in adapters:
        if adapter.format != wanted:
            raise ConfigurationError(
                f"adapters: {adapter.name!r} is a {adapter.format} adapter, but {engine} loads "
                f"{wanted} adapters; "
                + (
                    "convert it with llama.cpp's convert_lora_to_gguf.py (see docs/lora.md)"
                    if engine == "llama.cpp"
                    else "give the PEFT directory (adapter_config.json) it was converted from"
                )
            )
        if names.count(adapter.name) > 1:
            raise ConfigurationError(f"adapters: the name {adapter.name!r} is given twice")
        if adapter.name == served:
            raise ConfigurationError(
                f"adapters: {adapter.name!r} is the deployment's own served model name; "
                "give the adapter another name"
            )


def with_adapters(plan: RuntimePlan, adapters: Sequence[PlannedAdapter]) -> RuntimePlan:
    """``plan`` serving ``adapters`` too: their flags in the container and host argv."""
    if not adapters:
        return plan
    check_adapters(plan.engine, adapters, plan.served_model_name)
    in_container = {a.name: f"{ADAPTER_MOUNT}/{a.name}" for a in adapters}
    on_controller = {a.name: a.source_path for a in adapters}
    names = ", ".join(a.name for a in adapters)
    if plan.engine == "llama.cpp":
        how = (
            f"LoRA adapters {names}: llama-server loads each at scale 0 (--lora-scaled "
            "FILE:0); a request selects adapter N with "
            '"lora": [{"id": N, "scale": 1.0}], without it the base model answers'
        )
    else:
        how = (
            f"LoRA adapters {names}: vLLM serves each under its name (--enable-lora "
            "--lora-modules); a request selects one by naming it as its model"
        )
    return plan.model_copy(
        update={
            "args": [*plan.args, *adapter_args(plan.engine, adapters, in_container)],
            "host_command": [
                *plan.host_command,
                *adapter_args(plan.engine, adapters, on_controller),
            ],
            "decisions": [*plan.decisions, how],
            "adapters": list(adapters),
        }
    )


def relocate_adapters(
    argv: Sequence[str], plan: RuntimePlan, staged: Mapping[str, str]
) -> list[str]:
    """``argv`` (the plan's host command) with each adapter loaded from ``staged[name]``."""
    if not plan.adapters:
        return list(argv)
    planned = adapter_args(
        plan.engine, plan.adapters, {a.name: a.source_path for a in plan.adapters}
    )
    width = len(planned)
    for start in range(len(argv) - width + 1):
        if list(argv[start : start + width]) == planned:
            relocated = adapter_args(plan.engine, plan.adapters, staged)
            return [*argv[:start], *relocated, *argv[start + width :]]
    raise ConfigurationError(
        "the plan's host command does not hold the adapter flags the planner wrote; re-plan"
    )


def adapter_selection(plan: RuntimePlan, adapter: str | None) -> tuple[str, dict[str, object]]:
    """The model name and the extra request fields that make ``adapter`` answer a request
    (the base model for None).

    On llama-server the base model is asked for with every adapter at scale 0 rather than
    with no ``lora`` field: without the field the server (0.3.36) reuses a slot's prompt
    cache even when an adapter computed it, and the base answer comes out mixed.
    """
    names = [a.name for a in plan.adapters]
    if adapter is None:
        if plan.engine == "llama.cpp" and names:
            return plan.served_model_name, {
                "lora": [{"id": i, "scale": 0.0} for i in range(len(names))]
            }
        return plan.served_model_name, {}
    if adapter not in names:
        raise ConfigurationError(
            f"adapter {adapter!r} is not served by {plan.served_model_name!r}; its adapters "
            f"are {names or 'none'}"
        )
    if plan.engine == "vllm":
        return adapter, {}
    chosen = names.index(adapter)
    scales = [{"id": i, "scale": 1.0 if i == chosen else 0.0} for i in range(len(names))]
    return plan.served_model_name, {"lora": scales}
