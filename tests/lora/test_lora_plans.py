"""LoRA adapters at the argv level: the planner's flags for each engine, where the hosts
target loads them from, how a request selects one, the forms and the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from budcluster.errors import ConfigurationError
from budcluster.hardware.inventory import NodeInventory
from budcluster.job_requests import BenchmarkEndpointRequest, DeployModelRequest
from budcluster.modelfacts import load_model_facts
from budcluster.modelfacts.lora import load_adapter_facts
from budcluster.planning import PlanRequest, plan
from budcluster.planning.lora import adapter_selection, planned_adapter, staged_adapter_name
from budcluster.planning.models import PlannedAdapter, RuntimePlan
from budcluster.store import Store
from budcluster.store.lora_adapters import list_adapters, register_adapter
from budcluster.store.models_catalog import save_model
from budcluster.store.validation import InvalidValue
from budcluster.targets.base import RolloutSpec
from budcluster.targets.hosts.errors import HostsConfigError
from budcluster.targets.hosts.render import RestartPolicy, container_run_argv, host_argv
from budcluster.targets.kubernetes.errors import KubernetesTargetError
from budcluster.targets.kubernetes.values import runtime_values

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
PEFT_A = PlannedAdapter(name="tone", format="peft", rank=12, source_path="/ctl/tone")
PEFT_B = PlannedAdapter(name="sql", format="peft", rank=8, source_path="/ctl/sql")
GGUF_A = PlannedAdapter(
    name="tone", format="gguf", rank=8, source_path="/ctl/tone", file="tone.gguf"
)


def _vllm_plan(*adapters: PlannedAdapter, extra: list[str] | None = None) -> RuntimePlan:
    facts = load_model_facts(MODELS / "Qwen2.5-0.5B-Instruct")
    request = PlanRequest(
        device="cpu", served_model_name="qwen", adapters=list(adapters), extra_args=extra or []
    )
    return plan(facts, [NODE], request)


def _llama_plan(*adapters: PlannedAdapter) -> RuntimePlan:
    facts = load_model_facts(MODELS / "Qwen2.5-0.5B-Instruct").model_copy(
        update={"gguf_file": "/ctl/qwen/qwen.gguf"}
    )
    request = PlanRequest(device="cpu", served_model_name="qwen", adapters=list(adapters))
    return plan(facts, [NODE], request)


def test_vllm_serves_each_peft_adapter_under_its_name_before_the_extra_args() -> None:
    base = _vllm_plan()
    served = _vllm_plan(PEFT_A, PEFT_B, extra=["--seed", "1"])
    lora = [
        "--enable-lora", "--max-loras", "2", "--max-lora-rank", "16",
        "--lora-modules",
    ]  # fmt: skip
    assert served.args == [*base.args, *lora, "tone=/adapters/tone", "sql=/adapters/sql",
                           "--seed", "1"]  # fmt: skip
    assert served.host_command[-5:] == ["--lora-modules", "tone=/ctl/tone", "sql=/ctl/sql",
                                        "--seed", "1"]  # fmt: skip
    assert [a.name for a in served.adapters] == ["tone", "sql"]
    assert adapter_selection(served, "sql") == ("sql", {})
    assert adapter_selection(served, None) == ("qwen", {})


def test_llama_server_loads_gguf_adapters_at_scale_zero_and_requests_select_them() -> None:
    served = _llama_plan(GGUF_A)
    assert served.engine == "llama.cpp"
    assert served.args[-2:] == ["--lora-scaled", "/adapters/tone/tone.gguf:0"]
    assert served.host_command[-2:] == ["--lora-scaled", "/ctl/tone/tone.gguf:0"]
    assert adapter_selection(served, "tone") == ("qwen", {"lora": [{"id": 0, "scale": 1.0}]})
    assert adapter_selection(served, None) == ("qwen", {"lora": [{"id": 0, "scale": 0.0}]})
    with pytest.raises(ConfigurationError, match="adapter 'nope' is not served"):
        adapter_selection(served, "nope")


@pytest.mark.parametrize(
    ("build", "adapter", "message"),
    [
        (_llama_plan, PEFT_A, "llama.cpp loads gguf adapters; convert it"),
        (_vllm_plan, GGUF_A, "vllm loads peft adapters"),
        (_vllm_plan, PEFT_A.model_copy(update={"name": "qwen"}), "own served model name"),
        (_vllm_plan, PEFT_A.model_copy(update={"rank": 1024}), "above vLLM's largest"),
        (_vllm_plan, PEFT_A.model_copy(update={"source_path": "/a,b"}), "holds a ',' or ':'"),
    ],
)
def test_adapters_the_engine_cannot_load_are_refused(
    build: object, adapter: PlannedAdapter, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build(adapter)  # type: ignore[operator]


def test_hosts_load_the_adapters_from_their_staged_directories() -> None:
    served = _llama_plan(GGUF_A)
    staged = {"tone": "/state/models/lora-tone-abc"}
    argv = host_argv(served, "/state/models/qwen", {}, 9000, staged)
    assert argv[argv.index("--lora-scaled") + 1] == "/state/models/lora-tone-abc/tone.gguf:0"
    assert "/ctl/tone" not in " ".join(argv)
    docker = container_run_argv(
        "docker", "c", served, "/state/models/qwen", 9000, "sha", RestartPolicy(), staged
    )
    assert "/state/models/lora-tone-abc:/adapters/tone:ro" in docker
    with pytest.raises(HostsConfigError, match=r"adapters \['tone'\] have no staged directory"):
        host_argv(served, "/state/models/qwen", {}, 9000, {})


def test_kubernetes_mounts_the_adapters_from_the_model_volume() -> None:
    """The container args stay the planner's (``/adapters/<name>``); the target mounts each
    staged directory of the model's claim there (tests/kubernetes/test_lora_charts.py
    renders it)."""
    served = _vllm_plan(PEFT_A)
    spec = RolloutSpec(
        "qwen", served, "pvc://ns/claim/qwen", adapter_paths={"tone": "pvc://ns/claim/lora-t"}
    )
    values = runtime_values(spec, pvc_name="claim", subdir="qwen", openshift=False)
    assert values["args"] == served.args
    assert values["model"]["adapters"] == [{"mountPath": "/adapters/tone", "subPath": "lora-t"}]
    with pytest.raises(KubernetesTargetError, match="adapter 'tone' has no staged directory"):
        runtime_values(
            RolloutSpec("qwen", served, "pvc://ns/claim/qwen"),
            pvc_name="claim",
            subdir="qwen",
            openshift=False,
        )


def _form(**values: object) -> DeployModelRequest:
    return DeployModelRequest.model_validate(
        {"name": "qwen", "cluster": "lab", "model": {"uri": "/m/qwen"}, **values}
    )


def test_the_deploy_form_checks_adapter_names_and_keeps_old_hashes() -> None:
    assert _form().spec_hash() == _form(adapters=[]).spec_hash()
    with_adapter = _form(adapters=[{"name": "tone", "uri": "/a/tone"}])
    assert with_adapter.spec_hash() != _form().spec_hash()
    for bad, message in [
        ([{"name": "Tone!", "uri": "/a"}], "adapter name 'Tone!'"),
        ([{"name": "t", "uri": "/a"}, {"name": "t", "uri": "/b"}], "given twice"),
        ([{"name": "qwen", "uri": "/a"}], "deployment's own name"),
        ([{"name": "x" * 41, "uri": "/a"}], "longer than 40"),
    ]:
        with pytest.raises(ValidationError, match=message):
            _form(adapters=bad)
    with pytest.raises(ValidationError, match=r"benchmark\.adapter 'sql' is not one of"):
        _form(adapters=[{"name": "tone", "uri": "/a"}], benchmark={"adapter": "sql"})
    # On Kubernetes a pod copies the adapter: a controller directory is refused up front.
    with pytest.raises(ConfigurationError, match=r"adapters: 'tone' has uri '/a/tone', a dir"):
        with_adapter.check_plan(_vllm_plan(), "kubernetes")
    _form(adapters=[{"name": "tone", "uri": "s3://b/tone"}]).check_plan(_vllm_plan(), "openshift")
    with_adapter.check_plan(_vllm_plan(), "hosts")
    with pytest.raises(ValidationError, match=r"profile\.adapter needs cluster and deployment"):
        BenchmarkEndpointRequest(url="http://x", model="m", profile={"adapter": "tone"})  # type: ignore[arg-type]
    assert staged_adapter_name("tone", "/a") != staged_adapter_name("tone", "/b")


def test_adapter_facts_from_a_peft_directory(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]})
    )
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    facts = load_adapter_facts(tmp_path)
    assert (facts.format, facts.rank, facts.alpha, facts.file) == ("peft", 4, 8.0, None)
    assert planned_adapter("tone", facts).source_path == str(tmp_path)


def test_adapters_are_registered_under_their_model(store: Store) -> None:
    with store.session() as session:
        model = save_model(session, name="qwen", source_uri="/m/qwen", format="gguf", files=[])
        register_adapter(
            session, model_id=model.id, name="tone", source_uri="/a/1", format="gguf", rank=8
        )
        again = register_adapter(
            session, model_id=model.id, name="tone", source_uri="/a/2", format="gguf", rank=16
        )
        assert [(a.id, a.source_uri, a.rank) for a in list_adapters(session, model.id)] == [
            (again.id, "/a/2", 16)
        ]
        with pytest.raises(InvalidValue, match="adapter format='lora'"):
            register_adapter(session, model_id=model.id, name="x", source_uri="/a", format="lora")
