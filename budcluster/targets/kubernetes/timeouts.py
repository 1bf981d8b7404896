"""How long the ``kubernetes`` target waits for each kind of step (pure: a frozen dataclass).

It lives apart from :mod:`.target` so that the I/O modules beside it (staging, node
detection, endpoint verification) take the same timeouts without importing the target.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KubernetesTimeouts:
    api_s: float = 30.0
    detect_s: float = 300.0
    transfer_s: float = 6 * 3600.0
    ready_s: float = 1800.0
    render_s: float = 60.0
    resync_s: float = 10.0
    """Longest a wait goes without re-reading state its watch does not cover."""
    endpoint_poll_s: float = 2.0
    """Pause between two endpoint checks through the Service while it does not serve yet."""
    api_retry_s: float = 60.0
    """How long one API call keeps retrying a server that turns it away (429, 502-504)
    before it fails with a temporary error (``BUDCLUSTER_KUBERNETES_API_RETRY_S``)."""
