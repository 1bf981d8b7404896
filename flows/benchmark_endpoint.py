"""Runbook: measure a deployed model (or any OpenAI-compatible endpoint)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from budcluster.errors import ConfigurationError
from budcluster.job_requests import BenchmarkEndpointRequest
from budcluster.planning.lora import adapter_selection
from budcluster.planning.models import RuntimePlan
from tasks.benchmark import run_benchmark
from tasks.pricing import deployment_price
from tasks.records import find_deployment


@flow(name="benchmark-endpoint", log_prints=True)
def benchmark_endpoint(request: BenchmarkEndpointRequest) -> dict[str, Any]:
    """Load the endpoint with the profile; write the report, the store rows and artifacts."""
    deployment_id, price = None, None
    url, model = request.url, request.model
    extra_body: dict[str, object] = {}
    if request.cluster and request.deployment:
        state = find_deployment(request.cluster, request.deployment)
        if state is None or state.status != "ready" or not state.endpoint_url:
            raise ConfigurationError(
                f"deployment {request.deployment!r} on {request.cluster!r} is not ready "
                f"(status {state.status if state else 'absent'}); deploy it first"
            )
        deployment_id, url = state.id, state.endpoint_url
        model = model or state.served_model_name
        if request.profile.adapter is not None:
            if state.plan is None:
                raise ConfigurationError(
                    f"deployment {request.deployment!r} has no recorded plan to find adapter "
                    f"{request.profile.adapter!r} in; redeploy it"
                )
            plan = RuntimePlan.model_validate(state.plan)
            model, extra_body = adapter_selection(plan, request.profile.adapter)
        price = deployment_price(request.cluster, request.deployment)
    if not url or not model:
        raise ConfigurationError(
            "no endpoint to measure: give url and model, or a ready deployment"
        )
    name = request.deployment or model
    config = request.profile.to_config(
        url=url, model=model, name=name, deployment=request.deployment, extra_body=extra_body
    )
    # A Kubernetes Service's in-cluster URL is reached through the cluster's API server.
    summary = run_benchmark(
        config, deployment_id=deployment_id, price=price, cluster=request.cluster
    )
    cost = summary["usd_per_million_output_tokens"]
    print(
        f"{name}: {summary['request_throughput']:.2f} req/s, "
        f"TTFT p50 {summary['ttft_ms']['p50']:.1f} ms, "
        + (f"${cost:.4f} per 1M output tokens" if cost is not None else "cost unknown")
        + f"; report {summary['report_dir']}"
    )
    return summary
