"""LoRA adapter facts: format, rank and alpha, read from the adapter's own files.

Two formats are read: a Hugging Face PEFT directory (``adapter_config.json`` beside
``adapter_model.safetensors``), which vLLM loads, and a GGUF adapter (``general.type``
``adapter``, ``adapter.type`` ``lora``), which llama-server loads with ``--lora``. Only
headers and the config are read, so a metadata fetch of a remote adapter is enough.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from budcluster.modelfacts.facts import ModelFactsError
from budcluster.modelfacts.gguf import read_gguf_header

AdapterFormat = Literal["gguf", "peft"]

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


class AdapterFacts(BaseModel):
    """What serving an adapter needs to know about it."""

    path: str = Field(description="Where the facts were read (a local directory).")
    format: AdapterFormat
    rank: int | None = Field(None, description="LoRA rank r (the largest, if it varies).")
    alpha: float | None = Field(None, description="LoRA alpha; the update is scaled alpha/r.")
    file: str | None = Field(
        None, description="The GGUF file inside the directory; None for a PEFT directory."
    )
    target_modules: list[str] = Field(default_factory=list)
    base_model: str | None = Field(None, description="The base model the adapter names.")


def _from_peft(directory: Path) -> AdapterFacts:
    config = json.loads((directory / PEFT_CONFIG).read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ModelFactsError(f"{directory / PEFT_CONFIG}: expected a JSON object")
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise ModelFactsError(
            f"{directory / PEFT_CONFIG}: peft_type {config.get('peft_type')!r} is not LORA; "
            "only LoRA adapters are served"
        )
    ranks = [int(config["r"])] if "r" in config else []
    ranks += [int(r) for r in (config.get("rank_pattern") or {}).values()]
    targets = config.get("target_modules") or []
    return AdapterFacts(
        path=str(directory),
        format="peft",
        rank=max(ranks) if ranks else None,
        alpha=float(config["lora_alpha"]) if "lora_alpha" in config else None,
        target_modules=[targets] if isinstance(targets, str) else [str(t) for t in targets],
        base_model=config.get("base_model_name_or_path"),
    )


def _from_gguf(file: Path) -> AdapterFacts:
    header = read_gguf_header(file)
    kind = header.metadata.get("general.type")
    adapter_type = header.metadata.get("adapter.type")
    if kind != "adapter" or adapter_type != "lora":
        raise ModelFactsError(
            f"{file}: general.type {kind!r}, adapter.type {adapter_type!r}; a LoRA adapter "
            "GGUF has 'adapter' and 'lora' (convert a PEFT adapter with convert_lora_to_gguf.py)"
        )
    alpha = header.metadata.get("adapter.lora.alpha")
    return AdapterFacts(
        path=str(file.parent),
        format="gguf",
        rank=header.lora_rank,
        alpha=float(alpha) if isinstance(alpha, int | float) else None,
        file=file.name,
    )


def load_adapter_facts(path: str | Path) -> AdapterFacts:
    """Facts from a PEFT directory, a GGUF adapter file, or a directory with one GGUF."""
    target = Path(path)
    try:
        if target.is_file() and target.suffix == ".gguf":
            return _from_gguf(target)
        if target.is_dir() and (target / PEFT_CONFIG).is_file():
            if not any((target / name).exists() for name in PEFT_WEIGHTS):
                raise ModelFactsError(
                    f"{target}: {PEFT_CONFIG} has no weights beside it "
                    f"({' or '.join(PEFT_WEIGHTS)})"
                )
            return _from_peft(target)
        if target.is_dir():
            ggufs = sorted(target.glob("*.gguf"))
            if len(ggufs) == 1:
                return _from_gguf(ggufs[0])
            if len(ggufs) > 1:
                raise ModelFactsError(
                    f"{target}: holds {len(ggufs)} GGUF files ({', '.join(g.name for g in ggufs)});"
                    " give each adapter a directory of its own"
                )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFactsError(f"adapter {target}: {exc}") from exc
    raise ModelFactsError(
        f"adapter {target}: expected a PEFT directory ({PEFT_CONFIG} and "
        f"{PEFT_WEIGHTS[0]}) or a LoRA GGUF file; nothing of that kind was found"
    )
