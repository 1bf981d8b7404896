"""The Helm adapter: renders and lints charts with Helm's Go SDK (``helm-python-sdk``).

No ``helm`` binary and no cluster are involved: rendering is offline (``lookup`` returns
nothing), and applying the rendered objects is the Kubernetes adapter's job.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import helm_python
import yaml
from helm_python import errors as helm_errors

from budcluster.errors import BudClusterError, ConfigurationError, PermanentError, TemporaryError

DEFAULT_TIMEOUT_S = 60.0
_T = TypeVar("_T")

LINT_ERROR = 3
"""Severity of a lint message that fails ``helm lint`` (0 unknown, 1 info, 2 warning)."""


class HelmError(BudClusterError):
    """Base class of this adapter's errors."""


class HelmChartError(HelmError, ConfigurationError):
    """The chart directory is missing or is not a loadable chart."""


class HelmRenderError(HelmError, PermanentError):
    """The values are wrong for the chart, or a template failed."""


class HelmTimeout(HelmError, TemporaryError):
    """The SDK did not answer in time."""


def _call(what: str, func: Callable[[], _T], timeout_s: float) -> _T:
    # The SDK is a blocking native call that cannot be interrupted; a worker thread lets the
    # caller stop waiting (the thread finishes on its own, rendering holds no locks we share).
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="helm")
    try:
        return pool.submit(func).result(timeout=timeout_s)
    except concurrent.futures.TimeoutError as exc:
        raise HelmTimeout(f"helm {what} did not finish within {timeout_s:.0f} s") from exc
    finally:
        pool.shutdown(wait=False)


def _check_chart_dir(chart_dir: Path) -> None:
    if not (chart_dir / "Chart.yaml").is_file():
        raise HelmChartError(
            f"chart_dir '{chart_dir}' is not a Helm chart (no Chart.yaml); "
            "pass the directory of one of the charts under charts/"
        )


def parse_manifests(rendered: Mapping[str, str]) -> list[dict[str, Any]]:
    """The objects in Helm's template-path -> text map, in template order; empty ones dropped.

    NOTES.txt and other non-manifest outputs are skipped; so are documents that render to
    nothing (a template whose ``if`` was false still yields a file with only comments).
    """
    objects: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if not path.endswith((".yaml", ".yml")):
            continue
        try:
            documents = list(yaml.safe_load_all(rendered[path]))
        except yaml.YAMLError as exc:
            raise HelmRenderError(f"template {path} rendered invalid YAML: {exc}") from exc
        for document in documents:
            if not document:
                continue
            if not isinstance(document, dict) or "kind" not in document:
                raise HelmRenderError(
                    f"template {path} rendered a document that is not a Kubernetes object"
                )
            objects.append(document)
    return objects


def render_chart(
    chart_dir: Path,
    values: Mapping[str, Any],
    release: str,
    namespace: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Render ``chart_dir`` with ``values`` as release ``release`` in ``namespace``."""
    _check_chart_dir(chart_dir)

    def render() -> dict[str, str]:
        with helm_python.Chart.load(chart_dir) as chart:
            # Schema errors first: their message names the offending key.
            chart.validate_schema(dict(values))
            return chart.render(dict(values), name=release, namespace=namespace, is_install=True)

    try:
        rendered = _call("render", render, timeout_s)
    except helm_errors.HelmChartLoadError as exc:
        raise HelmChartError(f"cannot load chart '{chart_dir}': {exc}") from exc
    except (helm_errors.HelmValuesError, helm_errors.HelmRenderError) as exc:
        raise HelmRenderError(f"chart '{chart_dir.name}' did not render: {exc}") from exc
    except helm_errors.HelmError as exc:
        raise HelmRenderError(f"helm failed on chart '{chart_dir.name}': {exc}") from exc
    return parse_manifests(rendered)


def lint_chart(
    chart_dir: Path,
    values: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[str]:
    """``helm lint`` findings as ``"<severity>: <path>: <message>"`` lines; empty when clean.

    With ``strict`` (the default, as ``helm lint --strict``) warnings count; info does not.
    """
    _check_chart_dir(chart_dir)
    try:
        report = _call(
            "lint",
            lambda: helm_python.lint(
                chart_dir, None if values is None else dict(values), strict=strict
            ),
            timeout_s,
        )
    except helm_errors.HelmError as exc:
        raise HelmChartError(f"cannot lint chart '{chart_dir}': {exc}") from exc
    floor = 2 if strict else LINT_ERROR
    names = {0: "unknown", 1: "info", 2: "warning", 3: "error"}
    findings = [
        f"{names.get(int(m.get('severity', 0)), 'unknown')}: {m.get('path', '')}: {m.get('error', '')}"
        for m in report.get("messages", [])
        if int(m.get("severity", 0)) >= floor
    ]
    findings.extend(f"error: {e}" for e in report.get("errors", []) if e and not findings)
    return findings
