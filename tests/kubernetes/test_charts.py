"""Every chart lints, renders what its values ask for, and validates against Kubernetes schemas."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from budcluster.adapters.helm import HelmChartError, HelmRenderError, lint_chart, render_chart
from budcluster.planning.models import RuntimePlan
from budcluster.targets.base import RolloutSpec
from budcluster.targets.kubernetes import runtime_values
from tests.kubernetes.helpers import CHARTS, H100_NODE, by_kind, llama_transfer_values, render

K8S_VERSION = "1.31.0"
CHART_NAMES = [
    "node_info_collector",
    "model_transfer",
    "bud_runtime_container",
    "litellm_container",
]


def validate_all(objects: list[dict[str, Any]]) -> None:
    """kubernetes-validate in strict mode (unknown fields fail); OpenShift kinds have no schema."""
    assert objects
    for obj in objects:
        if obj["apiVersion"].endswith(".openshift.io/v1"):
            assert obj["kind"] == "Route"
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_chart_lints_clean_with_defaults(chart: str) -> None:
    assert lint_chart(CHARTS / chart) == []


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_chart_defaults_render_valid_manifests(chart: str) -> None:
    validate_all(render(chart, {}))


def test_validation_really_fails_on_a_bad_manifest() -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two"},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_lint_reports_a_broken_template(tmp_path) -> None:  # type: ignore[no-untyped-def]
    chart = tmp_path / "broken"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "kind: ConfigMap\nmetadata: {name: {{ .Values.x.y }}\n"
    )
    assert lint_chart(chart)


def test_missing_chart_dir_names_the_fix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(HelmChartError, match=r"no Chart\.yaml"):
        render_chart(tmp_path, {}, "r", "ns")


def test_bad_values_name_the_key() -> None:
    with pytest.raises(HelmRenderError, match="modelBytes"):
        render("model_transfer", {"modelBytes": "lots"})


# --- node_info_collector ---------------------------------------------------------------------


def test_collector_has_nvidia_gaudi_and_plain_variants() -> None:
    objects = render("node_info_collector", {"image": "registry/bud:1"}, release="nic")
    sets = {
        d["metadata"]["labels"]["budcluster.io/variant"]: d for d in by_kind(objects, "DaemonSet")
    }
    assert set(sets) == {"nvidia", "gaudi", "plain"}
    nvidia = sets["nvidia"]["spec"]["template"]["spec"]
    assert nvidia["runtimeClassName"] == "nvidia"
    terms = nvidia["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms[0]["matchExpressions"][0] == {
        "key": "feature.node.kubernetes.io/pci-10de.present",
        "operator": "In",
        "values": ["true"],
    }
    gaudi = sets["gaudi"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in gaudi["containers"][0]["env"]}
    assert env["HABANA_VISIBLE_DEVICES"] == "all"
    assert "runtimeClassName" not in gaudi
    plain = sets["plain"]["spec"]["template"]["spec"]
    ops = {
        (e["key"], e["operator"])
        for e in plain["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"]
    }
    assert ops == {
        ("feature.node.kubernetes.io/pci-10de.present", "NotIn"),
        ("feature.node.kubernetes.io/pci-1da3.present", "NotIn"),
    }
    for ds in sets.values():
        pod = ds["spec"]["template"]
        assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "node-info-collector"
        assert pod["spec"]["containers"][0]["image"] == "registry/bud:1"
        assert pod["spec"]["serviceAccountName"] == "nic"
    role = by_kind(objects, "Role")[0]
    assert role["rules"][0]["resources"] == ["configmaps"]
    script = by_kind(objects, "ConfigMap")[0]["data"]["write_node_info.py"]
    assert "budcluster.hardware.collector" in script and 'f"node-info-{NODE}"' in script


def test_collector_variant_can_be_switched_off() -> None:
    objects = render("node_info_collector", {"gaudi": {"enabled": False}})
    assert {d["metadata"]["name"] for d in by_kind(objects, "DaemonSet")} == {
        "rel-nvidia",
        "rel-plain",
    }


# --- model_transfer ---------------------------------------------------------------------------


def transfer(**overrides: Any) -> list[dict[str, Any]]:
    values = llama_transfer_values("registry/bud:1", **overrides)
    return render("model_transfer", values, release="model-llama")


def test_transfer_pvc_is_model_bytes_plus_headroom() -> None:
    pvc = by_kind(transfer(), "PersistentVolumeClaim")[0]
    # 16_060_522_496 B x 1.10 = 17_666_574_745.6 -> 17_666_574_745 B = 16848.1 MiB -> 16849 + 1024
    assert pvc["spec"]["resources"]["requests"]["storage"] == "17873Mi"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    explicit = by_kind(transfer(pvc={"name": "p", "size": "200Gi"}), "PersistentVolumeClaim")[0]
    assert explicit["spec"]["resources"]["requests"]["storage"] == "200Gi"


def test_transfer_job_runs_the_transfer_with_keys_from_a_secret() -> None:
    objects = transfer()
    validate_all(objects)
    job = by_kind(objects, "Job")[0]
    assert job["metadata"]["name"] == "model-llama-transfer"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "s3://models/llama",
        "/models/llama-3-1-8b",
        "--workers",
        "4",
        "--json",
    ]
    env = {e["name"]: e for e in container["env"]}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "llama-s3"
    assert env["PROGRESS_CONFIGMAP"]["value"] == "model-llama-transfer-progress"
    claim = job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == "llama-model"
    assert job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2]


def test_transfer_without_secret_has_no_key_env() -> None:
    job = by_kind(transfer(source={"uri": "hf://org/model", "s3Secret": {"name": ""}}), "Job")[0]
    names = {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_transfer_job_script_uses_the_transfer_engine() -> None:
    script = by_kind(transfer(), "ConfigMap")[0]["data"]["transfer_job.py"]
    assert "transfer_model(" in script and "progress.json" in script and "eta_s" in script


# --- bud_runtime_container ----------------------------------------------------------------------


def runtime(spec: RolloutSpec, *, openshift: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
    values = runtime_values(
        spec, pvc_name="llama-model", subdir="llama", openshift=openshift, **kwargs
    )
    return render("bud_runtime_container", values, release="rt-llama", namespace="bud-llama")


def test_runtime_from_a_tp2_plan_on_the_h100_node(
    tp2_rollout: RolloutSpec, tp2_plan: RuntimePlan
) -> None:
    objects = runtime(
        tp2_rollout,
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    )
    validate_all(objects)
    deployment = by_kind(objects, "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    engine = pod["containers"][0]
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert engine["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert engine["resources"] == tp2_plan.resources
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": H100_NODE}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert engine["image"] == tp2_plan.image and engine["args"] == tp2_plan.args
    assert "--tensor-parallel-size" in engine["args"]
    mount = next(m for m in engine["volumeMounts"] if m["name"] == "model")
    model_dir = engine["args"][engine["args"].index("--model") + 1]
    assert mount == {"name": "model", "mountPath": model_dir, "readOnly": True, "subPath": "llama"}
    claim = next(v for v in pod["volumes"] if v["name"] == "model")["persistentVolumeClaim"]
    assert claim == {"claimName": "llama-model", "readOnly": True}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert engine[probe]["httpGet"]["path"] == "/health"
    assert next(v for v in pod["volumes"] if v["name"] == "dshm")["emptyDir"]["medium"] == "Memory"
    service = by_kind(objects, "Service")[0]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert not by_kind(objects, "PodDisruptionBudget")
    assert not by_kind(objects, "Route") and not by_kind(objects, "Ingress")


def test_runtime_placement_by_gpu_product(tp2_rollout: RolloutSpec) -> None:
    pod = by_kind(runtime(tp2_rollout, gpu_product="NVIDIA-H100-80GB-HBM3"), "Deployment")[0][
        "spec"
    ]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def test_pdb_only_with_more_than_one_replica(tp2_rollout: RolloutSpec) -> None:
    two = RolloutSpec(
        deployment_name="x",
        plan=tp2_rollout.plan.model_copy(update={"replicas": 2}),
        model_path=tp2_rollout.model_path,
    )
    objects = runtime(two)
    validate_all(objects)
    pdb = by_kind(objects, "PodDisruptionBudget")
    assert len(pdb) == 1 and pdb[0]["spec"]["minAvailable"] == 1
    assert by_kind(objects, "Deployment")[0]["spec"]["replicas"] == 2


def test_route_and_security_context_only_on_openshift(tp2_rollout: RolloutSpec) -> None:
    objects = runtime(tp2_rollout, openshift=True)
    validate_all(objects)
    route = by_kind(objects, "Route")
    assert len(route) == 1 and route[0]["spec"]["to"]["name"] == "rt-llama"
    pod = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["capabilities"]["drop"] == ["ALL"]
    plain = by_kind(runtime(tp2_rollout), "Deployment")[0]["spec"]["template"]["spec"]
    assert "securityContext" not in plain


def test_ingress_off_openshift_when_enabled(tp2_rollout: RolloutSpec) -> None:
    values = runtime_values(tp2_rollout, pvc_name="p", subdir="", openshift=False)
    values["ingress"] = {"enabled": True, "host": "llama.example.com", "className": "nginx"}
    objects = render("bud_runtime_container", values)
    validate_all(objects)
    ingress = by_kind(objects, "Ingress")[0]
    assert ingress["spec"]["rules"][0]["host"] == "llama.example.com"


def test_secret_env_is_a_reference_not_plaintext(tp2_rollout: RolloutSpec) -> None:
    values = runtime_values(tp2_rollout, pvc_name="p", subdir="", openshift=False)
    values["secretEnv"] = {"HF_TOKEN": {"secretName": "hf", "key": "token"}}
    objects = render("bud_runtime_container", values)
    env = {
        e["name"]: e
        for e in by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert env["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
    }


# --- litellm_container ------------------------------------------------------------------------------


def test_litellm_config_lists_every_endpoint() -> None:
    import yaml

    endpoints = [
        {"modelName": "llama", "model": "llama-70b", "apiBase": "http://rt-a.bud-x.svc:8000/v1"},
        {"modelName": "llama", "model": "llama-70b", "apiBase": "http://rt-b.bud-x.svc:8000/v1"},
    ]
    objects = render(
        "litellm_container", {"endpoints": endpoints, "masterKeySecret": {"name": "ll-key"}}
    )
    validate_all(objects)
    config = yaml.safe_load(by_kind(objects, "ConfigMap")[0]["data"]["config.yaml"])
    assert [m["litellm_params"]["api_base"] for m in config["model_list"]] == [
        e["apiBase"] for e in endpoints
    ]
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    env = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [
        {
            "name": "LITELLM_MASTER_KEY",
            "valueFrom": {"secretKeyRef": {"name": "ll-key", "key": "master-key"}},
        }
    ]


def test_litellm_refuses_an_endpoint_without_a_url() -> None:
    with pytest.raises(HelmRenderError, match="apiBase"):
        render("litellm_container", {"endpoints": [{"modelName": "m", "model": "m"}]})


def test_litellm_marks_its_deployment_with_the_published_config_hash() -> None:
    from budcluster.gateway import GatewayRoute, config_hash, gateway_values

    routes = [GatewayRoute("llama-8b", "llama-8b", "http://rt-a.bud-x.svc:8000/v1")]
    values = gateway_values(routes)
    digest = config_hash(values)
    objects = render("litellm_container", {**values, "configHash": digest})
    validate_all(objects)
    deployment = by_kind(objects, "Deployment")[0]
    assert deployment["metadata"]["annotations"] == {"budcluster.io/config-hash": digest}
    # The pod template's own checksum rolls the pods when the LiteLLM config changes.
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    other = render(
        "litellm_container",
        gateway_values([*routes, GatewayRoute("m2", "m2", "http://rt-b.bud-x.svc:8000/v1")]),
    )
    other_template = by_kind(other, "Deployment")[0]["spec"]["template"]["metadata"]
    assert (
        template["budcluster.io/config-sha"]
        != other_template["annotations"]["budcluster.io/config-sha"]
    )
    # Without a hash (helm install by hand) there is no annotation at all.
    assert "annotations" not in by_kind(other, "Deployment")[0]["metadata"]


def test_litellm_refuses_a_hash_that_is_not_hex() -> None:
    with pytest.raises(HelmRenderError, match="configHash"):
        render("litellm_container", {"configHash": "not hex!"})
