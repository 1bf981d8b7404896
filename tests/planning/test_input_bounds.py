"""Bad planner input is refused in one line that names the field: image references that
are not OCI references, unknown image keys, and numbers no deployment could mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.planning import PlanRequest
from budcluster.planning.images import image_for

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
runner = CliRunner()


@pytest.fixture
def inventory(tmp_path: Path, hw: Path) -> Path:
    parsed = runner.invoke(
        app,
        [
            "hardware",
            "parse",
            "--nvidia-smi-xml",
            str(hw / "nvidia-smi-xml" / "a10g_telegraf.xml"),
            "--json",
        ],
    )
    assert parsed.exit_code == 0, parsed.output
    path = tmp_path / "a10g.json"
    path.write_text(parsed.output)
    return path


def _plan(inventory: Path, *extra: str) -> tuple[int, str]:
    model = str(MODELS / "Qwen2.5-0.5B-Instruct")
    # A wide terminal keeps the usage-error box from wrapping the message.
    result = runner.invoke(
        app,
        ["plan", "--model", model, "--inventory", str(inventory), "--json", *extra],
        env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"},
    )
    return result.exit_code, result.output


def _error_lines(output: str) -> list[str]:
    """The lines of a usage-error box that carry text, less the box and the usage hint."""
    lines = [line.strip(" │╭╮╰╯─") for line in output.splitlines()]
    return [
        line
        for line in lines
        if line and not line.startswith(("Usage:", "Try ", "Error")) and line.strip("─")
    ]


@pytest.mark.parametrize(
    "item",
    [
        "vllm-cuda=evil{{x}}",
        "vllm-cuda=--privileged",
        "vllm-cuda=registry.local/vllm:tag with space",
        "vllm-cuda=vllm/VLLM:1",
        "vllm-cuda=repo@sha256:abc",
    ],
)
def test_cli_refuses_an_image_that_is_not_an_oci_reference(inventory: Path, item: str) -> None:
    code, output = _plan(inventory, "--image", item)
    assert code != 0
    assert "Traceback" not in output
    errors = _error_lines(output)
    assert len(errors) == 1, output
    assert "--image" in errors[0] and "OCI image reference" in errors[0], errors
    assert "e.g." in errors[0]  # says what a good one looks like


def test_cli_refuses_an_unknown_image_key(inventory: Path) -> None:
    code, output = _plan(inventory, "--image", "vllm-tpu=registry.local/vllm:1")
    assert code != 0 and "Traceback" not in output
    (error,) = _error_lines(output)
    assert "--image" in error and "vllm-tpu" in error and "vllm-cuda" in error


def test_cli_accepts_good_references_and_uses_them(inventory: Path) -> None:
    digest = "sha256:" + "a" * 64
    for image in (
        "registry.local:5000/team/vllm-openai:v0.11.0",
        f"vllm/vllm-openai@{digest}",
        f"localhost/vllm:1.0@{digest}",
        "[::1]:5000/vllm:latest",
    ):
        code, output = _plan(inventory, "--image", f"vllm-cuda={image}")
        assert code == 0, output
        assert json.loads(output)["image"] == image


@pytest.mark.parametrize(
    "option",
    [
        ("--max-model-len", "1000000000000000000000000000000"),
        ("--max-model-len", "-5"),
        ("--concurrency", "0"),
        ("--concurrency", "100000000"),
        ("--replicas", "100000"),
    ],
)
def test_cli_refuses_absurd_numbers_in_one_line(inventory: Path, option: tuple[str, str]) -> None:
    code, output = _plan(inventory, *option)
    assert code != 0 and "Traceback" not in output
    (error,) = _error_lines(output)
    assert option[0] in error and "from" in error, error


def test_plan_request_refuses_bad_images_and_keys() -> None:
    with pytest.raises(ValidationError, match="OCI image reference"):
        PlanRequest(images={"vllm-cpu": "evil{{x}}"})
    with pytest.raises(ValidationError, match="vllm-cpu"):
        PlanRequest(images={"vllm-gpu": "vllm/vllm-openai:v1"})
    assert image_for("vllm-cpu", PlanRequest(images={"vllm-cpu": "a/b:1"}).images) == "a/b:1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_model_len", 10**30),
        ("max_model_len", 4.0),
        ("max_model_len", True),
        ("concurrency", -1),
        ("concurrency", 2.5),
        ("replicas", 10**6),
        ("gpu_memory_utilization", float("nan")),
        ("gpu_memory_utilization", float("inf")),
        ("cpu_memory_utilization", 0),
    ],
)
def test_plan_request_refuses_non_finite_negative_fractional_and_absurd_numbers(
    field: str, value: object
) -> None:
    with pytest.raises(ValidationError) as caught:
        PlanRequest.model_validate({field: value})
    assert caught.value.errors()[0]["loc"][0] == field
