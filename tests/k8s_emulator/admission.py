"""What the real API server does to an object before storing it: type checks, defaults the
project relies on, and the validation errors (422) a mistaken manifest would get."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.autoscaler import default_hpa, hpa_causes
from tests.k8s_emulator.crds import crd_causes
from tests.k8s_emulator.errors import bad_request, invalid
from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.selectors import labels_match, selector_from_object

if TYPE_CHECKING:
    from tests.k8s_emulator.store import Store

Obj = dict[str, Any]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# RBAC kinds: any name that is a valid URL path segment (apiserver's ValidateRBACName).
PATH_SEGMENT_NAMED = frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings"})
# Kinds whose names must be DNS-1123 labels (63 chars) rather than subdomains (253).
LABEL_NAMED = {"namespaces", "services"}


def check_type(rt: ResourceType, obj: Obj) -> None:
    if not isinstance(obj, dict):
        raise bad_request("the request body must be a JSON or YAML object")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version and api_version != rt.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind


_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of rand.SafeEncodeString


def template_hash(template: Any) -> str:
    """A pod-template-hash like the Deployment controller's (10 safe characters)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in digest[:10])


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
        resources = container["resources"]
        # Limits without requests default the requests to the limits (real defaulting).
        if resources.get("limits"):
            requests = resources.setdefault("requests", {})
            for name, value in resources["limits"].items():
                requests.setdefault(name, value)


def default(rt: ResourceType, obj: Obj, store: Store, live: Obj | None = None) -> None:
    spec = obj.get("spec")
    meta = obj["metadata"]
    if rt.plural == "namespaces":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif rt.plural == "pods" and isinstance(spec, dict):
        _default_pod_spec(spec)
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", _qos_class(spec))
    elif rt.plural in ("deployments", "replicasets", "daemonsets", "statefulsets", "jobs"):
        if isinstance(spec, dict):
            template = spec.get("template") or {}
            if isinstance(template.get("spec"), dict):
                _default_pod_spec(template["spec"])
            if rt.plural == "deployments":
                spec.setdefault("replicas", 1)
                spec.setdefault("revisionHistoryLimit", 10)
                spec.setdefault("progressDeadlineSeconds", 600)
                strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
                if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                    strategy.setdefault("type", "RollingUpdate")
                    strategy.setdefault(
                        "rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"}
                    )
            elif rt.plural == "replicasets":
                spec.setdefault("replicas", 1)
            elif rt.plural == "daemonsets":
                spec.setdefault("revisionHistoryLimit", 10)
                spec.setdefault(
                    "updateStrategy",
                    {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
                    },
                )
            elif rt.plural == "jobs":
                _default_job(obj, live)
        # Required (non-omitempty) status fields appear as zeros, as the real server sends.
        obj.setdefault("status", dict(_ZERO_STATUS.get(rt.plural, {})))
    elif rt.plural == "poddisruptionbudgets":
        obj.setdefault("status", dict(_ZERO_STATUS["poddisruptionbudgets"]))
    elif rt.plural == "services" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        if live is not None and (live.get("spec") or {}).get("clusterIP"):
            spec["clusterIP"] = live["spec"]["clusterIP"]
            spec["clusterIPs"] = live["spec"].get("clusterIPs", [live["spec"]["clusterIP"]])
        elif not spec.get("clusterIP"):
            ip = store.allocate_cluster_ip()
            spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        elif spec["clusterIP"] == "None":
            spec["clusterIPs"] = ["None"]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        obj.setdefault("status", {"loadBalancer": {}})
    elif rt.plural == "persistentvolumeclaims" and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        spec.setdefault("storageClassName", "standard")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif rt.plural == "secrets":
        _fold_string_data(obj)
    elif rt.plural == "serviceaccounts" or rt.plural == "configmaps":
        pass
    elif rt.plural == "horizontalpodautoscalers":
        default_hpa(obj)


def _fold_string_data(secret: Obj) -> None:
    """``stringData`` is write-only: the API server merges it into ``data`` (base64, its
    keys winning) and never stores it; ``type`` defaults to Opaque."""
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = dict(secret.get("data") or {})
        data.update(
            {str(k): base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()}
        )
        secret["data"] = data
    secret.setdefault("type", "Opaque")


_ZERO_STATUS: dict[str, dict[str, int]] = {
    "daemonsets": {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    },
    "replicasets": {"replicas": 0},
    "statefulsets": {"replicas": 0, "availableReplicas": 0},
    "poddisruptionbudgets": {
        "disruptionsAllowed": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "expectedPods": 0,
    },
}


def _default_job(obj: Obj, live: Obj | None) -> None:
    spec = obj["spec"]
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatedOrFailed")
    if spec.get("completions") is None and live is None:
        spec["completions"] = 1 if spec.get("parallelism") in (None, 1) else None
    spec.setdefault("parallelism", 1)
    if spec.get("manualSelector"):
        return
    uid = (live or {}).get("metadata", {}).get("uid") or obj["metadata"].get("uid")
    if uid is None:
        # The uid is not known yet at defaulting time on create: use a placeholder that
        # the store fills in (see fill_job_selector).
        uid = "$uid"
    labels = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid}
    if live is not None and (live.get("spec") or {}).get("selector"):
        spec["selector"] = live["spec"]["selector"]
    else:
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    tl = template_meta.setdefault("labels", {})
    tl.update(labels)
    tl.setdefault("batch.kubernetes.io/job-name", obj["metadata"]["name"])
    tl.setdefault("job-name", obj["metadata"]["name"])


def fill_job_selector(obj: Obj) -> None:
    """Replace the ``$uid`` placeholder with the Job's uid once the store assigned it."""
    text = json.dumps(obj.get("spec", {}))
    if '"$uid"' in text:
        obj["spec"] = json.loads(text.replace('"$uid"', json.dumps(obj["metadata"]["uid"])))


def _qos_class(spec: Obj) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    requests = [c.get("resources", {}).get("requests") or {} for c in containers]
    limits = [c.get("resources", {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        lim.get("cpu")
        and lim.get("memory")
        and req.get("cpu", lim["cpu"]) == lim["cpu"]
        and req.get("memory", lim["memory"]) == lim["memory"]
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def validate(rt: ResourceType, obj: Obj) -> None:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    causes: list[tuple[str, str]] = []
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif rt.plural in LABEL_NAMED:
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            causes.append(
                (
                    "metadata.name",
                    f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower '
                    "case alphanumeric characters or '-', and must start and end with an "
                    "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?') and be no more than 63 characters",
                )
            )
    elif rt.plural in PATH_SEGMENT_NAMED:
        # RBAC names are path segments (ValidateRBACName): `system:openshift:scc:x` is valid.
        if name in (".", ".."):
            causes.append(("metadata.name", f"Invalid value: \"{name}\": may not be '{name}'"))
        for bad in ("/", "%"):
            if bad in name:
                causes.append(
                    ("metadata.name", f"Invalid value: \"{name}\": may not contain '{bad}'")
                )
    elif rt.plural not in ("events",) and (len(name) > 253 or not DNS1123_SUBDOMAIN.match(name)):
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        )
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63:
            causes.append(
                ("metadata.labels", f'Invalid value: "{value}": must be no more than 63 characters')
            )
        if len(key.rsplit("/", 1)[-1]) > 63:
            causes.append(
                (
                    "metadata.labels",
                    f'Invalid value: "{key}": name part must be no more than 63 characters',
                )
            )
    spec = obj.get("spec")
    if rt.plural == "pods":
        causes += _pod_spec_causes("spec", spec)
    elif rt.plural in ("deployments", "replicasets", "daemonsets", "statefulsets", "jobs"):
        causes += _workload_causes(rt, spec)
    elif rt.plural == "horizontalpodautoscalers":
        causes += hpa_causes(spec)
    elif rt.plural == "customresourcedefinitions":
        causes += crd_causes(obj)
    elif rt.plural == "configmaps":
        for key in obj.get("data") or {}:
            if not re.match(r"^[-._a-zA-Z0-9]+$", key):
                causes.append(
                    (
                        f"data[{key}]",
                        f"Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
    if causes:
        raise invalid(rt, name, causes)


def _pod_spec_causes(path: str, spec: Any) -> list[tuple[str, str]]:
    if not isinstance(spec, dict):
        return [(path, "Required value")]
    causes: list[tuple[str, str]] = []
    containers = spec.get("containers")
    if not containers:
        causes.append((f"{path}.containers", "Required value"))
    for n, container in enumerate(containers or []):
        if not isinstance(container, dict):
            causes.append((f"{path}.containers[{n}]", "Invalid value: must be an object"))
            continue
        if not container.get("name"):
            causes.append((f"{path}.containers[{n}].name", "Required value"))
        if not container.get("image"):
            causes.append((f"{path}.containers[{n}].image", "Required value"))
    for n, toleration in enumerate(spec.get("tolerations") or []):
        causes += _toleration_causes(f"{path}.tolerations[{n}]", toleration)
    return causes


_QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _toleration_causes(path: str, toleration: Any) -> list[tuple[str, str]]:
    """The API server's ValidateTolerations (pkg/apis/core/validation), in its order."""
    if not isinstance(toleration, dict):
        return [(path, "Invalid value: must be an object")]
    causes: list[tuple[str, str]] = []
    key = str(toleration.get("key") or "")
    operator = str(toleration.get("operator") or "")
    value = str(toleration.get("value") or "")
    effect = str(toleration.get("effect") or "")
    if key:
        prefix, _, name = key.rpartition("/")
        if (
            not _QUALIFIED_NAME_PART.match(name)
            or len(name) > 63
            or (prefix and not DNS1123_SUBDOMAIN.match(prefix))
        ):
            causes.append(
                (
                    f"{path}.key",
                    f'Invalid value: "{key}": name part must consist of alphanumeric '
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character",
                )
            )
    if not key and operator != "Exists":
        causes.append(
            (
                f"{path}.operator",
                f'Invalid value: "{operator}": operator must be Exists when `key` is empty, '
                'which means "match all values and all keys"',
            )
        )
    if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
        causes.append(
            (
                f"{path}.effect",
                f"Invalid value: \"{effect}\": effect must be 'NoExecute' when "
                "`tolerationSeconds` is set",
            )
        )
    if operator in ("", "Equal"):
        if value and (len(value) > 63 or not _QUALIFIED_NAME_PART.match(value)):
            causes.append((f"{path}.operator", f'Invalid value: "{value}": a valid label value'))
    elif operator == "Exists":
        if value:
            causes.append(
                (
                    f"{path}.operator",
                    "Invalid value: core.Toleration{...}: value must be empty when "
                    "`operator` is 'Exists'",
                )
            )
    else:
        causes.append(
            (
                f"{path}.operator",
                f'Unsupported value: "{operator}": supported values: "Equal", "Exists"',
            )
        )
    if effect and effect not in _TAINT_EFFECTS:
        causes.append(
            (
                f"{path}.effect",
                f'Unsupported value: "{effect}": supported values: "NoSchedule", '
                '"PreferNoSchedule", "NoExecute"',
            )
        )
    return causes


def _workload_causes(rt: ResourceType, spec: Any) -> list[tuple[str, str]]:
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    causes: list[tuple[str, str]] = []
    template = spec.get("template") or {}
    causes += _pod_spec_causes("spec.template.spec", template.get("spec"))
    selector = spec.get("selector")
    if rt.plural != "jobs" and not selector:
        causes.append(("spec.selector", "Required value"))
    elif selector and "$uid" not in json.dumps(selector):
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not labels_match(selector_from_object(selector), labels):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`",
                )
            )
    if rt.plural == "jobs":
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in ("Never", "OnFailure"):
            causes.append(
                (
                    "spec.template.spec.restartPolicy",
                    f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
                )
            )
    return causes


_SELECTOR_IMMUTABLE = ("deployments", "replicasets", "daemonsets", "statefulsets", "jobs")


def validate_update(rt: ResourceType, new: Obj, live: Obj) -> None:
    """The fields the real server refuses to change on update (422 "field is immutable"):
    apps/v1 workload selectors, and a Job's selector and pod template. (Since 1.27 a
    suspended Job that never started may change some scheduling fields of its template;
    the emulator lets a suspended Job change its template at all.)"""
    spec, old = new.get("spec") or {}, live.get("spec") or {}
    causes: list[tuple[str, str]] = []
    if rt.plural in _SELECTOR_IMMUTABLE and spec.get("selector") != old.get("selector"):
        causes.append(
            (
                "spec.selector",
                f"Invalid value: {json.dumps(spec.get('selector'))}: field is immutable",
            )
        )
    if rt.plural == "jobs":
        suspended = bool(spec.get("suspend")) and bool(old.get("suspend"))
        if not suspended and spec.get("template") != old.get("template"):
            causes.append(
                ("spec.template", "Invalid value: core.PodTemplateSpec{...}: field is immutable")
            )
        if (
            spec.get("completions") != old.get("completions")
            and spec.get("completionMode") != "Indexed"
        ):
            causes.append(
                (
                    "spec.completions",
                    f"Invalid value: {spec.get('completions')}: field is immutable",
                )
            )
    if causes:
        raise invalid(rt, str(new["metadata"].get("name", "")), causes)
