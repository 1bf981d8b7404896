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
from tasks._store import results_store


@contextmanager
def target_for(
    kind: str, credentials_block: str, *, executables: dict[str, str] | None = None
) -> Iterator[ClusterTarget]:
    """A target of ``kind`` built from the named credentials block."""
    if kind == "hosts":
        from budcluster.targets.hosts import HostsTarget

        hosts = cast(HostInventory, HostInventory.load(credentials_block))
        with hosts.ssh_key_file() as key_file:
            yield HostsTarget(
                hosts.inventory,
                ssh_key_file=key_file,
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


@contextmanager
def registered_target(
    cluster_name: str, *, executables: dict[str, str] | None = None
) -> Iterator[ClusterTarget]:
    """The target of a registered cluster."""
    with results_store().session() as session:
        cluster = get_cluster(session, cluster_name)
        kind, block = cluster.kind.value, cluster.credentials_block
    if not block:
        raise ConfigurationError(f"cluster {cluster_name!r} has no credentials block recorded")
    with target_for(kind, block, executables=executables) as target:
        yield target
