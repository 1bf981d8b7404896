"""The benchmark client through the Kubernetes emulator's service proxy, as a worker outside
a cluster reaches a runtime's Service: what the figures look like against the simulated
vLLM engine's known pacing (first token after 40 ms, then one every 10 ms).

What the difference measures is the emulator's proxy (one more aiohttp hop on localhost)
plus asyncio's sleep overshoot in the simulated engine, not a real API server: on a real
cluster the API server adds TLS, authentication, authorization and a network hop, so there
the figures are an upper bound on the runtime's latency (docs/kubernetes.md).

Usage: PYTHONPATH=. .venv/bin/python perf/bench_through_service_proxy.py [--requests 64]
"""

from __future__ import annotations

import argparse

from budcluster.bench.config import BenchmarkConfig
from budcluster.bench.runner import run_benchmark
from budcluster.bench.specs import ProfileSpec, TokenLengthSpec
from budcluster.kubeconfig import api_server_credentials
from budcluster.targets.kubernetes import in_cluster_service, service_proxy_access
from tests.k8s_emulator import start_emulator
from tests.k8s_emulator.runtime_http import FIRST_TOKEN_S, TOKEN_INTERVAL_S
from tests.k8s_emulator.waiting import eventually, raw_request
from tests.k8s_emulator_tests.test_service_proxy import NS, _create, _runtime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=64)
    args = parser.parse_args()
    emu = start_emulator()
    try:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
        raw_request(emu.url, "POST", "/api/v1/namespaces", namespace)
        _create(emu, _runtime("rt-m", ["--model", "/m", "--served-model-name", "m"]))
        health = f"/api/v1/namespaces/{NS}/services/rt-m:http/proxy/health"
        eventually(lambda: raw_request(emu.url, "GET", health)[0] == 200, what="serving")
        url = f"http://rt-m.{NS}.svc:80"
        service = in_cluster_service(url)
        assert service is not None
        credentials = api_server_credentials(emu.kubeconfig_dict(), "emulator")
        access = service_proxy_access(credentials, service)
        print(
            f"engine pacing: first token {FIRST_TOKEN_S * 1000:.0f} ms, then every "
            f"{TOKEN_INTERVAL_S * 1000:.0f} ms; {access.via}"
        )
        for concurrency in (1, 8):
            config = BenchmarkConfig(
                url=url,
                model="m",
                profile=ProfileSpec("concurrency", concurrency),
                max_requests=args.requests,
                warmup_requests=4,
                input_tokens=TokenLengthSpec("fixed", 32),
                output_tokens=TokenLengthSpec("fixed", 32),
                access=access,
            )
            result = run_benchmark(config)
            level, latency = result.overall, result.overall.latencies_ms
            print(
                f"concurrency {concurrency}: {level.requests_completed} ok, "
                f"{level.requests_failed} failed, TTFT p50 {latency['ttft_ms'].p50:.1f} ms "
                f"p99 {latency['ttft_ms'].p99:.1f}, ITL mean {latency['itl_ms'].mean:.2f} ms "
                f"p99 {latency['itl_ms'].p99:.2f}, TPOT p50 {latency['tpot_ms'].p50:.2f} ms, "
                f"{level.output_token_throughput:.0f} output tok/s"
            )
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
