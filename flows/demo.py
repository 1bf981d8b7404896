"""Runbook for a fresh machine: deploy the demo model to this machine and measure it.

Run it with ``python -m flows.demo`` (``scripts/demo`` does, after setting up). It
registers this machine as a ``hosts`` cluster (once), deploys the model with
``deploy-model`` (llama.cpp for the demo's GGUF), benchmarks the endpoint, and prints
the endpoint URL, the benchmark summary and the report folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from prefect import flow

from budcluster.job_requests import (
    BenchmarkProfile,
    DeployModelRequest,
    ModelSourceRequest,
    RegisterClusterRequest,
    TeardownRequest,
)
from flows.deploy_model import deploy_model
from flows.register_cluster import register_cluster
from flows.teardown_deployment import teardown_deployment
from tasks.records import cluster_exists

# The benchmark client runs on this machine too, and the README's demo machine has two
# cores. Left to the plan, llama-server runs a thread on every core and starves the
# client, which then reads tokens in bunches (a demo run printed TPOT p50 0.003 ms with a
# schedule delay p90 of 26 ms against an E2E p50 of 30 ms). One thread decodes the
# ~1.5M-parameter demo model at about half a millisecond per token and leaves a core to
# the client. Measured on 2 busy cores, concurrency 4, 256 requests, three paired runs:
# 120-174 req/s with one thread against 73-136 with two, schedule delay p90 1.9-3.1 ms
# against 3.3-3.7 ms. Tokens that fast still outrun a Python client's timing of single
# gaps, and the report says so (client-lag warning on ITL). vLLM takes no --threads.
LLAMA_CPP_ARGS = ["--threads", "1"]
# 256 requests (about 2 s at the demo's rate, 64 took under one) so the percentiles rest
# on more than a handful of requests per stream.
BENCHMARK = BenchmarkProfile(
    profile="concurrency:4", requests=256, input_tokens="32", output_tokens="32"
)


def engine_args(model_dir: str, engine: str) -> list[str]:
    """The demo's extra engine arguments: the thread cap when llama.cpp will serve it."""
    runs_llama_cpp = engine == "llama.cpp" or (
        engine == "auto" and any(Path(model_dir).glob("*.gguf"))
    )
    return list(LLAMA_CPP_ARGS) if runs_llama_cpp else []


@flow(name="demo", log_prints=True)
def demo(
    model_dir: str,
    cluster: str = "this-machine",
    hosts_block: str = "this-machine",
    deployment: str = "demo",
    engine: str = "auto",
) -> dict[str, Any]:
    if not cluster_exists(cluster):
        register_cluster(RegisterClusterRequest(name=cluster, credentials_block=hosts_block))
    return deploy_model(demo_request(model_dir, cluster, deployment, engine))


def demo_request(
    model_dir: str, cluster: str = "this-machine", deployment: str = "demo", engine: str = "auto"
) -> DeployModelRequest:
    """What the demo deploys; deployments.yaml's ``demo`` entry has the same spec."""
    return DeployModelRequest(
        name=deployment,
        cluster=cluster,
        model=ModelSourceRequest(uri=model_dir),
        engine=engine,
        device="cpu",
        max_model_len=512,
        concurrency=4,
        benchmark=BENCHMARK,
        engine_args=engine_args(model_dir, engine),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default="data/models/demo-tiny")
    parser.add_argument("--engine", default="auto", choices=["auto", "llama.cpp", "vllm"])
    parser.add_argument("--deployment", default="demo")
    parser.add_argument("--teardown", action="store_true", help="Remove the demo deployment.")
    args = parser.parse_args()
    if args.teardown:
        teardown_deployment(TeardownRequest(cluster="this-machine", deployment=args.deployment))
        return
    outcome = demo(args.model_dir, deployment=args.deployment, engine=args.engine)
    print()
    print(f"endpoint:  {outcome['endpoint_url']}")
    bench = outcome.get("benchmark")
    if bench:
        print(
            "benchmark: "
            + json.dumps(
                {
                    "requests_completed": bench["requests_completed"],
                    "request_throughput": round(bench["request_throughput"], 2),
                    "output_token_throughput": round(bench["output_token_throughput"], 1),
                    "ttft_ms_p50": round(bench["ttft_ms"]["p50"], 2),
                    "tpot_ms_p50": round(bench["tpot_ms"]["p50"], 3),
                }
            )
        )
        if bench.get("client_lag"):
            print(f"warning:   {bench['client_lag']['message']}")
        print(f"report:    {bench['report_dir']}/report.html")
    elif not outcome.get("changed", True):
        print("(already deployed with this spec; nothing was changed)")


if __name__ == "__main__":
    main()
