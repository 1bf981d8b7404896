"""Lists in chunks (``limit``/``continue``), on the emulator and through the adapter.

What is checked against the real API server's rules: pages in storage-key order, each
item once, every page reporting the first page's resourceVersion, the last page without
a token; a token past compaction answers 410 Expired, a token that does not decode 400.
The adapter reads every list in pages and, on a 410 mid-way, lists again whole.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from kubernetes import client

from budcluster.adapters import kubernetes as kube
from budcluster.adapters.kubernetes import objects as kube_objects
from tests.k8s_emulator.emulator import Emulator

NAMESPACE = "paged"
_later = itertools.count()
NAMES = [f"cm-{i}" for i in (3, 0, 6, 1, 5, 2, 4)]


def _compact_past(api: client.ApiClient, emulator: Emulator) -> None:
    """A write, then etcd compaction up to it: earlier resourceVersions are gone."""
    kube.apply_objects(
        api,
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"later-{next(_later)}", "namespace": "default"},
            }
        ],
        "paging-test",
    )
    emulator.expire_watches()


@pytest.fixture
def seeded(api: client.ApiClient) -> client.ApiClient:
    kube.apply_objects(
        api,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
        + [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "data": {"n": name},
            }
            for name in NAMES
        ],
        "paging-test",
    )
    return api


def _get(api: client.ApiClient, **query: str) -> dict[str, Any]:
    return kube.request_json(  # type: ignore[no-any-return]
        api,
        "GET",
        f"/api/v1/namespaces/{NAMESPACE}/configmaps",
        what="list configmaps",
        query=list(query.items()),
        retry_s=0,
    )


def test_pages_follow_the_tokens_in_key_order_at_one_resource_version(
    seeded: client.ApiClient,
) -> None:
    first = _get(seeded, limit="3")
    version = first["metadata"]["resourceVersion"]
    pages = [first]
    while token := pages[-1]["metadata"].get("continue"):
        pages.append(_get(seeded, limit="3", **{"continue": token}))
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    names = [i["metadata"]["name"] for p in pages for i in p["items"]]
    assert names == sorted(NAMES)
    assert {p["metadata"]["resourceVersion"] for p in pages} == {version}
    assert "continue" not in pages[-1]["metadata"]
    # Without a limit, one answer holds everything and carries no token.
    whole = _get(seeded)
    assert [i["metadata"]["name"] for i in whole["items"]] == sorted(NAMES)
    assert "continue" not in whole["metadata"]


def test_a_compacted_token_is_410_and_a_garbled_one_400(
    seeded: client.ApiClient, k8s_emulator: Emulator
) -> None:
    token = _get(seeded, limit="2")["metadata"]["continue"]
    with pytest.raises(kube.KubernetesApiError, match="400") as bad:
        _get(seeded, limit="2", **{"continue": "not-a-token"})
    assert bad.value.status == 400
    _compact_past(seeded, k8s_emulator)
    with pytest.raises(kube.KubernetesApiError, match="too old") as gone:
        _get(seeded, limit="2", **{"continue": token})
    assert gone.value.status == 410


def test_the_adapter_reads_every_page_and_lists_whole_after_a_410(
    seeded: client.ApiClient, k8s_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_objects, "LIST_PAGE_SIZE", 3)
    sent: list[list[tuple[str, str]]] = []
    real = kube_objects.request_json

    def recording(*args: Any, **kwargs: Any) -> Any:
        if args[1] == "GET":
            sent.append(list(kwargs.get("query") or []))
        return real(*args, **kwargs)

    monkeypatch.setattr(kube_objects, "request_json", recording)
    items, version = kube.list_objects(seeded, "ConfigMap", NAMESPACE)
    assert sorted(i["metadata"]["name"] for i in items) == sorted(NAMES)
    assert [dict(q).get("limit") for q in sent] == ["3", "3", "3"]
    assert version

    # Compaction between the first page and the next: the adapter starts again whole.
    sent.clear()

    def compacting(*args: Any, **kwargs: Any) -> Any:
        answer = recording(*args, **kwargs)
        if len(sent) == 1 and args[1] == "GET":
            monkeypatch.setattr(kube_objects, "request_json", recording)
            _compact_past(seeded, k8s_emulator)
        return answer

    monkeypatch.setattr(kube_objects, "request_json", compacting)
    items, _ = kube.list_objects(seeded, "ConfigMap", NAMESPACE)
    assert sorted(i["metadata"]["name"] for i in items) == sorted(NAMES)
    assert [sorted(dict(q)) for q in sent] == [["limit"], ["continue", "limit"], []]
