"""Opening a cluster target from its registered record and credentials block.

This is where credentials are opened: the target lives inside a ``with`` block, and the
SSH key file (if any) is deleted when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from blocks.hosts import HostInventory
from budcluster.errors import ConfigurationError
from budcluster.settings import get_settings
from budcluster.store.clusters import get_cluster
from budcluster.targets.base import ClusterTarget
from budcluster.targets.ref import ClusterKind, ClusterRef
from tasks._store import results_store


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
        from budcluster.targets.kubernetes import KubernetesTarget

        credentials = cast(KubeconfigCredentials, KubeconfigCredentials.load(credentials_block))
        api_client = credentials.get_api_client(timeout_s=get_settings().http_timeout_s)
        try:
            yield KubernetesTarget(api_client, image=get_settings().kubernetes_tools_image)
        finally:
            api_client.close()  # type: ignore[no-untyped-call]
        return
    raise ConfigurationError(
        f"cluster kind {kind!r} is unknown; use 'hosts', 'kubernetes' or 'openshift'"
    )


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
