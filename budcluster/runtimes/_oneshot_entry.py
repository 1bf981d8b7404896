"""Run llm-compressor's ``oneshot`` from argv (llm-compressor ships no CLI).

Copied to and run on the GPU node with the engine's own python; it imports only
llm-compressor, so budcluster need not be installed there. Nothing in budcluster imports it.
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--recipe", required=True, help="an llm-compressor recipe YAML")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--dataset")
    parser.add_argument("--num-calibration-samples", type=int, default=512)
    parser.add_argument("--max-seq-length", type=int, default=2048)
    args = parser.parse_args()

    from llmcompressor import oneshot  # only on the GPU node

    kwargs: dict[str, object] = {
        "model": args.model,
        "recipe": args.recipe,
        "output_dir": args.output_dir,
    }
    if args.dataset:
        kwargs.update(
            dataset=args.dataset,
            num_calibration_samples=args.num_calibration_samples,
            max_seq_length=args.max_seq_length,
        )
    oneshot(**kwargs)


if __name__ == "__main__":
    main()
