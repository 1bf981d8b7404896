"""The API surface through the official ``kubernetes`` client: discovery, CRUD, errors as
Status objects, patches, selectors, deletion, the status subresource and watches."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.k8s_emulator.emulator import Emulator
from tests.k8s_emulator.waiting import eventually, raw_request


def _deployment(name: str, image: str = "nginx:1.27", **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "main", "image": image, "env": [{"name": "A", "value": "1"}]}
                    ]
                },
            },
            **spec,
        },
    }


def _status(exc: ApiException) -> dict[str, object]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["code"] == exc.status
    return dict(body)


def test_discovery_serves_core_v1_groups_and_version(api: client.ApiClient) -> None:
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {
        "apps",
        "batch",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "node.k8s.io",
    } <= groups
    assert "config.openshift.io" not in groups
    core = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert core["pods"].namespaced and core["pods"].short_names == ["po"]
    assert not core["nodes"].namespaced and "watch" in core["nodes"].verbs
    assert "pods/log" in core and "pods/status" in core
    assert client.VersionApi(api).get_code().git_version.startswith("v1.")


def test_openshift_flavour_serves_openshift_groups(openshift_emulator: Emulator) -> None:
    api = config.new_client_from_config_dict(openshift_emulator.kubeconfig_dict())
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"config.openshift.io", "route.openshift.io", "security.openshift.io"} <= groups
    version = client.CustomObjectsApi(api).get_cluster_custom_object(
        "config.openshift.io", "v1", "clusterversions", "version"
    )
    assert version["status"]["desired"]["version"].startswith("4.")


def test_openshift_flavour_ships_a_use_role_per_default_scc(openshift_emulator: Emulator) -> None:
    api = config.new_client_from_config_dict(openshift_emulator.kubeconfig_dict())
    sccs = client.CustomObjectsApi(api).list_cluster_custom_object(
        "security.openshift.io", "v1", "securitycontextconstraints"
    )
    names = sorted(s["metadata"]["name"] for s in sccs["items"])
    assert names == ["anyuid", "nonroot-v2", "privileged", "restricted-v2"]
    rbac = client.RbacAuthorizationV1Api(api)
    for name in names:
        role = rbac.read_cluster_role(f"system:openshift:scc:{name}")
        assert [(r.resource_names, r.verbs) for r in role.rules] == [([name], ["use"])]


def test_rbac_names_are_path_segments_not_dns_names(api: client.ApiClient) -> None:
    """As ValidateRBACName: `system:...` names are valid; '/' and '%' are not."""
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role({"metadata": {"name": "system:bud:test"}, "rules": []})
    assert rbac.read_cluster_role("system:bud:test").metadata.name == "system:bud:test"
    for bad in ("a/b", "50%"):
        with pytest.raises(ApiException) as caught:
            rbac.create_cluster_role({"metadata": {"name": bad}, "rules": []})
        assert caught.value.status == 422
        assert "may not contain" in _status(caught.value)["message"]


def test_crud_sets_server_fields_and_errors_are_status_objects(
    api: client.ApiClient, k8s_emulator: Emulator
) -> None:
    url = k8s_emulator.url
    core = client.CoreV1Api(api)
    ns = core.create_namespace({"metadata": {"name": "crud"}})
    assert ns.status.phase == "Active" and ns.metadata.uid
    assert "crud" in [n.metadata.name for n in core.list_namespace().items]
    cm = core.create_namespaced_config_map("crud", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    assert cm.metadata.resource_version and cm.metadata.uid and cm.metadata.creation_timestamp
    with pytest.raises(ApiException) as dup:
        core.create_namespaced_config_map("crud", {"metadata": {"name": "a"}})
    assert dup.value.status == 409 and _status(dup.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("nope", "crud")
    assert missing.value.status == 404
    assert _status(missing.value)["message"] == 'configmaps "nope" not found'
    code, body = raw_request(
        url,
        "POST",
        "/apis/apps/v1/namespaces/crud/deployments",
        {"metadata": {"name": "bad"}, "spec": {"template": {"spec": {}}}},
    )
    assert code == 422 and body["kind"] == "Status" and body["reason"] == "Invalid"
    assert "spec.selector: Required value" in body["message"]
    code, body = raw_request(
        url,
        "POST",
        "/api/v1/namespaces/crud/configmaps",
        {"metadata": {"name": "x"}},
        content_type="application/vnd.kubernetes.protobuf",
    )
    assert code == 415 and body["reason"] == "UnsupportedMediaType"
    code, body = raw_request(url, "POST", "/api/v1/namespaces/crud/configmaps", "{not json")
    assert code == 400 and body["kind"] == "Status"
    with pytest.raises(ApiException) as no_ns:
        core.create_namespaced_config_map("ghost", {"metadata": {"name": "a"}})
    assert no_ns.value.status == 404

    # PUT: resourceVersion must match; a stale one is a 409 Conflict.
    cm.data = {"k": "v2"}
    replaced = core.replace_namespaced_config_map("a", "crud", cm)
    assert int(replaced.metadata.resource_version) > int(cm.metadata.resource_version)
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("a", "crud", cm)
    assert stale.value.status == 409 and _status(stale.value)["reason"] == "Conflict"

    code, listed = raw_request(url, "GET", "/api/v1/namespaces/crud/configmaps")
    assert code == 200 and listed["kind"] == "ConfigMapList" and listed["apiVersion"] == "v1"
    assert listed["metadata"]["resourceVersion"] and len(listed["items"]) == 1


def test_generation_bumps_on_spec_change_only(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    dep = apps.create_namespaced_deployment("default", _deployment("gen"))
    assert dep.metadata.generation == 1
    apps.patch_namespaced_deployment("gen", "default", {"metadata": {"labels": {"x": "y"}}})
    assert apps.read_namespaced_deployment("gen", "default").metadata.generation == 1
    apps.patch_namespaced_deployment("gen", "default", {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("gen", "default").metadata.generation == 2


def test_patch_flavours(api: client.ApiClient, k8s_emulator: Emulator) -> None:
    url = k8s_emulator.url
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("p"))
    # Strategic merge (the client's default for dicts): containers and env merge by name.
    apps.patch_namespaced_deployment(
        "p",
        "default",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}]}
                }
            }
        },
    )
    container = apps.read_namespaced_deployment("p", "default").spec.template.spec.containers[0]
    assert container.image == "nginx:1.27"
    assert [(e.name, e.value) for e in container.env] == [("A", "1"), ("B", "2")]
    # JSON patch.
    apps.patch_namespaced_deployment(
        "p",
        "default",
        [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"}],
    )
    assert (
        apps.read_namespaced_deployment("p", "default").spec.template.spec.containers[0].image
        == "nginx:2"
    )
    # JSON merge patch replaces lists whole.
    code, _ = raw_request(
        url,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/p",
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "other:1"}]}}}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    container = apps.read_namespaced_deployment("p", "default").spec.template.spec.containers[0]
    assert container.image == "other:1" and container.env is None


def test_server_side_apply_creates_updates_and_prunes(k8s_emulator: Emulator) -> None:
    def apply(data: dict[str, str]) -> dict[str, object]:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data}
        code, result = raw_request(
            k8s_emulator.url,
            "PATCH",
            "/api/v1/namespaces/default/configmaps/ssa?fieldManager=budcluster&force=true",
            body,
            content_type="application/apply-patch+yaml",
        )
        assert code in (200, 201), result
        return dict(result)

    created = apply({"a": "1", "b": "2"})
    assert created["data"] == {"a": "1", "b": "2"}
    updated = apply({"a": "3"})
    assert updated["data"] == {"a": "3"}  # b was this manager's and is no longer applied
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]  # type: ignore[index]


def test_selectors(api: client.ApiClient, k8s_emulator: Emulator) -> None:
    core = client.CoreV1Api(api)
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": {"tier": tier}}}
        )
    names = lambda items: sorted(i.metadata.name for i in items)  # noqa: E731
    assert names(core.list_namespaced_config_map("default", label_selector="tier=web").items) == [
        "a",
        "c",
    ]
    assert names(
        core.list_namespaced_config_map("default", label_selector="tier notin (web)").items
    ) == ["b"]
    assert names(
        core.list_namespaced_config_map("default", field_selector="metadata.name=b").items
    ) == ["b"]
    nodes = core.list_node(label_selector="nvidia.com/mig.strategy=mixed").items
    assert [n.metadata.name for n in nodes] == ["gpu-h100-mig-0"]
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_config_map("default", field_selector="data.k=v")
    assert bad.value.status == 400 and "field label not supported" in _status(bad.value)["message"]


def test_delete_cascades_and_namespace_deletion_empties_it(
    api: client.ApiClient, k8s_emulator: Emulator
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": "gone"}})
    apps.create_namespaced_deployment("gone", _deployment("d"))
    eventually(lambda: core.list_namespaced_pod("gone").items, what="pods")
    apps.delete_namespaced_deployment("d", "gone")
    eventually(
        lambda: (
            not apps.list_namespaced_replica_set("gone").items
            and not core.list_namespaced_pod("gone").items
        ),
        what="replica sets and pods garbage-collected",
    )
    core.create_namespaced_config_map("gone", {"metadata": {"name": "left"}})
    core.delete_namespace("gone")
    assert core.read_namespace("gone").status.phase == "Terminating"
    with pytest.raises(ApiException) as forbidden:
        core.create_namespaced_config_map("gone", {"metadata": {"name": "late"}})
    assert forbidden.value.status == 403
    eventually(
        lambda: "gone" not in [n.metadata.name for n in core.list_namespace().items],
        what="namespace removed",
    )
    assert not [
        c for c in k8s_emulator.objects("configmaps") if c["metadata"]["namespace"] == "gone"
    ]


def test_status_subresource_is_separate(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service(
        "default",
        {"metadata": {"name": "st"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}},
    )
    lb = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    core.patch_namespaced_service("st", "default", lb)  # status is ignored on the main resource
    assert core.read_namespaced_service("st", "default").status.load_balancer.ingress is None
    core.patch_namespaced_service_status("st", "default", lb)
    svc = core.read_namespaced_service_status("st", "default")
    assert svc.status.load_balancer.ingress[0].ip == "192.0.2.10"
    assert svc.spec.cluster_ip.startswith("10.96.")


def test_watch_from_resource_version_then_410(
    api: client.ApiClient, k8s_emulator: Emulator
) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "w1"}})
    core.patch_namespaced_config_map("w1", "default", {"data": {"x": "1"}})
    core.delete_namespaced_config_map("w1", "default")
    seen = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=2
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            break
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]

    # Live events arrive while the watch is open.
    got: list[str] = []

    def follow() -> None:
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, "default", label_selector="live=yes", timeout_seconds=3
        ):
            got.append(event["object"].metadata.name)
            return

    thread = threading.Thread(target=follow)
    thread.start()
    eventually(lambda: k8s_emulator.call(lambda: len(k8s_emulator.cluster.store.watchers)) > 0)
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "live", "labels": {"live": "yes"}}}
    )
    thread.join(5)
    assert got == ["live"]

    k8s_emulator.set_history_size(2)
    for n in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"churn{n}"}})
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=2
        ):
            pass
    assert gone.value.status == 410


def test_pod_log_and_wrong_token(api: client.ApiClient, k8s_emulator: Emulator) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "solo"}, "spec": {"containers": [{"name": "c", "image": "srv:1"}]}},
    )
    eventually(lambda: core.read_namespaced_pod("solo", "default").status.phase == "Running")
    assert "Application startup complete" in core.read_namespaced_pod_log("solo", "default")
    wrong = k8s_emulator.kubeconfig_dict()
    wrong["users"][0]["user"]["token"] = "not-the-token"
    with pytest.raises(ApiException) as unauthorized:
        client.CoreV1Api(config.new_client_from_config_dict(wrong)).list_namespace()
    assert unauthorized.value.status == 401
