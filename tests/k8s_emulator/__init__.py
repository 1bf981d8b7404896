"""A Kubernetes API emulator for the tests: an HTTP API server on 127.0.0.1 with an
in-memory store, watches, simulated controllers, scheduler and kubelet, and fake nodes
built from the real hardware fixtures. See docs/k8s-emulator.md."""

from tests.k8s_emulator.cluster import Timings
from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import (
    NodeSpec,
    Taint,
    amx_cpu_node,
    default_nodes,
    gaudi2_node,
    h100_mig_node,
    h100_node,
)

__all__ = [
    "Emulator",
    "NodeSpec",
    "Taint",
    "Timings",
    "amx_cpu_node",
    "default_nodes",
    "gaudi2_node",
    "h100_mig_node",
    "h100_node",
    "start_emulator",
]
