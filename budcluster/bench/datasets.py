"""Prompts to send: synthetic token-length distributions, a ShareGPT file, a prompts file.

Token lengths use the model's own tokenizer when one is available locally (``tokenizers``
or ``transformers``, never downloaded). Otherwise a fallback counts one token per word
and the result records that it did, because a word is only roughly one BPE token.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from budcluster.bench.specs import TokenLengthSpec
from budcluster.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    prompt_tokens: int
    max_tokens: int


class Tokenizer(Protocol):
    name: str
    """How lengths are counted, for the result: e.g. "tokenizers:/models/x/tokenizer.json"."""

    def count(self, text: str) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, token_ids: list[int]) -> str: ...

    def vocab_size(self) -> int: ...


_WORD = re.compile(r"\S+")
# Common English words that BPE tokenizers keep as one token each (with a leading space).
_FALLBACK_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "it",
    "for",
    "was",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "at",
    "be",
    "this",
    "from",
    "have",
    "or",
    "by",
    "one",
    "had",
    "not",
    "but",
    "what",
    "all",
    "were",
    "when",
    "we",
    "there",
    "can",
    "an",
    "your",
    "which",
    "their",
    "said",
    "if",
    "do",
    "will",
    "each",
    "about",
    "how",
    "up",
    "out",
    "them",
    "then",
    "she",
    "many",
    "some",
    "so",
    "these",
    "would",
    "other",
    "into",
    "has",
    "more",
    "her",
    "two",
    "like",
    "him",
    "see",
    "time",
    "could",
    "no",
    "make",
    "than",
    "first",
    "been",
    "its",
    "who",
    "now",
    "people",
    "my",
    "made",
    "over",
    "did",
    "down",
    "only",
    "way",
    "find",
    "use",
    "may",
    "water",
    "long",
    "little",
    "very",
    "after",
    "words",
    "called",
    "just",
    "where",
    "most",
    "know",
]


class WordTokenizer:
    """Fallback: one token per whitespace-separated word. Recorded as such in results."""

    name = "fallback:words (no local tokenizer; 1 word counted as 1 token)"

    def count(self, text: str) -> int:
        return len(_WORD.findall(text))

    def encode(self, text: str) -> list[int]:
        index = {word: i for i, word in enumerate(_FALLBACK_WORDS)}
        return [index.get(word, 0) for word in _WORD.findall(text)]

    def decode(self, token_ids: list[int]) -> str:
        return " ".join(_FALLBACK_WORDS[i % len(_FALLBACK_WORDS)] for i in token_ids)

    def vocab_size(self) -> int:
        return len(_FALLBACK_WORDS)


class _LibraryTokenizer:
    def __init__(
        self,
        name: str,
        encode: Callable[[str], list[int]],
        decode: Callable[[list[int]], str],
        size: int,
    ) -> None:
        self.name = name
        self._encode = encode
        self._decode = decode
        self._size = size

    def count(self, text: str) -> int:
        return len(self._encode(text))

    def encode(self, text: str) -> list[int]:
        return self._encode(text)

    def decode(self, token_ids: list[int]) -> str:
        return self._decode(token_ids)

    def vocab_size(self) -> int:
        return self._size


def load_tokenizer(source: str | None) -> tuple[Tokenizer, str]:
    """The tokenizer for ``source`` (a tokenizer.json path, a model directory or a local
    Hugging Face cache name), and why it was chosen. Never touches the network."""
    if not source:
        return WordTokenizer(), "no --tokenizer given"
    path = Path(source)
    reasons: list[str] = []
    try:
        import tokenizers

        file = path / "tokenizer.json" if path.is_dir() else path
        if file.is_file():
            tok = tokenizers.Tokenizer.from_file(str(file))
            return (
                _LibraryTokenizer(
                    f"tokenizers:{file}",
                    lambda t: list(tok.encode(t, add_special_tokens=False).ids),
                    lambda ids: str(tok.decode(ids)),
                    int(tok.get_vocab_size()),
                ),
                "loaded with tokenizers",
            )
        reasons.append(f"no tokenizer.json at {file}")
    except ImportError:
        reasons.append("tokenizers not installed")
    except Exception as exc:  # a corrupt file must not abort the benchmark
        reasons.append(f"tokenizers failed: {exc}")
    try:
        import transformers

        hf: Any = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
        return (
            _LibraryTokenizer(
                f"transformers:{source}",
                lambda t: list(hf.encode(t, add_special_tokens=False)),
                lambda ids: str(hf.decode(ids)),
                int(hf.vocab_size),
            ),
            "loaded with transformers (local files only)",
        )
    except ImportError:
        reasons.append("transformers not installed")
    except Exception as exc:
        reasons.append(f"transformers could not load it locally: {exc}")
    return WordTokenizer(), "; ".join(reasons)


def synthetic_prompts(
    count: int,
    input_spec: TokenLengthSpec,
    output_spec: TokenLengthSpec,
    tokenizer: Tokenizer,
    seed: int = 0,
) -> list[Prompt]:
    """Random-token prompts with lengths drawn from the specs.

    Tokens are random so a server's prefix cache cannot serve them all from one entry.
    Random ids rarely decode and re-encode to the same count (merges across token
    boundaries), so the text is re-encoded and trimmed or topped up until it has the
    drawn length; the recorded count is what the tokenizer says of the final text.
    """
    rng = random.Random(seed)
    size = tokenizer.vocab_size()
    prompts = []
    for _ in range(count):
        length = input_spec.sample(rng)
        text = _text_of_length(tokenizer, length, rng, size)
        prompts.append(Prompt(text, tokenizer.count(text), output_spec.sample(rng)))
    return prompts


def _text_of_length(tokenizer: Tokenizer, length: int, rng: random.Random, size: int) -> str:
    ids = [rng.randrange(size) for _ in range(length)]
    text = tokenizer.decode(ids)
    for _ in range(8):
        ids = tokenizer.encode(text)
        if len(ids) == length:
            break
        if len(ids) > length:
            ids = ids[:length]
        else:
            ids = ids + [rng.randrange(size) for _ in range(length - len(ids))]
        text = tokenizer.decode(ids)
    # Rarely it keeps oscillating around the target: never exceed it.
    while ids and tokenizer.count(text) > length:
        ids = ids[:-1]
        text = tokenizer.decode(ids)
    return text


def sharegpt_prompts(
    path: Path,
    tokenizer: Tokenizer,
    output_spec: TokenLengthSpec | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> list[Prompt]:
    """First human turn as the prompt; the first reply's length as max_tokens (as vLLM does)
    unless ``output_spec`` overrides it. Entries without a human turn are skipped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"--dataset: cannot read ShareGPT JSON {path}: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigurationError(f"--dataset: {path} must hold a JSON list of conversations")
    rng = random.Random(seed)
    prompts = []
    for entry in data:
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(turns, list) or len(turns) < 1:
            continue
        human = next((t for t in turns if isinstance(t, dict) and t.get("from") == "human"), None)
        if human is None or not str(human.get("value", "")).strip():
            continue
        reply = next((t for t in turns if isinstance(t, dict) and t.get("from") == "gpt"), None)
        text = str(human["value"])
        if output_spec is not None:
            max_tokens = output_spec.sample(rng)
        elif reply is not None:
            max_tokens = max(1, tokenizer.count(str(reply.get("value", ""))))
        else:
            max_tokens = 128
        prompts.append(Prompt(text, tokenizer.count(text), max_tokens))
        if limit is not None and len(prompts) >= limit:
            break
    if not prompts:
        raise ConfigurationError(f"--dataset: {path} has no conversation with a human turn")
    return prompts


def prompts_file(
    path: Path, tokenizer: Tokenizer, output_spec: TokenLengthSpec, seed: int = 0
) -> list[Prompt]:
    """One prompt per non-empty line; output lengths from ``output_spec``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"--prompts-file: cannot read {path}: {exc}") from exc
    rng = random.Random(seed)
    prompts = [
        Prompt(line, tokenizer.count(line), output_spec.sample(rng))
        for line in lines
        if line.strip()
    ]
    if not prompts:
        raise ConfigurationError(f"--prompts-file: {path} has no non-empty line")
    return prompts
