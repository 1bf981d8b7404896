"""The LiteLLM gateway of one Kubernetes cluster: what it routes, as chart values.

The routes come from the store: every ready deployment of the cluster, under its served
model name, to its runtime's Service inside the cluster. ``gateway_values`` turns them into
``charts/litellm_container`` values in a stable order, and ``config_hash`` names that
configuration, so publishing the same routes again changes nothing on the cluster.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from budcluster.errors import PermanentError

GATEWAY_CHART = "litellm_container"
DEFAULT_RELEASE = "bud-gateway"
DEFAULT_NAMESPACE = "bud-gateway"
CHART_SERVICE_PORT = 4000
"""The chart's default ``service.port``."""
MASTER_KEY_SECRET_KEY = "master-key"
"""The key of the master-key Secret the chart reads (its ``masterKeySecret.key`` default)."""
MASTER_KEY_HEADER = "x-litellm-api-key"
"""LiteLLM's own key header. The API server's service proxy consumes ``Authorization``
(it authenticates the caller with it), so the check sends the key in this one, which
LiteLLM reads first."""
CONFIG_HASH_ANNOTATION = "budcluster.io/config-hash"
"""Set on the gateway's Deployment: the hash of the values it was rendered from."""
_IN_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local")


class GatewayError(PermanentError):
    """The gateway cannot be published as asked; the message names the fix."""


class GatewayHasNoRoutes(GatewayError):
    """No deployment of the cluster is ready, so the gateway would route nothing."""


@dataclass(frozen=True)
class ReadyDeployment:
    """What the store holds about one ready deployment (see tasks/gateway.py)."""

    name: str
    served_model_name: str | None
    endpoint_url: str | None
    manifests: Sequence[Mapping[str, Any]] = ()
    """The latest revision's rendered objects, to find the Service when the URL is not
    an in-cluster one."""


@dataclass(frozen=True)
class GatewayRoute:
    model_name: str
    """The name clients ask the gateway for: the deployment's served model name."""
    deployment: str
    api_base: str
    """The runtime's OpenAI base inside the cluster: ``http://<svc>.<ns>.svc:<port>/v1``."""


@dataclass(frozen=True)
class GatewayCheck:
    """What the check through the gateway's Service saw."""

    base_url: str
    listed_models: list[str]
    completion_tokens: dict[str, int] = field(default_factory=dict)
    """Tokens of one completion per routed model."""
    key_enforced: bool = False
    """True when the gateway has a master key and was seen to refuse a request without
    it (401) before the routes were called with it."""
    seconds_waited: float = 0.0


def _is_in_cluster(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host.endswith(_IN_CLUSTER_SUFFIXES) and host.count(".") >= 2


def _service_url(manifests: Sequence[Mapping[str, Any]]) -> str | None:
    for obj in manifests:
        if obj.get("kind") != "Service":
            continue
        meta = obj.get("metadata") or {}
        ports = (obj.get("spec") or {}).get("ports") or []
        if meta.get("name") and meta.get("namespace") and ports:
            return f"http://{meta['name']}.{meta['namespace']}.svc:{ports[0]['port']}"
    return None


def in_cluster_url(deployment: ReadyDeployment) -> str:
    """The deployment's Service URL inside the cluster: the recorded endpoint when it is
    one (``http://<svc>.<ns>.svc:<port>``, what the Kubernetes target records), else the
    Service of its latest revision."""
    recorded = (deployment.endpoint_url or "").rstrip("/")
    if recorded and _is_in_cluster(recorded):
        return recorded
    found = _service_url(deployment.manifests)
    if found is None:
        raise GatewayError(
            f"deployment {deployment.name!r} has no in-cluster Service URL: its endpoint is "
            f"{recorded or 'not recorded'} and its latest revision has no Service; deploy it "
            "again with deploy-model"
        )
    return found


def gateway_routes(cluster: str, deployments: Sequence[ReadyDeployment]) -> list[GatewayRoute]:
    """One route per ready deployment, ordered by model name, then deployment."""
    routes = [
        GatewayRoute(
            model_name=d.served_model_name or d.name,
            deployment=d.name,
            api_base=in_cluster_url(d) + "/v1",
        )
        for d in deployments
    ]
    if not routes:
        raise GatewayHasNoRoutes(
            f"cluster {cluster!r} has no ready deployment for the gateway to route to; "
            "deploy a model with deploy-model first (the gateway already on the cluster, "
            "if any, is left as it is)"
        )
    return sorted(routes, key=lambda r: (r.model_name, r.deployment))


def gateway_values(
    routes: Sequence[GatewayRoute],
    *,
    image: str | None = None,
    master_key_secret: str | None = None,
    openshift: bool = False,
) -> dict[str, Any]:
    """``charts/litellm_container`` values routing ``routes``; the chart's defaults fill
    the rest. LiteLLM calls each endpoint as ``openai/<served model name>``."""
    values: dict[str, Any] = {
        "endpoints": [
            {"modelName": r.model_name, "model": r.model_name, "apiBase": r.api_base}
            for r in routes
        ],
        "masterKeySecret": {"name": master_key_secret or ""},
        "openshift": openshift,
    }
    if image:
        values["image"] = image
    return values


def config_hash(values: Mapping[str, Any]) -> str:
    """16 hex digits naming the values: the same routes and settings give the same hash."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def listed_models(listing: Any) -> list[str]:
    """The model ids of an OpenAI ``/v1/models`` answer (``{"object": "list", "data": [...]}``)."""
    if not isinstance(listing, Mapping):
        return []
    return [
        str(entry["id"])
        for entry in listing.get("data") or []
        if isinstance(entry, Mapping) and "id" in entry
    ]


def missing_routes(listing: Any, routes: Sequence[GatewayRoute]) -> list[str]:
    """Routed model names the gateway's ``/v1/models`` does not list."""
    listed = set(listed_models(listing))
    return sorted({r.model_name for r in routes} - listed)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything one publish applies: the routes, the chart values and their hash."""

    cluster: str
    release: str
    namespace: str
    routes: list[GatewayRoute]
    values: dict[str, Any]
    """Chart values, ``configHash`` included."""
    config_hash: str
    master_key: bool

    @property
    def master_key_secret(self) -> str | None:
        """The Secret (in ``namespace``) that holds the proxy's master key, if any."""
        return str(self.values.get("masterKeySecret", {}).get("name") or "") or None

    @property
    def service_url(self) -> str:
        """Where clients inside the cluster reach the gateway."""
        port = int(self.values.get("service", {}).get("port", CHART_SERVICE_PORT))
        return f"http://{self.release}.{self.namespace}.svc:{port}"


def gateway_config(
    cluster: str,
    deployments: Sequence[ReadyDeployment],
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    image: str | None = None,
    master_key_secret: str | None = None,
    openshift: bool = False,
) -> GatewayConfig:
    """The configuration that routes every ready deployment of ``cluster``.

    Raises GatewayHasNoRoutes when none is ready: a gateway with no route serves nothing,
    so publishing fails clearly instead.
    """
    routes = gateway_routes(cluster, deployments)
    values = gateway_values(
        routes, image=image, master_key_secret=master_key_secret, openshift=openshift
    )
    digest = config_hash(values)
    return GatewayConfig(
        cluster=cluster,
        release=release,
        namespace=namespace,
        routes=routes,
        values={**values, "configHash": digest},
        config_hash=digest,
        master_key=bool(master_key_secret),
    )
