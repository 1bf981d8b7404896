"""Names this target gives objects: DNS-1123 namespaces and releases, PVC paths, labels.

Namespaces: a pod can only mount a PersistentVolumeClaim of its own namespace, so each model
gets one namespace (``<prefix>-<model>-<hash>``, at most 63 characters) that holds its PVC
and every runtime serving it; each deployment is one release in that namespace.
"""

from __future__ import annotations

import hashlib
import re

from budcluster.targets.base import check_safe_name
from budcluster.targets.kubernetes.errors import (
    KubernetesTargetConfigError,
    KubernetesTargetError,
)
from budcluster.targets.kubernetes.objects import ObjectMeta

# The label the Kubernetes adapter puts on every object it applies for a release; the same
# value as ``budcluster.adapters.kubernetes.RELEASE_LABEL``, which pure code cannot import
# (tests/kubernetes/test_release_label.py keeps the two equal).
RELEASE_LABEL = "budcluster.io/release"
COLLECTOR_RELEASE = "node-info-collector"
NODE_INFO_PREFIX = "node-info-"
PVC_SCHEME = "pvc://"
MAX_NAMESPACE = 63
MAX_RELEASE = 53  # Helm's limit: release names become label values and object-name prefixes
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-") or "x"


def dns_name(prefix: str, name: str, limit: int) -> str:
    """``<prefix>-<slug of name>-<8 hex of name>``: a DNS-1123 label of at most ``limit``.

    The hash is of the full original name, so two names that slug or truncate alike stay
    different.
    """
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    room = limit - len(prefix) - len(digest) - 2
    if room < 1:
        raise ValueError(f"prefix '{prefix}' leaves no room for a name within {limit} characters")
    body = slug(name)[:room].strip("-") or "x"
    result = f"{prefix}-{body}-{digest}"
    if not _DNS_LABEL.match(result):
        raise ValueError(
            f"'{result}' is not a DNS-1123 label; the prefix must be lowercase letters, digits, '-'"
        )
    return result


def namespace_for(prefix: str, model_name: str) -> str:
    return dns_name(prefix, model_name, MAX_NAMESPACE)


def release_for(deployment_name: str) -> str:
    return dns_name("rt", deployment_name, MAX_RELEASE)


def model_release_for(model_name: str) -> str:
    return dns_name("model", model_name, MAX_RELEASE)


def adapter_job_for(model_release: str, adapter_dir: str) -> str:
    """The transfer Job that copies adapter ``adapter_dir`` into the model's PVC: one per
    adapter, so restaging one replaces its Job only (a Job name is also a label value)."""
    return dns_name("lora", f"{model_release}/{adapter_dir}", MAX_NAMESPACE)


def pvc_path(namespace: str, pvc: str, subdir: str = "") -> str:
    return f"{PVC_SCHEME}{namespace}/{pvc}" + (f"/{subdir}" if subdir else "")


def parse_pvc_path(path: str) -> tuple[str, str, str]:
    """``pvc://<namespace>/<claim>[/<dir>]`` -> (namespace, claim, dir or "")."""
    parts = path[len(PVC_SCHEME) :].split("/") if path.startswith(PVC_SCHEME) else []
    if len(parts) not in (2, 3) or not all(parts):
        raise KubernetesTargetError(
            f"model_path '{path}' is not a staged Kubernetes model; expected "
            "pvc://<namespace>/<claim>[/<dir>] as stage_model returns it"
        )
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def check_model_name(model_name: str) -> None:
    """The same rule as the hosts target: the name also labels objects and reaches the Job."""
    check_safe_name(model_name, "model_name", KubernetesTargetConfigError)


def is_source_secret(meta: ObjectMeta) -> bool:
    """A Secret ``stage_model`` made: ``<model release>-source``, labelled with that release."""
    release = (meta.get("labels") or {}).get(RELEASE_LABEL, "")
    return (
        bool(release) and release.startswith("model-") and meta.get("name") == f"{release}-source"
    )
