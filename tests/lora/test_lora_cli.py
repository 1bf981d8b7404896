"""``budcluster lora``: the demo adapter and the registered adapters, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.demo_model import build_demo_model
from budcluster.store import Store, migrate
from budcluster.store.lora_adapters import register_adapter
from budcluster.store.models_catalog import save_model


def test_build_demo_writes_a_peft_adapter(tmp_path: Path) -> None:
    model = build_demo_model(tmp_path / "demo", "tiny", gguf=False)
    result = CliRunner().invoke(
        app, ["lora", "build-demo", str(model.path), str(tmp_path / "tone"), "--rank", "4"]
    )
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert (facts["format"], facts["rank"], facts["alpha"]) == ("peft", 4, 16.0)
    assert facts["target_modules"] == ["o_proj", "down_proj"]


def test_list_shows_the_registered_adapters(database_url: str) -> None:
    migrate.upgrade(database_url)
    store = Store(database_url)
    try:
        with store.session() as session:
            model = save_model(session, name="demo", source_uri="/m/demo", format="gguf", files=[])
            register_adapter(
                session, model_id=model.id, name="tone", source_uri="/a/tone", format="gguf"
            )
    finally:
        store.dispose()
    result = CliRunner().invoke(app, ["lora", "list", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.output.splitlines()] == [
        {"model": "demo", "model_uri": "/m/demo", "name": "tone", "source_uri": "/a/tone",
         "format": "gguf", "rank": None, "alpha": None}
    ]  # fmt: skip
