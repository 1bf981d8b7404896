"""The values this target renders its charts with, and the S3 key Secret a staging applies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from budcluster.autoscaling import (
    LLAMA_CPP_METRICS_FLAG,
    AutoscalingSpec,
    prometheus_query,
    quantity,
)
from budcluster.targets.base import ModelSourceSpec, RolloutSpec
from budcluster.targets.kubernetes.errors import KubernetesTargetConfigError, KubernetesTargetError
from budcluster.targets.kubernetes.names import slug

_MODEL_FLAGS = {"vllm": ("--model",), "llama.cpp": ("-m", "--model")}


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
    if plan.adapters:
        # The adapters are staged per model into PVCs of their own namespaces, which a
        # runtime pod cannot mount; deploy-model refuses them before staging.
        raise KubernetesTargetError(
            "LoRA adapters are served on hosts clusters only; deploy without adapters here"
        )
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
        "model": {"pvcName": pvc_name, "mountPath": mount, "subPath": subdir},
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
    tolerations: Sequence[Mapping[str, Any]] = (),
    node_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """model_transfer values; the Job takes the runtime's tolerations and node selector so
    it can run on (and bind its volume in) the tainted or labelled pool the runtime uses."""
    return {
        "image": image,
        "modelName": slug(model_name),
        "source": {"uri": source_uri, "s3Secret": {"name": s3_secret}},
        "modelBytes": model_bytes,
        "pvc": {"name": pvc_name},
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
