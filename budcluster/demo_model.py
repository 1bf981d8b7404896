"""An offline demo model: a tiny Llama-architecture model in Hugging Face format.

Built in seconds with no network: a byte-level BPE tokenizer trained with ``tokenizers``
on a corpus shipped in the package (plus seeded filler text), a chat template, seeded
random weights written with ``safetensors.numpy`` (no torch needed), config.json and
generation_config.json; optionally its GGUF through llama.cpp's ``convert_hf_to_gguf.py``.

The weights are random, so the text is nonsense, but every server treats the model like
a real one. One trick makes it useful for benchmarks: hidden channel 0 carries a constant
that no layer writes to, and the LM-head rows of the special tokens read it with a large
negative weight, so end-of-sequence is never sampled and completions run to ``max_tokens``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from budcluster.errors import ConfigurationError

SEED = 20240517
CORPUS_PATH = Path(__file__).with_name("demo_corpus.txt")
FACTS_FILE = "budcluster_demo.json"
SERVED_NAME = "demo"

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (BOS, EOS, PAD, *ROLE_TOKENS)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|eos|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

# Large enough to dominate the RMS-normalised hidden state, so special logits stay far below.
_BIAS_CHANNEL_VALUE = 1.0
_SPECIAL_LOGIT_WEIGHT = -8.0
_INIT_STD = 0.02


class DemoModelError(ConfigurationError):
    """Bad arguments for the demo model builder."""


@dataclass(frozen=True)
class DemoModelSize:
    name: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int


SIZES: dict[str, DemoModelSize] = {
    # ~1.5M parameters: loads instantly; the network is never the bottleneck.
    "tiny": DemoModelSize("tiny", 2048, 128, 352, 5, 2, 2, 64, 2048),
    # ~30M parameters: enough work per token that the server, not the client, is measured.
    "small": DemoModelSize("small", 4096, 512, 1408, 8, 8, 8, 64, 2048),
}


@dataclass(frozen=True)
class DemoModel:
    """What :func:`build_demo_model` made; also written to ``<dir>/budcluster_demo.json``."""

    path: Path
    size: str
    parameter_count: int
    vocab_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    hidden_size: int
    seed: int
    served_name: str
    gguf_file: Path | None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["gguf_file"] = str(self.gguf_file) if self.gguf_file else None
        return data


def parameter_count(size: DemoModelSize, vocab_size: int) -> int:
    """Llama parameters: untied embeddings and LM head, q/k/v/o, a gated MLP, RMSNorms."""
    q_dim = size.num_heads * size.head_dim
    kv_dim = size.num_kv_heads * size.head_dim
    attention = 2 * size.hidden_size * q_dim + 2 * size.hidden_size * kv_dim
    mlp = 3 * size.hidden_size * size.intermediate_size
    per_layer = attention + mlp + 2 * size.hidden_size
    return 2 * vocab_size * size.hidden_size + size.num_layers * per_layer + size.hidden_size


def _training_text(seed: int) -> Iterator[str]:
    """The shipped corpus, then seeded filler (reshuffled words, invented words, numbers).

    The filler gives BPE enough distinct material to reach the target vocabulary size
    while staying byte-for-byte the same on every machine for a given seed.
    """
    lines = CORPUS_PATH.read_text(encoding="utf-8").splitlines()
    yield from lines
    rng = random.Random(seed)
    words = [w for line in lines for w in line.split()]
    syllables = [
        *[
            "ka",
            "lo",
            "mi",
            "ne",
            "ru",
            "sa",
            "ti",
            "vo",
            "zen",
            "bar",
            "qu",
            "ix",
            "ol",
            "ph",
            "dra",
            "mu",
            "el",
            "go",
            "fi",
            "str",
            "an",
            "te",
            "ko",
            "wy",
        ]
    ]
    for _ in range(6000):
        parts = [rng.choice(words) for _ in range(rng.randint(6, 16))]
        parts += [
            "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(3)
        ]
        parts += [str(rng.randint(0, 10 ** rng.randint(1, 6)))]
        rng.shuffle(parts)
        yield " ".join(parts)


def train_tokenizer(vocab_size: int, seed: int = SEED) -> Tokenizer:
    """A GPT-2-style byte-level BPE tokenizer (GPT-2's split regex), trained offline."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(seed), trainer=trainer)
    return tokenizer


def random_weights(size: DemoModelSize, vocab_size: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded float32 weights with HF Llama tensor names, and the never-EOS bias channel."""
    rng = np.random.default_rng(seed)
    hidden, inter = size.hidden_size, size.intermediate_size
    q_dim, kv_dim = size.num_heads * size.head_dim, size.num_kv_heads * size.head_dim

    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * _INIT_STD).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    embed = normal(vocab_size, hidden)
    embed[:, 0] = _BIAS_CHANNEL_VALUE
    tensors = {"model.embed_tokens.weight": embed}
    for layer in range(size.num_layers):
        p = f"model.layers.{layer}"
        o_proj, down_proj = normal(hidden, q_dim), normal(hidden, inter)
        # Rows that write hidden channel 0 stay zero, so the constant survives every layer.
        o_proj[0, :] = 0.0
        down_proj[0, :] = 0.0
        tensors |= {
            f"{p}.self_attn.q_proj.weight": normal(q_dim, hidden),
            f"{p}.self_attn.k_proj.weight": normal(kv_dim, hidden),
            f"{p}.self_attn.v_proj.weight": normal(kv_dim, hidden),
            f"{p}.self_attn.o_proj.weight": o_proj,
            f"{p}.mlp.gate_proj.weight": normal(inter, hidden),
            f"{p}.mlp.up_proj.weight": normal(inter, hidden),
            f"{p}.mlp.down_proj.weight": down_proj,
            f"{p}.input_layernorm.weight": ones(hidden),
            f"{p}.post_attention_layernorm.weight": ones(hidden),
        }
    lm_head = normal(vocab_size, hidden)
    lm_head[: len(SPECIAL_TOKENS), 0] = _SPECIAL_LOGIT_WEIGHT
    tensors["model.norm.weight"] = ones(hidden)
    tensors["lm_head.weight"] = lm_head
    return tensors


def _config(size: DemoModelSize, vocab_size: int) -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": size.hidden_size,
        "intermediate_size": size.intermediate_size,
        "num_hidden_layers": size.num_layers,
        "num_attention_heads": size.num_heads,
        "num_key_value_heads": size.num_kv_heads,
        "head_dim": size.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": size.max_position_embeddings,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": _INIT_STD,
        "bos_token_id": SPECIAL_TOKENS.index(BOS),
        "eos_token_id": SPECIAL_TOKENS.index(EOS),
        "pad_token_id": SPECIAL_TOKENS.index(PAD),
        "torch_dtype": "float32",
        "use_cache": True,
    }


def _tokenizer_config(max_length: int) -> dict[str, object]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_length,
        "chat_template": CHAT_TEMPLATE,
    }


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_demo_model(
    out_dir: Path,
    size: str = "tiny",
    *,
    gguf: bool = True,
    seed: int = SEED,
    gguf_outtype: str = "f16",
    cache_dir: Path | None = None,
) -> DemoModel:
    """Write the demo model into ``out_dir`` (created; existing demo files are replaced).

    ``gguf=True`` also writes ``<out_dir>/demo-<size>.<outtype>.gguf``; that needs the
    llama-cpp-python sdist and the converter venv in the cache (built on first use).
    """
    if size not in SIZES:
        raise DemoModelError(f"size={size!r} is unknown; use one of {', '.join(SIZES)}")
    spec = SIZES[size]
    out_dir = out_dir.expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoModelError(f"OUT_DIR {out_dir} exists and is not a directory; pick another path")
    out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(spec.vocab_size, seed)
    vocab_size = tokenizer.get_vocab_size()
    tokenizer.save(str(out_dir / "tokenizer.json"))
    _write_json(out_dir / "tokenizer_config.json", _tokenizer_config(spec.max_position_embeddings))
    _write_json(
        out_dir / "special_tokens_map.json", {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    )
    _write_json(out_dir / "config.json", _config(spec, vocab_size))
    _write_json(
        out_dir / "generation_config.json",
        {
            "bos_token_id": SPECIAL_TOKENS.index(BOS),
            "eos_token_id": SPECIAL_TOKENS.index(EOS),
            "pad_token_id": SPECIAL_TOKENS.index(PAD),
            "do_sample": True,
            "temperature": 1.0,
        },
    )
    save_file(
        random_weights(spec, vocab_size, seed),
        str(out_dir / "model.safetensors"),
        metadata={"format": "pt"},
    )
    # save_file creates 0600; a runtime in a container runs as another user and must read it.
    (out_dir / "model.safetensors").chmod(0o644)
    for stale in out_dir.glob("*.gguf"):
        stale.unlink()
    gguf_file = None
    if gguf:
        # Imported here: the HF-only path must not need the runtimes cache at all.
        from budcluster.runtimes.gguf_convert import convert_hf_to_gguf

        gguf_file = convert_hf_to_gguf(
            out_dir,
            out_dir / f"demo-{size}.{gguf_outtype}.gguf",
            outtype=gguf_outtype,
            cache_dir=cache_dir,
        )
    model = DemoModel(
        path=out_dir,
        size=size,
        parameter_count=parameter_count(spec, vocab_size),
        vocab_size=vocab_size,
        num_layers=spec.num_layers,
        num_heads=spec.num_heads,
        num_kv_heads=spec.num_kv_heads,
        hidden_size=spec.hidden_size,
        seed=seed,
        served_name=SERVED_NAME,
        gguf_file=gguf_file,
    )
    _write_json(out_dir / FACTS_FILE, model.to_json())
    return model
