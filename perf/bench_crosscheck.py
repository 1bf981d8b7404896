"""Cross-check: our figures against ``vllm bench serve`` on the same server, same script.

Runs only where the other tool is installed; otherwise says it skipped and why (exit 0).
Both tools drive the testing server (known 50 ms TTFT, 10 ms between chunks, 16 chunks)
at concurrency 64; mean TTFT, mean TPOT and request throughput must agree within 5%.

``vllm bench serve`` needs a tokenizer even for random prompts and this project never
downloads one: pass a local tokenizer directory with --tokenizer.
inference-perf is detected and reported, but driving it needs a YAML config per version;
it is not automated here.

Usage: .venv/bin/python perf/bench_crosscheck.py [--tokenizer DIR] [--requests 640]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from budcluster.bench.runner import BenchmarkConfig, run_benchmark
from budcluster.bench.specs import ProfileSpec, TokenLengthSpec
from budcluster.bench.testing_server import server_process


def find_tools(vllm_command: str | None = None) -> dict[str, str | None]:
    """Each tool's command, or None with the reason printed by the caller."""
    return {
        "vllm bench serve": vllm_command or shutil.which("vllm"),
        "inference-perf": shutil.which("inference-perf")
        or ("python -m inference_perf" if importlib.util.find_spec("inference_perf") else None),
    }


def ours(url: str, requests: int) -> dict[str, float]:
    config = BenchmarkConfig(
        url=url,
        model="m",
        profile=ProfileSpec("concurrency", 64),
        max_requests=requests,
        input_tokens=TokenLengthSpec("fixed", 8),
        output_tokens=TokenLengthSpec("fixed", 16),
        ignore_eos=True,
    )
    level = run_benchmark(config).levels[0]
    return {
        "mean_ttft_ms": level.latencies_ms["ttft_ms"].mean,
        "mean_tpot_ms": level.latencies_ms["tpot_ms"].mean,
        "request_throughput": level.request_throughput,
    }


def vllm(command: str, url: str, requests: int, tokenizer: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                command, "bench", "serve",
                "--backend", "openai",
                "--base-url", url,
                "--endpoint", "/v1/completions",
                "--model", "m",
                "--tokenizer", tokenizer,
                "--dataset-name", "random",
                "--random-input-len", "8",
                "--random-output-len", "16",
                "--num-prompts", str(requests),
                "--max-concurrency", "64",
                "--ignore-eos",
                "--save-result",
                "--result-dir", out,
                "--result-filename", "vllm.json",
            ],
            check=True,
            timeout=600,
        )  # fmt: skip
        data = json.loads((Path(out) / "vllm.json").read_text())
    return {key: float(data[key]) for key in ("mean_ttft_ms", "mean_tpot_ms", "request_throughput")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tokenizer", help="Local tokenizer directory for vllm bench serve.")
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--vllm", help="Path of a vllm executable not on PATH.")
    args = parser.parse_args()
    tools = find_tools(args.vllm)
    for name, command in tools.items():
        print(f"{name}: {'found: ' + command if command else 'SKIPPED: not installed'}")
    if tools["inference-perf"]:
        print("inference-perf: SKIPPED: found, but its YAML config is not automated here")
    command = tools["vllm bench serve"]
    if command is None:
        print("cross-check SKIPPED: neither tool can run on this machine")
        return 0
    if not args.tokenizer:
        print("vllm bench serve: SKIPPED: pass --tokenizer DIR (a local tokenizer; no downloads)")
        return 0
    delays = ("--ttft-ms", "50", "--itl-ms", "10", "--chunks", "16")
    with server_process(*delays, uvloop=False) as url:
        mine = ours(url, args.requests)
        theirs = vllm(command, url, args.requests, args.tokenizer)
    failed = False
    for key, value in mine.items():
        other = theirs[key]
        gap = (value - other) / other * 100 if other else float("inf")
        ok = abs(gap) <= 5
        failed |= not ok
        print(
            f"{key:>20}: ours {value:10.3f}  vllm {other:10.3f}  gap {gap:+.1f}%  {'PASS' if ok else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
