"""Reading what the playbooks report back from each host (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budcluster.targets.base import RuntimeState, RuntimeStatus


def status_from_result(node: str, data: Mapping[str, Any], port: int | None) -> RuntimeStatus:
    state = RuntimeState(str(data.get("state", "absent")))
    address = str(data.get("address") or node)
    if address == "localhost":
        address = "127.0.0.1"  # servers bound to 0.0.0.0 do not answer on ::1
    port = port or (int(data["port"]) if data.get("port") else None)
    endpoint = (
        f"http://{address}:{port}"
        if port and state in (RuntimeState.RUNNING, RuntimeState.STARTING)
        else None
    )
    log_tail = [str(line) for line in data.get("log_tail") or []]
    reason = data.get("reason")
    if state is RuntimeState.FAILED and log_tail:
        reason = f"{reason or 'failed'}; last log lines:\n" + "\n".join(log_tail[-20:])
    detail = {"node": node}
    for key in ("mode", "pid", "supervisor_pid", "restarts", "unit", "container", "spec_sha256"):
        if data.get(key) is not None:
            detail[key] = str(data[key])
    return RuntimeStatus(state, endpoint, reason, log_tail, detail)


# A deployment's status is its best host's: one running replica serves.
STATE_RANK = {
    RuntimeState.RUNNING: 0,
    RuntimeState.STARTING: 1,
    RuntimeState.FAILED: 2,
    RuntimeState.ABSENT: 3,
}


def manifest_digest(report: Mapping[str, Any]) -> str:
    for key in ("manifest_sha256",):
        if report.get(key):
            return str(report[key])
    manifest = report.get("manifest")
    if isinstance(manifest, Mapping) and manifest.get("sha256"):
        return str(manifest["sha256"])
    return str(report.get("manifest_file_sha256", ""))
