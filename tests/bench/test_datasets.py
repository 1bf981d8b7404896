"""Prompt sources and the tokenizer fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from budcluster.bench.datasets import (
    WordTokenizer,
    load_tokenizer,
    prompts_file,
    sharegpt_prompts,
    synthetic_prompts,
)
from budcluster.bench.specs import TokenLengthSpec
from budcluster.errors import ConfigurationError


def test_fallback_tokenizer_is_recorded_with_the_reason(tmp_path: Path) -> None:
    tokenizer, why = load_tokenizer(None)
    assert isinstance(tokenizer, WordTokenizer)
    assert "fallback" in tokenizer.name
    assert why == "no --tokenizer given"
    tokenizer, why = load_tokenizer(str(tmp_path / "missing"))
    assert isinstance(tokenizer, WordTokenizer)
    assert "tokenizer" in why  # says which library was missing or what failed


def test_synthetic_prompts_have_the_requested_lengths() -> None:
    prompts = synthetic_prompts(
        50, TokenLengthSpec("uniform", 5, 9), TokenLengthSpec("fixed", 7), WordTokenizer(), seed=1
    )
    assert all(5 <= p.prompt_tokens <= 9 for p in prompts)
    assert all(WordTokenizer().count(p.text) == p.prompt_tokens for p in prompts)
    assert {p.max_tokens for p in prompts} == {7}
    assert len({p.text for p in prompts}) > 40  # random, not one repeated prompt


def test_sharegpt_uses_first_human_turn_and_reply_length(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    path.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "system", "value": "be nice"},
                        {"from": "human", "value": "what is two plus two"},
                        {"from": "gpt", "value": "it is four"},
                    ]
                },
                {"conversations": []},
            ]
        )
    )
    (prompt,) = sharegpt_prompts(path, WordTokenizer())
    assert prompt.text == "what is two plus two"
    assert (prompt.prompt_tokens, prompt.max_tokens) == (5, 3)
    (prompt,) = sharegpt_prompts(path, WordTokenizer(), output_spec=TokenLengthSpec("fixed", 9))
    assert prompt.max_tokens == 9


def test_bad_files_say_which_option(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigurationError, match="--dataset"):
        sharegpt_prompts(bad, WordTokenizer())
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ConfigurationError, match="--prompts-file"):
        prompts_file(empty, WordTokenizer(), TokenLengthSpec("fixed", 1))
