"""The values this target renders its charts with, and the S3 key Secret a staging applies."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from budcluster.autoscaling import (
    LLAMA_CPP_METRICS_FLAG,
    AutoscalingSpec,
    prometheus_query,
    quantity,
)
from budcluster.planning.lora import ADAPTER_MOUNT
from budcluster.targets.base import ModelSourceSpec, RolloutSpec
from budcluster.targets.kubernetes.errors import KubernetesTargetConfigError, KubernetesTargetError
from budcluster.targets.kubernetes.names import parse_pvc_path, slug

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_SUFFIX_POWERS = {"k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
_SUFFIX_POWERS |= {"P": 1000**5, "E": 1000**6}
_SUFFIX_POWERS |= {f"{s}i": 1024 ** (i + 1) for i, s in enumerate("KMGTPE")}
_MODEL_FLAGS = {"vllm": ("--model",), "llama.cpp": ("-m", "--model")}


def quantity_bytes(text: str) -> int:
    """A storage quantity (``1536Mi``, ``2Gi``, ``10G``, ``5000``) in bytes."""
    found = _QUANTITY.match(text.strip())
    if found is None:
        raise KubernetesTargetError(f"storage quantity {text!r} is not one this target reads")
    number, suffix = found.groups()
    return int(float(number) * _SUFFIX_POWERS.get(suffix or "", 1))


def _flag_value(args: Sequence[str], flags: Sequence[str]) -> str | None:
    for index, arg in enumerate(args[:-1]):
        if arg in flags:
            return args[index + 1]
    return None


def runtime_values(
    spec: RolloutSpec,
    *,
    pvc_name: str,
    subdir: str,
    openshift: bool,
    tolerations: Sequence[Mapping[str, Any]] = (),
    node_selector: Mapping[str, str] | None = None,
    gpu_product: str | None = None,
    namespace: str = "",
    release: str = "",
    keda: bool = False,
) -> dict[str, Any]:
    """bud_runtime_container values for a RuntimePlan.

    With ``spec.autoscaling`` the chart renders a HorizontalPodAutoscaler on the engine's
    metric, or with ``keda`` (KEDA's ScaledObject is served) a ScaledObject whose Prometheus
    query sums the metric over the release's pods in ``namespace``.

    Placement pins the pods to the plan's node by hostname; with ``gpu_product`` it selects
    any node with that GPU Feature Discovery product instead. ``tolerations`` and
    ``node_selector`` (the deploy form's) let the pods onto a tainted or labelled pool; the
    chart adds the placement's labels to the selector. The model directory of the
    PVC (``subdir``) is mounted where the plan's args expect it: the ``--model`` directory
    for vLLM, the GGUF file's directory for llama.cpp (as the hosts target does).
    """
    plan = spec.plan
    nodes = sorted({p.node_name for p in plan.placements})
    placement = {"hostname": "", "gpuProduct": ""}
    if gpu_product:
        placement["gpuProduct"] = gpu_product
    elif len(nodes) == 1:
        placement["hostname"] = nodes[0]
    in_container = _flag_value(plan.args, _MODEL_FLAGS[plan.engine])
    if in_container is None or not in_container.startswith("/"):
        raise KubernetesTargetError(
            "the plan's container args name no absolute model path (--model/-m): re-plan"
        )
    mount = str(Path(in_container).parent) if plan.engine == "llama.cpp" else in_container
    port = _flag_value(plan.args, ("--port",))
    args = list(plan.args)
    if spec.autoscaling and plan.engine == "llama.cpp" and LLAMA_CPP_METRICS_FLAG not in args:
        args.append(LLAMA_CPP_METRICS_FLAG)
    return {
        "image": plan.image,
        "args": args,
        "env": dict(plan.env),
        "resources": {k: dict(v) for k, v in plan.resources.items()},
        "replicas": plan.replicas,
        "port": int(port) if port and port.isdigit() else spec.port,
        "servedModelName": plan.served_model_name,
        "model": {
            "pvcName": pvc_name,
            "mountPath": mount,
            "subPath": subdir,
            "adapters": adapter_mounts(spec, pvc_name),
        },
        "placement": placement,
        "nodeSelector": dict(node_selector or {}),
        "tolerations": [dict(t) for t in tolerations],
        # TP workers talk through /dev/shm; single-device engines need little.
        "shmSizeMiB": 8192 if plan.tensor_parallel_size > 1 else 1024,
        "service": {"type": "ClusterIP", "port": spec.port},
        "openshift": openshift,
        "route": {"enabled": openshift, "host": ""},
        "autoscaling": autoscaling_values(
            spec.autoscaling, plan.engine, namespace=namespace, release=release, keda=keda
        ),
    }


def adapter_mounts(spec: RolloutSpec, pvc_name: str) -> list[dict[str, str]]:
    """Each LoRA adapter's directory of the model's PVC, mounted where the plan's args load
    it from (``/adapters/<name>``, the args :func:`budcluster.planning.lora.with_adapters`
    wrote); a pod mounts only claims of its own namespace, so each must be in the model's."""
    mounts: list[dict[str, str]] = []
    for adapter in spec.plan.adapters:
        staged = spec.adapter_paths.get(adapter.name)
        if staged is None:
            raise KubernetesTargetError(
                f"adapter {adapter.name!r} has no staged directory; stage it beside the model "
                "(stage_adapter) before the rollout"
            )
        namespace, claim, directory = parse_pvc_path(staged)
        model_namespace = parse_pvc_path(spec.model_path)[0]
        if claim != pvc_name or namespace != model_namespace or not directory:
            raise KubernetesTargetError(
                f"adapter {adapter.name!r} is staged at {staged}, not in the model's volume "
                f"pvc://{model_namespace}/{pvc_name}; stage it beside the model"
            )
        mounts.append({"mountPath": f"{ADAPTER_MOUNT}/{adapter.name}", "subPath": directory})
    return mounts


def autoscaling_values(
    autoscaling: AutoscalingSpec | None, engine: str, *, namespace: str, release: str, keda: bool
) -> dict[str, Any]:
    """The chart's ``autoscaling`` values; ``{"enabled": False}`` without autoscaling."""
    if autoscaling is None:
        return {"enabled": False}
    try:
        metric = autoscaling.metric_name(engine)
    except ValueError as exc:
        raise KubernetesTargetError(f"autoscaling: {exc}") from exc
    return {
        "enabled": True,
        "minReplicas": autoscaling.min_replicas,
        "maxReplicas": autoscaling.max_replicas,
        "metric": metric,
        "targetAverageValue": quantity(autoscaling.target_per_replica),
        "scaleUpStabilizationSeconds": autoscaling.scale_up_stabilization_s,
        "scaleDownStabilizationSeconds": autoscaling.scale_down_stabilization_s,
        "keda": {
            "enabled": keda,
            "serverAddress": autoscaling.prometheus_url,
            "query": prometheus_query(metric, namespace, release),
            # KEDA parses the threshold as a float, not as a quantity.
            "threshold": f"{autoscaling.target_per_replica:.12g}",
        },
    }


def transfer_values(
    *,
    image: str,
    model_name: str,
    source_uri: str,
    model_bytes: int,
    s3_secret: str,
    node_name: str | None,
    pvc_name: str,
    adapter_bytes: int = 0,
    pvc_size: str = "",
    job_name: str = "",
    tolerations: Sequence[Mapping[str, Any]] = (),
    node_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """model_transfer values. A model's Job creates the PVC, sized for the model and the
    ``adapter_bytes`` staged beside it (``pvc_size`` keeps a live claim's size); an
    adapter's Job (``job_name`` given) copies into that PVC and creates none. Every Job
    takes the runtime's tolerations and node selector so it can run on (and bind the
    volume in) the tainted or labelled pool the runtime uses."""
    return {
        "image": image,
        "modelName": slug(model_name),
        "source": {"uri": source_uri, "s3Secret": {"name": s3_secret}},
        "modelBytes": model_bytes,
        "adapterBytes": adapter_bytes,
        "jobName": job_name,
        "pvc": {"name": pvc_name, "create": not job_name, "size": pvc_size},
        "nodeName": node_name or "",
        "nodeSelector": dict(node_selector or {}),
        "tolerations": [dict(t) for t in tolerations],
    }


def source_secret(source: ModelSourceSpec, namespace: str, release: str) -> dict[str, Any] | None:
    """The Secret that hands the source's keys to the transfer Job; None when it needs none."""
    if not source.credentials_env:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{release}-source", "namespace": namespace},
        "type": "Opaque",
        "stringData": dict(source.credentials_env),
    }


COLLECTOR_VARIANTS = ("nvidia", "gaudi", "plain")
_COLLECTOR_TOP_KEYS = {"tolerations", "resources", "refreshSeconds", "collectTimeoutSeconds"}
_COLLECTOR_VARIANT_KEYS = {"enabled", "runtimeClassName", "nodeSelector", "affinity", "tolerations"}
_COLLECTOR_TYPES: dict[str, type | tuple[type, ...]] = {
    "tolerations": list,
    "resources": dict,
    "refreshSeconds": int,
    "collectTimeoutSeconds": int,
    "enabled": bool,
    "runtimeClassName": str,
    "nodeSelector": dict,
    "affinity": dict,
}


def collector_values(image: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """node_info_collector values: the tools image plus the operator's placement overrides
    (``BUDCLUSTER_KUBERNETES_COLLECTOR_VALUES``). Only the placement and sizing keys are
    taken; the image stays the tools image setting, and the node labels that tell the
    variants apart stay the chart's. Helm merges these over the chart's defaults per key."""
    values: dict[str, Any] = {"image": image}
    for key, value in (overrides or {}).items():
        if key in COLLECTOR_VARIANTS:
            if not isinstance(value, Mapping):
                raise _collector_error(key, "must be a mapping of the variant's values")
            variant = {}
            for sub, sub_value in value.items():
                if sub not in _COLLECTOR_VARIANT_KEYS:
                    raise _collector_error(
                        f"{key}.{sub}", f"is not one of {sorted(_COLLECTOR_VARIANT_KEYS)}"
                    )
                _check_type(f"{key}.{sub}", _COLLECTOR_TYPES[sub], sub_value)
                variant[str(sub)] = sub_value
            values[key] = variant
        elif key in _COLLECTOR_TOP_KEYS:
            _check_type(key, _COLLECTOR_TYPES[key], value)
            values[str(key)] = value
        else:
            allowed = sorted({*_COLLECTOR_TOP_KEYS, *COLLECTOR_VARIANTS})
            raise _collector_error(str(key), f"is not one of {allowed}")
    return values


def _check_type(key: str, expected: type | tuple[type, ...], value: object) -> None:
    # bool is an int in Python; a count given as true is a mistake.
    wrong_bool = isinstance(value, bool) and expected is int
    if wrong_bool or not isinstance(value, expected):
        name = expected.__name__ if isinstance(expected, type) else str(expected)
        raise _collector_error(key, f"must be a {name}, not {type(value).__name__}")


def _collector_error(key: str, problem: str) -> KubernetesTargetConfigError:
    return KubernetesTargetConfigError(
        f"collector values (BUDCLUSTER_KUBERNETES_COLLECTOR_VALUES): {key} {problem} "
        "(docs/kubernetes.md, 'Tainted node pools, cordons and node selectors')"
    )
