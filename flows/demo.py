"""Runbook for a fresh machine: deploy the demo model to this machine and measure it.

Run it with ``python -m flows.demo`` (``scripts/demo`` does, after setting up). It
registers this machine as a ``hosts`` cluster (once), deploys the model with
``deploy-model`` (llama.cpp for the demo's GGUF), benchmarks the endpoint, and prints
the endpoint URL, the benchmark summary and the report folder.
"""

from __future__ import annotations

import argparse
import json
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
    return deploy_model(
        DeployModelRequest(
            name=deployment,
            cluster=cluster,
            model=ModelSourceRequest(uri=model_dir),
            engine=engine,
            device="cpu",
            max_model_len=512,
            concurrency=4,
            benchmark=BenchmarkProfile(
                profile="concurrency:4", requests=64, input_tokens="32", output_tokens="32"
            ),
        )
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
        print(f"report:    {bench['report_dir']}/report.html")
    elif not outcome.get("changed", True):
        print("(already deployed with this spec; nothing was changed)")


if __name__ == "__main__":
    main()
