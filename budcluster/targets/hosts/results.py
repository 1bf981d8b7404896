"""Reading what the playbooks report back from each host (pure)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from budcluster.targets.base import RuntimeState, RuntimeStatus, TransferProgress


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


_PROGRESS_COUNTS = ("files_total", "files_done", "bytes_total", "bytes_done")


def host_progress(slurped: Any) -> TransferProgress | None:
    """A host's transfer progress from read_progress.yml's ``slurp`` of its progress file;
    None when the host has no file (not started or finished) or it is not what we write."""
    if not isinstance(slurped, Mapping) or not isinstance(slurped.get("content"), str):
        return None
    try:
        body = json.loads(base64.b64decode(slurped["content"], validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    counts: dict[str, int] = {}
    for key in _PROGRESS_COUNTS:
        value = body.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
        counts[key] = value
    seconds = body.get("seconds", 0.0)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return None
    return TransferProgress(**counts, elapsed_s=float(seconds))


def sum_progress(
    per_host: Mapping[str, TransferProgress], hosts: int, elapsed_s: float
) -> TransferProgress | None:
    """The transfer's progress over ``hosts`` hosts, from those that have reported.

    Every host copies the same model, so one that has not reported yet counts as the
    others' totals with nothing done.
    """
    if not per_host:
        return None
    hosts = max(hosts, len(per_host))
    files_total = max(p.files_total for p in per_host.values())
    bytes_total = max(p.bytes_total for p in per_host.values())
    return TransferProgress(
        files_total=files_total * hosts,
        files_done=sum(p.files_done for p in per_host.values()),
        bytes_total=bytes_total * hosts,
        bytes_done=sum(p.bytes_done for p in per_host.values()),
        elapsed_s=elapsed_s,
    )
