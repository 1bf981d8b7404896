"""``budcluster plan``: print the RuntimePlan for a model on the given node inventories."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError

from budcluster.cli.errors import exits_on_error
from budcluster.errors import ConfigurationError
from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import NoFeasiblePlan, PlanRequest, plan
from budcluster.planning.image_refs import InvalidImageReference, check_image_reference
from budcluster.planning.images import DEFAULT_IMAGES
from budcluster.planning.report import plan_markdown

EXIT_NO_FEASIBLE_PLAN = 2

app = typer.Typer(
    help="Plan a runtime: which device, engine, TP size, image and arguments fit the model.",
    invoke_without_command=True,
)


def _inventory(path: Path) -> NodeInventory:
    try:
        return NodeInventory.model_validate_json(path.read_text())
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--inventory"
        ) from exc
    except ValidationError as exc:
        raise typer.BadParameter(
            f"{path} is not a NodeInventory JSON ({exc.error_count()} errors, first: "
            f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}); produce one with "
            "'budcluster hardware detect --json' or 'budcluster hardware parse ... --json'",
            param_hint="--inventory",
        ) from exc


def _image_overrides(items: list[str]) -> dict[str, str]:
    """``--image KEY=IMAGE`` pairs, each key known and each image an OCI reference."""
    images: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise typer.BadParameter(f"{item!r}: use KEY=IMAGE", param_hint="--image")
        if key not in DEFAULT_IMAGES:
            raise typer.BadParameter(
                f"unknown key {key!r} in {item!r}; KEY is one of {', '.join(DEFAULT_IMAGES)}",
                param_hint="--image",
            )
        try:
            images[key] = check_image_reference(value)
        except InvalidImageReference as exc:
            raise typer.BadParameter(f"{key}: {exc}", param_hint="--image") from exc
    return images


@app.callback()
@exits_on_error()
def main(
    model: Path = typer.Option(..., help="HF model directory, its config.json, or a .gguf file."),
    inventory: list[Path] = typer.Option(..., help="NodeInventory JSON; repeat for more nodes."),
    device: str = typer.Option("auto", help="auto | cuda | hpu | cpu"),
    max_model_len: int | None = typer.Option(
        None, help="Context length (default min(model, 8192))."
    ),
    concurrency: int = typer.Option(1, help="Sequences that must fit at max-model-len."),
    replicas: str = typer.Option("auto", help="auto or a number."),
    engine: str = typer.Option("auto", help="auto | vllm | llama.cpp"),
    dtype: str | None = typer.Option(None, help="Runtime dtype (default: the model's)."),
    quantization: str | None = typer.Option(None, help="e.g. fp8"),
    image: list[str] = typer.Option(
        [],
        help="Override an image: KEY=IMAGE with KEY in "
        + ", ".join(DEFAULT_IMAGES)
        + " and IMAGE an OCI reference (registry/name:tag or @sha256:digest).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the plan or the error)."),
) -> None:
    """Plan MODEL on the nodes in the --inventory files."""
    images = _image_overrides(image)
    try:
        request = PlanRequest(
            device=device,
            max_model_len=max_model_len,
            concurrency=concurrency,
            replicas=int(replicas) if replicas.isdigit() else replicas,
            engine=engine,
            dtype=dtype,
            quantization=quantization,
            images=images,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        option = "--" + str(first["loc"][0]).replace("_", "-")
        message = str(first["msg"]).removeprefix("Value error, ")
        raise typer.BadParameter(message, param_hint=option) from exc
    inventories = [_inventory(path) for path in inventory]
    try:
        facts = load_model_facts(model)
        result = plan(facts, inventories, request)
    except NoFeasiblePlan as exc:
        if as_json:
            typer.echo(json.dumps(exc.to_dict(), indent=2))
        else:
            typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_NO_FEASIBLE_PLAN) from exc
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(result.model_dump_json(indent=2) if as_json else plan_markdown(result))
