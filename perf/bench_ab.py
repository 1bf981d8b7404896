"""A/B: the working tree's streaming client against the one at a git revision, same run.

Both clients drive the same zero-latency testing server (own process, uvloop) through the
runner at the same concurrency; rounds alternate A, B, A, B so that drift on the machine
hits both. With --callgrind N each client also sends N requests under valgrind's
callgrind (and 0, to subtract start-up): instructions per request do not depend on how
busy the machine is.

Usage: .venv/bin/python perf/bench_ab.py --against HEAD~1 [--concurrency 64]
       [--seconds 5] [--rounds 3] [--callgrind 2000]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from budcluster.bench import client as current_client
from budcluster.bench.datasets import WordTokenizer, synthetic_prompts
from budcluster.bench.profiles import initial_levels
from budcluster.bench.runner import run_level, run_on_fast_loop
from budcluster.bench.specs import ProfileSpec, TokenLengthSpec
from budcluster.bench.testing_server import server_process

ROOT = Path(__file__).resolve().parent.parent


def client_at(revision: str, into: Path) -> ModuleType:
    """budcluster/bench/client.py as it was at ``revision``, imported as its own module."""
    source = subprocess.run(
        ["git", "show", f"{revision}:budcluster/bench/client.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    path = into / "client_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("client_at_revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def _prompts() -> Any:
    return synthetic_prompts(
        1000, TokenLengthSpec("fixed", 2), TokenLengthSpec("fixed", 16), WordTokenizer()
    )


async def rate(
    module: ModuleType, url: str, concurrency: int, seconds: float
) -> tuple[float, float, int]:
    """Requests/s, CPU microseconds per request and failures of one measured phase."""
    prompts = _prompts()
    origin = time.perf_counter()
    client = module.StreamingClient(module.ClientConfig(url, "m"), origin)
    plan = initial_levels(ProfileSpec("concurrency", concurrency))[0]
    try:
        cpu, start = time.process_time(), time.perf_counter()
        records = await run_level(
            client, plan, prompts, origin, duration_s=seconds, max_requests=None
        )
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await client.close()
    failed = sum(1 for r in records if r.error_kind is not None)
    done = len(records) - failed
    return done / elapsed, 1e6 * cpu / max(done, 1), failed


async def cost_worker(module: ModuleType, url: str, requests: int, concurrency: int) -> None:
    origin = time.perf_counter()
    client = module.StreamingClient(module.ClientConfig(url, "m"), origin)
    plan = initial_levels(ProfileSpec("concurrency", concurrency))[0]
    if requests:
        await run_level(client, plan, _prompts(), origin, duration_s=None, max_requests=requests)
    await client.close()


def instructions(which: str, revision: str, url: str, requests: int, concurrency: int) -> int:
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.out",
                sys.executable, __file__, "--against", revision, "--concurrency",
                str(concurrency), "--cost-worker", which, url, str(requests),
            ],
            capture_output=True, text=True, timeout=1800, check=True,
        )  # fmt: skip
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in callgrind output: {result.stderr[-500:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--against", required=True, help="git revision of the B client")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", type=int, default=0, metavar="N")
    parser.add_argument("--cost-worker", nargs=3, metavar=("WHICH", "URL", "N"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clients = {"tree": current_client, args.against: client_at(args.against, Path(tmp))}
        if args.cost_worker:
            which, url, requests = args.cost_worker
            run_on_fast_loop(cost_worker(clients[which], url, int(requests), args.concurrency))
            return
        with server_process("--chunks", "16") as url:
            run_on_fast_loop(rate(current_client, url, args.concurrency, 1.0))  # warm-up
            rates: dict[str, list[float]] = {name: [] for name in clients}
            for round_index in range(args.rounds):
                for name, module in clients.items():
                    rps, cpu_us, failed = run_on_fast_loop(
                        rate(module, url, args.concurrency, args.seconds)
                    )
                    rates[name].append(rps)
                    print(
                        f"round {round_index + 1} {name:>10}: {rps:8.0f} req/s "
                        f"{cpu_us:6.0f} us CPU/req  failed {failed}"
                    )
            tree = sum(rates["tree"]) / args.rounds
            other = sum(rates[args.against]) / args.rounds
            print(
                f"mean req/s: tree {tree:.0f}, {args.against} {other:.0f}, ratio {tree / other:.3f}"
            )
            if args.callgrind and shutil.which("valgrind"):
                cost = {}
                for name in clients:
                    start = instructions(name, args.against, url, 0, args.concurrency)
                    total = instructions(name, args.against, url, args.callgrind, args.concurrency)
                    cost[name] = (total - start) / args.callgrind
                    print(f"callgrind {name}: {cost[name] / 1000:.1f}k instructions per request")
                print(
                    f"instruction ratio (tree over {args.against}): {cost['tree'] / cost[args.against]:.3f}"
                )


if __name__ == "__main__":
    main()
