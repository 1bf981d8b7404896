"""Reading a kubeconfig without ever echoing it.

YAML errors quote the offending line, which may hold a token, so parse errors are
re-raised with the position only and without chaining.
"""

from __future__ import annotations

from typing import Any

import yaml

from budcluster.errors import ConfigurationError


class KubeconfigInvalid(ConfigurationError):
    """The kubeconfig cannot be used. The message never contains its content."""


def parse_kubeconfig(
    text: str, *, context: str | None = None, source: str = "kubeconfig"
) -> tuple[dict[str, Any], str]:
    """Validate a kubeconfig and pick the context. Returns (config, context name)."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise KubeconfigInvalid(f"{source} is not valid YAML{where}.") from None
    if not isinstance(config, dict):
        raise KubeconfigInvalid(
            f"{source} must be a YAML mapping with clusters, contexts and users."
        )
    for key in ("clusters", "contexts", "users"):
        if not isinstance(config.get(key), list) or not config[key]:
            raise KubeconfigInvalid(
                f"{source} has no '{key}' list; "
                "export it with `kubectl config view --raw --minify`."
            )
    names = [c.get("name") for c in config["contexts"] if isinstance(c, dict)]
    chosen = context or config.get("current-context")
    if not chosen:
        raise KubeconfigInvalid(
            f"{source} has no current-context; "
            f"pass --context (one of: {', '.join(map(str, names))})."
        )
    if chosen not in names:
        raise KubeconfigInvalid(
            f"context '{chosen}' is not in {source}; choose one of: {', '.join(map(str, names))}."
        )
    return config, str(chosen)


def server_url(config: dict[str, Any], context: str) -> str:
    """The API server URL that ``context`` points at."""
    ctx = next(c for c in config["contexts"] if c.get("name") == context)
    cluster_name = (ctx.get("context") or {}).get("cluster")
    for cluster in config["clusters"]:
        if cluster.get("name") == cluster_name:
            return str((cluster.get("cluster") or {}).get("server", ""))
    raise KubeconfigInvalid(
        f"context '{context}' names cluster '{cluster_name}', which the kubeconfig does not define."
    )
