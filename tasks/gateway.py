"""Tasks that publish a cluster's LiteLLM gateway: read what is ready, apply, verify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from budcluster.errors import ConfigurationError
from budcluster.gateway import (
    CONFIG_HASH_ANNOTATION,
    GATEWAY_CHART,
    GatewayConfig,
    ReadyDeployment,
    gateway_config,
)
from budcluster.job_requests import PublishGatewayRequest
from budcluster.lifecycle import DeploymentStatus
from budcluster.store import NotFound
from budcluster.store import clusters as cluster_rows
from budcluster.store import deployments as deployment_rows
from budcluster.targets.kubernetes import KubernetesTarget
from tasks._logging import task_logger
from tasks._store import results_store
from tasks.targets import registered_target

_GATEWAY_KINDS = ("kubernetes", "openshift")


@dataclass(frozen=True)
class GatewaySource:
    """The cluster's kind and its ready deployments, as the store has them."""

    cluster: str
    kind: str
    deployments: list[ReadyDeployment]


@task(retries=2, retry_delay_seconds=2, timeout_seconds=60, task_run_name="ready-on-{cluster}")
def read_ready_deployments(cluster: str) -> GatewaySource:
    """Every ready deployment of the cluster: name, served model name, endpoint, and the
    latest revision's manifests. A hosts cluster is refused: the gateway is a Kubernetes
    release."""
    with results_store().session() as session:
        row = cluster_rows.get_cluster(session, cluster)
        kind = row.kind.value
        if kind not in _GATEWAY_KINDS:
            raise ConfigurationError(
                f"cluster: {cluster!r} is a {kind} cluster; the gateway needs a kubernetes or "
                "openshift cluster (it runs as a Deployment and Service there)"
            )
        ready: list[ReadyDeployment] = []
        for deployment in deployment_rows.list_deployments(session, row.id):
            if deployment.status is not DeploymentStatus.READY:
                continue
            try:
                manifests = list(deployment_rows.get_revision(session, deployment.id).manifests)
            except NotFound:
                manifests = []
            ready.append(
                ReadyDeployment(
                    name=deployment.name,
                    served_model_name=(deployment.plan or {}).get("served_model_name"),
                    endpoint_url=deployment.endpoint_url,
                    manifests=manifests,
                )
            )
    task_logger(__name__).info(
        "%s (%s): %d ready deployment(s): %s", cluster, kind, len(ready), [d.name for d in ready]
    )
    return GatewaySource(cluster, kind, ready)


@task(retries=0, timeout_seconds=60, task_run_name="gateway-config-{source.cluster}")
def configure_gateway(request: PublishGatewayRequest, source: GatewaySource) -> GatewayConfig:
    """The routes and chart values; fails clearly when nothing is ready to route."""
    config = gateway_config(
        source.cluster,
        source.deployments,
        release=request.release,
        namespace=request.namespace,
        image=request.image,
        master_key_secret=request.master_key_secret,
        openshift=source.kind == "openshift",
    )
    create_table_artifact(
        table=[
            {"model": r.model_name, "deployment": r.deployment, "api_base": r.api_base}
            for r in config.routes
        ],
        key=f"gateway-routes-{source.cluster}",
        description=f"Routes of gateway {config.release} (config {config.config_hash})",
    )
    return config


def _published_hash(target: KubernetesTarget, config: GatewayConfig) -> str | None:
    live = target.release_deployment(config.namespace, config.release)
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(CONFIG_HASH_ANNOTATION)


@task(retries=0, timeout_seconds=1800, task_run_name="publish-gateway-{config.cluster}")
def apply_gateway(config: GatewayConfig, timeout_s: float) -> dict[str, Any]:
    """Apply the gateway release unless the cluster runs this configuration already, then
    wait for its Deployment and verify through its Service that it routes every model.

    A changed configuration's rendered manifests become a Prefect artifact; an unchanged
    one applies nothing and records nothing new.
    """
    log = task_logger(__name__)
    with registered_target(config.cluster) as target:
        if not isinstance(target, KubernetesTarget):
            raise ConfigurationError(
                f"cluster: {config.cluster!r} is not a kubernetes or openshift cluster; "
                "the gateway needs one"
            )
        changed = _published_hash(target, config) != config.config_hash
        manifests: list[dict[str, Any]] = []
        if changed:
            manifests = target.apply_release(
                GATEWAY_CHART, config.values, config.release, config.namespace
            )
            log.info("applied gateway %s (config %s)", config.release, config.config_hash)
        else:
            log.info("gateway %s already runs config %s", config.release, config.config_hash)
        # The key stays inside verify_gateway: read from the Secret, sent in a header,
        # never logged, returned or put in an artifact.
        check = target.verify_gateway(
            config.namespace,
            config.release,
            config.routes,
            timeout_s,
            master_key_secret=config.master_key_secret,
        )
    if manifests:
        rendered = yaml.safe_dump_all(manifests, sort_keys=True)
        create_markdown_artifact(
            key=f"gateway-manifests-{config.cluster}",
            markdown=f"# Gateway {config.release}, config {config.config_hash}\n\n"
            f"```yaml\n{rendered}\n```\n",
            description=f"Rendered manifests of gateway {config.release} in {config.namespace}",
        )
    return {
        "cluster": config.cluster,
        "release": config.release,
        "namespace": config.namespace,
        "config_hash": config.config_hash,
        "changed": changed,
        "service_url": config.service_url,
        "routes": [r.model_name for r in config.routes],
        "listed_models": check.listed_models,
        "key_enforced": check.key_enforced,
        "completion_tokens": check.completion_tokens,
    }
