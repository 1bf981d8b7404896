"""The offline demo model: shape, parameter count, determinism, tokenizer, chat template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from typer.testing import CliRunner

from budcluster.cli.app import app as root_app
from budcluster.demo_model import (
    CHAT_TEMPLATE,
    FACTS_FILE,
    SIZES,
    SPECIAL_TOKENS,
    DemoModel,
    DemoModelError,
    build_demo_model,
)
from budcluster.modelfacts import load_model_facts

REPO = Path(__file__).resolve().parents[2]


def test_tiny_facts_read_back_by_modelfacts(demo_hf: DemoModel) -> None:
    facts = load_model_facts(demo_hf.path)
    spec = SIZES["tiny"]
    assert facts.architecture == "LlamaForCausalLM"
    assert facts.num_layers == spec.num_layers == demo_hf.num_layers
    assert facts.num_attention_heads == spec.num_heads
    assert facts.num_kv_heads == spec.num_kv_heads
    assert facts.head_dim == spec.head_dim
    assert facts.vocab_size == demo_hf.vocab_size == spec.vocab_size
    # modelfacts counts elements in the safetensors headers: an independent count.
    assert facts.parameter_count == demo_hf.parameter_count
    assert 1_400_000 <= demo_hf.parameter_count <= 1_600_000
    assert facts.weight_bytes == 4 * demo_hf.parameter_count  # float32
    recorded = json.loads((demo_hf.path / FACTS_FILE).read_text())
    assert recorded["parameter_count"] == demo_hf.parameter_count
    assert recorded["gguf_file"] is None


def test_small_is_about_30m_parameters(tmp_path: Path) -> None:
    model = build_demo_model(tmp_path / "small", "small", gguf=False)
    facts = load_model_facts(model.path)
    assert model.vocab_size == SIZES["small"].vocab_size
    assert facts.parameter_count == model.parameter_count
    assert 28_000_000 <= model.parameter_count <= 32_000_000


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path: Path, demo_hf: DemoModel) -> None:
    again = build_demo_model(tmp_path / "again", "tiny", gguf=False)
    for name in ("tokenizer.json", "config.json", "model.safetensors", "tokenizer_config.json"):
        assert (again.path / name).read_bytes() == (demo_hf.path / name).read_bytes(), name
    other = build_demo_model(tmp_path / "other", "tiny", gguf=False, seed=7)
    a = load_file(str(demo_hf.path / "model.safetensors"))
    b = load_file(str(other.path / "model.safetensors"))
    assert a.keys() == b.keys()
    assert not (a["lm_head.weight"] == b["lm_head.weight"]).all()


def test_tokenizer_round_trips_and_keeps_specials(demo_hf: DemoModel) -> None:
    tokenizer = Tokenizer.from_file(str(demo_hf.path / "tokenizer.json"))
    for index, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == index
    text = "Hello, wörld! 12345 def main() -> int: 你好\n\tend"
    ids = tokenizer.encode(text).ids
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text.encode())  # merges were learned, not just bytes
    chat = tokenizer.encode("<|user|>\nhi<|eos|>\n").ids
    assert tokenizer.token_to_id("<|user|>") in chat and tokenizer.token_to_id("<|eos|>") in chat


def test_chat_template_renders_roles_and_generation_prompt(demo_hf: DemoModel) -> None:
    config = json.loads((demo_hf.path / "tokenizer_config.json").read_text())
    assert config["chat_template"] == CHAT_TEMPLATE
    rendered = (
        jinja2.Environment()
        .from_string(config["chat_template"])
        .render(
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            add_generation_prompt=True,
        )
    )
    assert rendered == "<|system|>\nbe brief<|eos|>\n<|user|>\nhi<|eos|>\n<|assistant|>\n"


def test_special_tokens_read_the_bias_channel_negatively(demo_hf: DemoModel) -> None:
    weights = load_file(str(demo_hf.path / "model.safetensors"))
    n = len(SPECIAL_TOKENS)
    assert (weights["lm_head.weight"][:n, 0] < -1).all()
    assert (weights["model.embed_tokens.weight"][:, 0] == 1.0).all()
    for layer in range(demo_hf.num_layers):
        assert not weights[f"model.layers.{layer}.self_attn.o_proj.weight"][0].any()
        assert not weights[f"model.layers.{layer}.mlp.down_proj.weight"][0].any()


def test_unknown_size_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(DemoModelError, match=r"size='huge'.*tiny, small"):
        build_demo_model(tmp_path / "x", "huge", gguf=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DemoModelError, match="not a directory"):
        build_demo_model(tmp_path / "file", "tiny", gguf=False)


def test_cli_build_prints_facts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        root_app, ["demo-model", "build", str(tmp_path / "m"), "--size", "tiny", "--no-gguf"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["parameter_count"] == load_model_facts(tmp_path / "m").parameter_count
    bad = CliRunner().invoke(root_app, ["demo-model", "build", str(tmp_path / "n"), "--size", "x"])
    assert bad.exit_code == 2
    assert "--size" in bad.output


def test_script_wrapper_builds(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_demo_model.py"),
            str(tmp_path / "s"),
            "--no-gguf",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["size"] == "tiny"
    assert (tmp_path / "s" / "model.safetensors").exists()
