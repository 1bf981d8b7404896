"""LoRA adapters on Kubernetes at the manifest level, rendered by Helm itself: the runtime
chart mounts each adapter's directory of the model's PVC where the planner's argv loads it
from, the adapter's transfer Job copies into the model's PVC without making one, and the
model's PVC is sized for the adapters too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import PlanRequest, plan
from budcluster.planning.lora import staged_adapter_name
from budcluster.planning.models import PlannedAdapter, RuntimePlan
from budcluster.targets.base import RolloutSpec
from budcluster.targets.kubernetes import runtime_values, transfer_values
from budcluster.targets.kubernetes.errors import KubernetesTargetError
from budcluster.targets.kubernetes.names import adapter_job_for
from budcluster.targets.kubernetes.values import quantity_bytes
from tests.kubernetes.helpers import by_kind, render
from tests.kubernetes.test_charts import validate_all

MODELS = Path(__file__).parents[1] / "fixtures" / "models"
NODE = NodeInventory.model_validate(
    {
        "node_name": "cpu-1",
        "cpu": {
            "architecture": "x86_64",
            "logical_cpus": 8,
            "sockets": 1,
            "cores_per_socket": 8,
            "threads_per_core": 1,
            "numa_nodes": [{"id": 0, "cpus": list(range(8))}],
            "isa_flags": ["avx2"],
        },
        "memory": {"total_mib": 65536, "available_mib": 60000},
    }
)
NAMESPACE = "bud-qwen-0123abcd"
CLAIM = "model-qwen-0123abcd-model"
TONE_DIR = staged_adapter_name("tone", "s3://adapters/tone")
SQL_DIR = staged_adapter_name("sql", "s3://adapters/sql")
TONE_PEFT = PlannedAdapter(name="tone", format="peft", rank=12, source_path="/tmp/x/tone")
SQL_PEFT = PlannedAdapter(name="sql", format="peft", rank=8, source_path="/tmp/x/sql")
TONE_GGUF = PlannedAdapter(
    name="tone", format="gguf", rank=8, source_path="/tmp/x/tone", file="tone.gguf"
)


def _plan(*adapters: PlannedAdapter, gguf: bool = False) -> RuntimePlan:
    facts = load_model_facts(MODELS / "Qwen2.5-0.5B-Instruct")
    if gguf:
        facts = facts.model_copy(update={"gguf_file": "/ctl/qwen/qwen.gguf"})
    request = PlanRequest(device="cpu", served_model_name="qwen", adapters=list(adapters))
    return plan(facts, [NODE], request)


def _rollout(served: RuntimePlan, paths: dict[str, str]) -> RolloutSpec:
    return RolloutSpec("qwen", served, f"pvc://{NAMESPACE}/{CLAIM}/qwen", adapter_paths=paths)


def _engine(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container) | {"volumes": deployment["spec"]["template"]["spec"]["volumes"]}


def _render_runtime(spec: RolloutSpec) -> list[dict[str, Any]]:
    values = runtime_values(spec, pvc_name=CLAIM, subdir="qwen", openshift=False)
    return render("bud_runtime_container", values, release="rt-qwen", namespace=NAMESPACE)


def test_vllm_loads_each_adapter_from_its_directory_of_the_model_volume() -> None:
    served = _plan(TONE_PEFT, SQL_PEFT)
    objects = _render_runtime(
        _rollout(
            served,
            {
                "tone": f"pvc://{NAMESPACE}/{CLAIM}/{TONE_DIR}",
                "sql": f"pvc://{NAMESPACE}/{CLAIM}/{SQL_DIR}",
            },
        )
    )
    validate_all(objects)
    engine = _engine(objects)
    args = engine["args"]
    start = args.index("--enable-lora")
    assert args[start:] == [
        "--enable-lora", "--max-loras", "2", "--max-lora-rank", "16",
        "--lora-modules", "tone=/adapters/tone", "sql=/adapters/sql",
    ]  # fmt: skip
    assert engine["volumeMounts"][:3] == [
        {"name": "model", "mountPath": "/models/Qwen2.5-0.5B-Instruct", "readOnly": True,
         "subPath": "qwen"},
        {"name": "model", "mountPath": "/adapters/tone", "readOnly": True, "subPath": TONE_DIR},
        {"name": "model", "mountPath": "/adapters/sql", "readOnly": True, "subPath": SQL_DIR},
    ]  # fmt: skip
    (model,) = [v for v in engine["volumes"] if v["name"] == "model"]
    assert model["persistentVolumeClaim"] == {"claimName": CLAIM, "readOnly": True}
    assert TONE_DIR.startswith("lora-tone-") and len(TONE_DIR) == len("lora-tone-") + 12


def test_llama_server_loads_the_gguf_file_in_the_mounted_directory_at_scale_zero() -> None:
    served = _plan(TONE_GGUF, gguf=True)
    objects = _render_runtime(_rollout(served, {"tone": f"pvc://{NAMESPACE}/{CLAIM}/{TONE_DIR}"}))
    validate_all(objects)
    engine = _engine(objects)
    assert engine["args"][-2:] == ["--lora-scaled", "/adapters/tone/tone.gguf:0"]
    assert engine["args"].count("--lora-scaled") == 1
    assert engine["volumeMounts"][1] == {
        "name": "model",
        "mountPath": "/adapters/tone",
        "readOnly": True,
        "subPath": TONE_DIR,
    }


def test_a_plan_without_adapters_mounts_only_the_model() -> None:
    engine = _engine(_render_runtime(_rollout(_plan(), {})))
    assert [m["mountPath"] for m in engine["volumeMounts"]] == [
        "/models/Qwen2.5-0.5B-Instruct",
        "/dev/shm",
    ]
    assert not any(a.startswith("--lora") or a == "--enable-lora" for a in engine["args"])


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ({}, "adapter 'tone' has no staged directory"),
        ({"tone": f"pvc://other-ns/{CLAIM}/{TONE_DIR}"}, "not in the model's volume"),
        ({"tone": f"pvc://{NAMESPACE}/other-claim/{TONE_DIR}"}, "not in the model's volume"),
        ({"tone": f"pvc://{NAMESPACE}/{CLAIM}"}, "not in the model's volume"),
        ({"tone": "/state/models/lora-tone"}, "is not a staged Kubernetes model"),
    ],
)
def test_an_adapter_outside_the_model_volume_is_refused(
    paths: dict[str, str], message: str
) -> None:
    with pytest.raises(KubernetesTargetError, match=message):
        runtime_values(
            _rollout(_plan(TONE_PEFT), paths), pvc_name=CLAIM, subdir="qwen", openshift=False
        )


def test_a_hostile_adapter_directory_is_refused_by_the_chart_schema() -> None:
    values = runtime_values(
        _rollout(_plan(TONE_PEFT), {"tone": f"pvc://{NAMESPACE}/{CLAIM}/{TONE_DIR}"}),
        pvc_name=CLAIM,
        subdir="qwen",
        openshift=False,
    )
    values["model"]["adapters"][0]["subPath"] = "../../etc"
    with pytest.raises(Exception, match="subPath"):
        render("bud_runtime_container", values, release="rt-qwen", namespace=NAMESPACE)


def _transfer(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "image": "registry/bud:1",
        "model_name": "qwen",
        "source_uri": "s3://models/qwen",
        "model_bytes": 1_000_000_000,
        "s3_secret": "model-qwen-0123abcd-source",
        "node_name": "cpu-1",
        "pvc_name": CLAIM,
    }
    values.update(overrides)
    return transfer_values(**values)


def test_the_model_volume_is_sized_for_the_model_and_its_adapters() -> None:
    alone = by_kind(
        render("model_transfer", _transfer(), release="model-qwen"), "PersistentVolumeClaim"
    )
    both = by_kind(
        render("model_transfer", _transfer(adapter_bytes=300 * 2**20), release="model-qwen"),
        "PersistentVolumeClaim",
    )
    # (bytes x 110 / 100) rounded up to MiB, plus the 1024 MiB floor.
    assert alone[0]["spec"]["resources"]["requests"]["storage"] == "2074Mi"
    assert both[0]["spec"]["resources"]["requests"]["storage"] == f"{2074 + 330}Mi"
    assert both[0]["metadata"]["annotations"]["budcluster.io/adapter-bytes"] == str(300 * 2**20)
    kept = _transfer(adapter_bytes=300 * 2**20, pvc_size="4Gi")
    (claim,) = by_kind(
        render("model_transfer", kept, release="model-qwen"), "PersistentVolumeClaim"
    )
    assert claim["spec"]["resources"]["requests"]["storage"] == "4Gi"


def test_an_adapter_job_copies_into_the_model_volume_and_makes_no_claim() -> None:
    job_name = adapter_job_for("model-qwen-0123abcd", TONE_DIR)
    values = _transfer(
        model_name=TONE_DIR, source_uri="s3://adapters/tone", model_bytes=5000, job_name=job_name
    )
    objects = render("model_transfer", values, release="model-qwen-0123abcd", namespace=NAMESPACE)
    validate_all(objects)
    assert not by_kind(objects, "PersistentVolumeClaim")
    (job,) = by_kind(objects, "Job")
    assert job["metadata"]["name"] == job_name and len(job_name) <= 63
    assert job["metadata"]["labels"]["budcluster.io/release"] == "model-qwen-0123abcd"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == [
        "s3://adapters/tone",
        f"/models/{TONE_DIR}",
        "--workers",
        "4",
        "--json",
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PROGRESS_CONFIGMAP"] == f"{job_name}-progress"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "models"]
    assert volume["persistentVolumeClaim"] == {"claimName": CLAIM}
    assert pod["serviceAccountName"] == job_name
    (role,) = by_kind(objects, "Role")
    assert role["rules"][1]["resourceNames"] == [f"{job_name}-progress"]
    # The model's own Job keeps its name and still makes the claim.
    model_objects = render("model_transfer", _transfer(), release="model-qwen-0123abcd")
    assert [j["metadata"]["name"] for j in by_kind(model_objects, "Job")] == [
        "model-qwen-0123abcd-transfer"
    ]
    assert by_kind(model_objects, "PersistentVolumeClaim")


def test_adapter_jobs_of_one_model_have_names_of_their_own() -> None:
    release = "model-" + "q" * 38 + "-0123abcd"
    names = {
        adapter_job_for(release, d)
        for d in (TONE_DIR, SQL_DIR, "lora-" + "x" * 40 + "-" + "a" * 12)
    }
    assert len(names) == 3 and all(len(n) <= 63 for n in names)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2074Mi", 2074 * 2**20), ("4Gi", 4 * 2**30), ("10G", 10 * 10**9), ("5000", 5000),
     ("1.5Gi", 3 * 2**29), ("2k", 2000)],
)  # fmt: skip
def test_storage_quantities(text: str, expected: int) -> None:
    assert quantity_bytes(text) == expected


def test_a_storage_quantity_it_cannot_read_is_an_error() -> None:
    with pytest.raises(KubernetesTargetError, match="'2K'"):
        quantity_bytes("2K")
