"""``budcluster lora``: build the demo adapter, convert PEFT adapters to GGUF, list the
adapters registered in the store."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from budcluster.cli.errors import exits_on_error

app = typer.Typer(help="LoRA adapters: the demo adapter, PEFT -> GGUF, the registered ones.")


@app.command("build-demo")
@exits_on_error()
def build_demo(
    model_dir: Path = typer.Argument(..., help="The demo model's directory (its config.json)."),
    out_dir: Path = typer.Argument(..., help="Directory to write the PEFT adapter into."),
    rank: int = typer.Option(8, min=1, max=512, help="LoRA rank r."),
) -> None:
    """Write a seeded PEFT LoRA for the demo model and print its facts as JSON."""
    from budcluster.demo_lora import build_demo_lora
    from budcluster.modelfacts.lora import load_adapter_facts

    built = build_demo_lora(model_dir, out_dir, rank=rank)
    typer.echo(load_adapter_facts(built).model_dump_json(indent=2))


@app.command("convert")
@exits_on_error()
def convert(
    adapter_dir: Path = typer.Argument(..., help="PEFT adapter directory."),
    base: Path = typer.Option(..., "--base", help="The base model's HF directory (config.json)."),
    out: Path = typer.Option(..., "--out", help="GGUF file to write (its own directory)."),
    outtype: str = typer.Option("f32", help="f32, f16, bf16 or q8_0."),
) -> None:
    """Convert a PEFT adapter to a GGUF adapter with the sdist's convert_lora_to_gguf.py."""
    from budcluster.modelfacts.lora import load_adapter_facts
    from budcluster.runtimes.gguf_convert import convert_lora_to_gguf

    written = convert_lora_to_gguf(adapter_dir, base, out, outtype=outtype)
    typer.echo(load_adapter_facts(written).model_dump_json(indent=2))


@app.command("list")
@exits_on_error()
def list_registered(
    database_url: str | None = typer.Option(None, "--database-url", help="Override the store URL."),
) -> None:
    """The adapters registered in the store, with their base model, as JSON lines."""
    from budcluster.settings import get_settings
    from budcluster.store import Store
    from budcluster.store.engine import EngineOptions
    from budcluster.store.lora_adapters import list_adapters
    from budcluster.store.models_catalog import get_model

    settings = get_settings()
    store = Store(
        database_url or settings.resolved_database_url(), EngineOptions.from_settings(settings)
    )
    try:
        with store.session() as session:
            for adapter in list_adapters(session):
                model = get_model(session, adapter.model_id)
                row = {
                    "model": model.name,
                    "model_uri": model.source_uri,
                    "name": adapter.name,
                    "source_uri": adapter.source_uri,
                    "format": adapter.format.value,
                    "rank": adapter.rank,
                    "alpha": adapter.alpha,
                }
                typer.echo(json.dumps(row))
    finally:
        store.dispose()
