"""Hardware inventory of one node: CPU, memory, NVIDIA GPUs, Intel Gaudi, host tools.

The parsers and the collector in this package use the standard library only (the
collector also runs inside a minimal DaemonSet image and through Ansible on bare hosts).
They produce plain JSON-ready dicts in the NodeInventory shape; ``inventory.py`` holds the
pydantic model that validates them. Keep this ``__init__`` free of imports so that
``python -m budcluster.hardware.collector`` pulls in nothing beyond the stdlib.
"""

__all__: list[str] = []
