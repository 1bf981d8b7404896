"""The emulator's API fault switch (429/503/504 bursts, 410 watch expiry, node loss)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.k8s_emulator.api_faults import ApiFault
from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.waiting import eventually, raw_request


def test_the_next_n_matching_requests_answer_429_with_retry_after(k8s_emulator: Emulator) -> None:
    status, fault = raw_request(
        k8s_emulator.url,
        "POST",
        "/_emulator/api-faults",
        {"verb": "GET", "path": r"/api/v1/namespaces/[^/]+/configmaps", "count": 2},
    )
    assert status == 201 and fault["status"] == 429 and fault["retry_after_s"] == 1
    path = "/api/v1/namespaces/default/configmaps"
    request = urllib.request.Request(k8s_emulator.url + path)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 429 and caught.value.headers["Retry-After"] == "1"
    body = json.loads(caught.value.read())
    assert body["reason"] == "TooManyRequests" and body["details"] == {"retryAfterSeconds": 1}
    assert raw_request(k8s_emulator.url, "GET", path)[0] == 429
    assert raw_request(k8s_emulator.url, "GET", path)[0] == 200  # the burst is over
    assert raw_request(k8s_emulator.url, "POST", path, {"metadata": {"name": "x"}})[0] == 201
    listed = raw_request(k8s_emulator.url, "GET", "/_emulator/api-faults")[1]
    assert [r["status"] for r in listed["answered"]] == [429, 429]
    assert raw_request(k8s_emulator.url, "DELETE", "/_emulator/api-faults")[0] == 200


def test_a_503_after_running_the_request_loses_only_the_answer(k8s_emulator: Emulator) -> None:
    k8s_emulator.inject_api_fault(
        "POST", r".*/configmaps", status=504, retry_after_s=None, run_first=True
    )
    path = "/api/v1/namespaces/default/configmaps"
    status, body = raw_request(k8s_emulator.url, "POST", path, {"metadata": {"name": "y"}})
    assert status == 504 and body["reason"] == "Timeout"
    assert raw_request(k8s_emulator.url, "GET", path + "/y")[0] == 200  # it was created
    assert raw_request(k8s_emulator.url, "POST", path, {"metadata": {"name": "y"}})[0] == 409


def test_bad_api_faults_are_refused() -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        ApiFault("GET", ".*", status=500)
    with pytest.raises(ValueError, match="never ran"):
        ApiFault("GET", ".*", status=429, run_first=True)
    with pytest.raises(ValueError, match="verb must be one of"):
        ApiFault("FETCH", ".*")


def test_expire_watches_ends_an_open_watch_with_a_410_error_event(
    k8s_emulator: Emulator,
) -> None:
    rv = raw_request(k8s_emulator.url, "GET", "/api/v1/namespaces/default/configmaps")[1]
    version = rv["metadata"]["resourceVersion"]
    url = (
        f"{k8s_emulator.url}/api/v1/namespaces/default/configmaps?watch=true"
        f"&resourceVersion={version}&timeoutSeconds=20"
    )
    with urllib.request.urlopen(url, timeout=20) as stream:
        eventually(lambda: k8s_emulator.open_watches() == 1, what="the watch")
        assert k8s_emulator.expire_watches() == 1
        event = json.loads(stream.readline())
        assert stream.readline() == b""  # and the stream ends
    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {version} (")


def test_a_not_ready_node_is_tainted_and_its_pods_evicted(k8s_emulator: Emulator) -> None:
    node = "cpu-amx-0"
    pod = {
        "metadata": {"name": "p"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }
    assert raw_request(k8s_emulator.url, "POST", "/api/v1/namespaces/default/pods", pod)[0] == 201
    status, _ = raw_request(
        k8s_emulator.url, "POST", f"/_emulator/nodes/{node}/lose", {"how": "NotReady"}
    )
    assert status == 201
    found = raw_request(k8s_emulator.url, "GET", f"/api/v1/nodes/{node}")[1]
    ready = next(c for c in found["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert {(t["key"], t["effect"]) for t in found["spec"]["taints"]} >= {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
    eventually(lambda: not k8s_emulator.objects("pods", namespace="default"), what="eviction")
    reasons = {e["reason"] for e in k8s_emulator.objects("events", namespace="default")}
    assert {"NodeNotReady", "TaintManagerEviction"} <= reasons


def test_a_deleted_node_takes_its_pods_with_it(k8s_emulator: Emulator) -> None:
    node = "cpu-amx-0"
    pod = {
        "metadata": {"name": "q"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }
    raw_request(k8s_emulator.url, "POST", "/api/v1/namespaces/default/pods", pod)
    k8s_emulator.lose_node(node, "Deleted")
    assert raw_request(k8s_emulator.url, "GET", f"/api/v1/nodes/{node}")[0] == 404
    eventually(lambda: not k8s_emulator.objects("pods", namespace="default"), what="pod GC")
    assert raw_request(k8s_emulator.url, "POST", "/_emulator/nodes/nope/lose", {})[0] == 404
