"""Run llama.cpp's ``convert_hf_to_gguf.py`` with a declared BPE pre-tokenizer.

This file is executed as a script by the converter venv's python (it is never imported
by budcluster). ``convert_hf_to_gguf.py`` recognises a BPE pre-tokenizer by hashing how
the tokenizer splits a fixed test string; a freshly trained tokenizer has a hash nobody
has seen, so the script stops with "BPE pre-tokenizer was not recognized". The hash is
tied to the vocabulary, not to the splitting rule, so no honest hash exists for a new
vocabulary. Instead we check the rule itself, in tokenizer.json: the pre-tokenizer must
be a byte-level one that applies GPT-2's regex. When it is, llama.cpp's ``gpt-2``
pre-tokenizer splits text the same way, and we make ``get_vocab_base_pre`` answer that.
Any other tokenizer is refused, so we never declare a rule the model does not use.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Any

EXIT_REFUSED = 3


def _byte_level_with_gpt2_regex(pre_tokenizer: Any) -> bool:
    if not isinstance(pre_tokenizer, dict):
        return False
    if pre_tokenizer.get("type") == "Sequence":
        parts = pre_tokenizer.get("pretokenizers") or []
        return len(parts) == 1 and _byte_level_with_gpt2_regex(parts[0])
    return pre_tokenizer.get("type") == "ByteLevel" and pre_tokenizer.get("use_regex", True) is True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--llama-cpp-src", type=Path, required=True)
    parser.add_argument("--declare-pre", default="gpt-2", choices=["gpt-2"])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("convert_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    tokenizer = json.loads((args.model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if not _byte_level_with_gpt2_regex(tokenizer.get("pre_tokenizer")):
        print(
            f"{args.model_dir}/tokenizer.json: pre_tokenizer is not ByteLevel(use_regex=true); "
            f"refusing to declare it as {args.declare_pre!r}",
            file=sys.stderr,
        )
        return EXIT_REFUSED

    src = args.llama_cpp_src.resolve()
    sys.path[:0] = [str(src), str(src / "gguf-py")]
    import conversion.base as conversion_base  # the sdist's module, found through sys.path

    declared = args.declare_pre

    def declared_pre(self: Any, tokenizer: Any) -> str:
        return str(declared)

    conversion_base.TextModel.get_vocab_base_pre = declared_pre
    script = src / "convert_hf_to_gguf.py"
    extra = [a for a in args.convert_args if a != "--"]
    sys.argv = [str(script), str(args.model_dir), *extra]
    runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
