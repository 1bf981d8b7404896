"""The ``hosts`` cluster target: bare-metal or VM servers reached through an Ansible inventory.

Every operation runs one playbook from ``playbooks/`` through :mod:`budcluster.adapters.ansible`.
Everything a playbook needs is computed in Python (:mod:`.render`: the runtime's argv with real
executable and model paths, the container command line, the systemd unit text, a spec hash
for idempotency), so the playbooks stay generic and the rendering is tested without hosts.

Node names are inventory host names: the collector runs with ``NODE_NAME`` set to the
inventory name, so a plan's placement names the host to deploy on.
"""

from budcluster.targets.hosts.errors import (
    HostsConfigError,
    HostsOperationFailed,
    HostsTargetError,
    HostsUnavailable,
)
from budcluster.targets.hosts.render import (
    RUN_DIR_TOKEN,
    RestartPolicy,
    check_name,
    container_run_argv,
    host_argv,
    runtime_spec,
    systemd_unit_text,
)
from budcluster.targets.hosts.target import HostsTarget, HostsTimeouts, build_collector_zip

__all__ = [
    "RUN_DIR_TOKEN",
    "HostsConfigError",
    "HostsOperationFailed",
    "HostsTarget",
    "HostsTargetError",
    "HostsTimeouts",
    "HostsUnavailable",
    "RestartPolicy",
    "build_collector_zip",
    "check_name",
    "container_run_argv",
    "host_argv",
    "runtime_spec",
    "systemd_unit_text",
]
