"""Opening a cluster target from its registered record and credentials block.

This is where credentials are opened: the target lives inside a ``with`` block, and the
SSH key file (if any) is deleted when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from blocks.hosts import HostInventory
from budcluster.bench.access import EndpointAccess
from budcluster.errors import ConfigurationError
from budcluster.settings import get_settings
from budcluster.store.clusters import get_cluster
from budcluster.targets.base import ClusterTarget
from budcluster.targets.ref import ClusterKind, ClusterRef
from tasks._store import results_store

if TYPE_CHECKING:
    from budcluster.targets.kubernetes.reach import InClusterService


@contextmanager
def target_for(
    kind: str, credentials_block: str, *, executables: dict[str, str] | None = None
) -> Iterator[ClusterTarget]:
    """A target of ``kind`` built from the named credentials block."""
    if kind == "hosts":
        from budcluster.targets.hosts import HostsTarget

        hosts = cast(HostInventory, HostInventory.load(credentials_block))
        with hosts.ssh_key_file() as key_file, hosts.known_hosts_file() as known_hosts:
            yield HostsTarget(
                hosts.inventory,
                ssh_key_file=key_file,
                known_hosts_file=known_hosts,
                become_password=hosts.get_become_password(),
                executables=executables or {},
                state_dir=get_settings().hosts_state_dir,
            )
        return
    if kind in ("kubernetes", "openshift"):
        from blocks.kubeconfig import KubeconfigCredentials
        from budcluster.targets.kubernetes import KubernetesTarget, KubernetesTimeouts

        settings = get_settings()
        credentials = cast(KubeconfigCredentials, KubeconfigCredentials.load(credentials_block))
        api_client = credentials.get_api_client(timeout_s=settings.http_timeout_s)
        try:
            yield KubernetesTarget(
                api_client,
                image=settings.kubernetes_tools_image,
                timeouts=KubernetesTimeouts(api_retry_s=settings.kubernetes_api_retry_s),
                collector_values=collector_overrides(settings.kubernetes_collector_values),
            )
        finally:
            api_client.close()  # type: ignore[no-untyped-call]
        return
    raise ConfigurationError(
        f"cluster kind {kind!r} is unknown; use 'hosts', 'kubernetes' or 'openshift'"
    )


def endpoint_access(cluster: ClusterRef | str | None, url: str) -> EndpointAccess | None:
    """How this worker reaches ``url``, an endpoint of ``cluster``: None to dial it itself.

    A Kubernetes or OpenShift runtime's recorded URL is its Service's in-cluster name,
    which resolves only inside the cluster: it is reached through the API server's service
    proxy with the credentials block's kubeconfig (server URL, CA, token or client
    certificate). The credentials stay in the returned object, in memory, for the caller's
    task; nothing is written but the client key, 0600, while the SSL context loads it.
    Any other URL (a host's, an Ingress) is dialled directly, without reading the store.
    """
    from budcluster.targets.kubernetes import in_cluster_service

    service = in_cluster_service(url)
    if cluster is None or service is None:
        return None
    ref = cluster if isinstance(cluster, ClusterRef) else resolve_cluster(cluster)
    if ref.kind not in ("kubernetes", "openshift"):
        return None
    from blocks.kubeconfig import KubeconfigCredentials

    block = cast(KubeconfigCredentials, KubeconfigCredentials.load(ref.credentials_block))
    return service_proxy_access_from_kubeconfig(block.get_kubeconfig_dict(), block.context, service)


def service_proxy_access_from_kubeconfig(
    config: dict[str, Any], context: str, service: InClusterService
) -> EndpointAccess:
    """The service-proxy access to ``service`` with ``context``'s credentials; an allowed
    exec plugin is run once here, before any load, so a plugin that fails says so now and
    the benchmark's worker processes start with its token (each renews it on its own
    before it expires: see ``budcluster.bench.access.RenewingBearer``)."""
    from budcluster.kubeconfig import api_server_credentials
    from budcluster.targets.kubernetes import service_proxy_access

    credentials = api_server_credentials(config, context)
    # A user's own token wins over its exec plugin, which then never runs: the kubernetes
    # client's order (auth-provider, token, exec, username/password), so both paths agree.
    if credentials.exec_plugin is None or credentials.token:
        return service_proxy_access(credentials, service)
    from budcluster.adapters.exec_credential import ExecCredentialPlugin

    plugin = ExecCredentialPlugin(credentials.exec_plugin)
    return service_proxy_access(credentials, service, plugin=plugin, issued=plugin.issue())


def resolve_cluster(cluster_name: str) -> ClusterRef:
    """The registered cluster's kind and credentials block, read from the store."""
    with results_store().session() as session:
        cluster = get_cluster(session, cluster_name)
        kind, block = cluster.kind.value, cluster.credentials_block
    if not block:
        raise ConfigurationError(f"cluster {cluster_name!r} has no credentials block recorded")
    return ClusterRef(name=cluster_name, kind=cast(ClusterKind, kind), credentials_block=block)


@contextmanager
def registered_target(
    cluster: ClusterRef | str, *, executables: dict[str, str] | None = None
) -> Iterator[ClusterTarget]:
    """The target of a registered cluster, given resolved or by name."""
    ref = cluster if isinstance(cluster, ClusterRef) else resolve_cluster(cluster)
    with target_for(ref.kind, ref.credentials_block, executables=executables) as target:
        yield target


def collector_overrides(path: Path | None) -> dict[str, Any] | None:
    """The node_info_collector values file named by BUDCLUSTER_KUBERNETES_COLLECTOR_VALUES
    (checked key by key when the target is built); None when unset."""
    if path is None:
        return None
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigurationError(
            f"BUDCLUSTER_KUBERNETES_COLLECTOR_VALUES: cannot read {path} ({exc.strerror}); "
            "point it at a YAML file of node_info_collector values, or unset it"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            f"BUDCLUSTER_KUBERNETES_COLLECTOR_VALUES: {path} is not valid YAML ({exc})"
        ) from exc
    if loaded is None:
        return None
    if not isinstance(loaded, dict):
        raise ConfigurationError(
            f"BUDCLUSTER_KUBERNETES_COLLECTOR_VALUES: {path} must hold a mapping of values, "
            f"not a {type(loaded).__name__}"
        )
    return loaded
