"""The Kubernetes work pool's base job template: prefect-kubernetes' default plus the
``definitions.kubernetes_job_template`` of prefect.yaml (Secret-backed env entries, and the
crypto keys' Secret volume).

Credentials must reach the pod as ``secretKeyRef``; the pool's ``env`` job variable only
takes plain values, so the Secret references live in the template's container env, and
the worker adds the plain ``env`` variables in front of them. The keys that open sealed
blocks are files: ``pod_volumes`` and ``container_volume_mounts`` mount their Secret.

    prefect work-pool get-default-base-job-template --type kubernetes > default.json
    python -m budcluster.catalogue.kubernetes_pool default.json prefect.yaml > pool.json
    prefect work-pool create budcluster-kubernetes --type kubernetes --base-job-template pool.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from budcluster.errors import ConfigurationError


def merge_job_template(default: dict[str, Any], project: dict[str, Any]) -> dict[str, Any]:
    """``default`` with the project's extra variables and Secret-backed container env."""
    extra = (project.get("definitions") or {}).get("kubernetes_job_template")
    if not isinstance(extra, dict):
        raise ConfigurationError(
            "prefect.yaml: definitions.kubernetes_job_template is missing; it holds the "
            "Secret-backed env entries of the Kubernetes pool"
        )
    template = copy.deepcopy(default)
    try:
        properties = template["variables"]["properties"]
        pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise ConfigurationError(
            f"not a Kubernetes base job template (missing {exc}); produce it with "
            "`prefect work-pool get-default-base-job-template --type kubernetes`"
        ) from exc
    properties.update(extra.get("variables") or {})
    # A list replaces the "{{ env }}" placeholder; the worker then prepends the plain
    # env job variable and Prefect's own settings to these entries.
    container["env"] = list(extra.get("container_env") or [])
    if extra.get("pod_volumes"):
        pod["volumes"] = [*pod.get("volumes", []), *extra["pod_volumes"]]
    if extra.get("container_volume_mounts"):
        mounts = extra["container_volume_mounts"]
        container["volumeMounts"] = [*container.get("volumeMounts", []), *mounts]
    return template


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit(
            "usage: python -m budcluster.catalogue.kubernetes_pool DEFAULT.json prefect.yaml"
        )
    default = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    project = yaml.safe_load(Path(args[1]).read_text(encoding="utf-8"))
    print(json.dumps(merge_job_template(default, project), indent=2))


if __name__ == "__main__":
    main()
