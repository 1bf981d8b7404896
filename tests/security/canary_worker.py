"""The worker side of the canary suite: run the real flows in this process, as a Prefect
worker's flow-run process would, and print one JSON line per step.

Run as ``python -m tests.security.canary_worker <phase> <settings.json>``; the test that
starts it watches every process's argv and environment while it runs, then scans what it
left behind. ``settings.json`` holds names and URIs only: every secret is in the blocks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from budcluster.job_requests import (
    DeployModelRequest,
    ModelSourceRequest,
    RegisterClusterRequest,
    TeardownRequest,
    TransferModelRequest,
)
from flows.deploy_model import deploy_model
from flows.register_cluster import register_cluster
from flows.teardown_deployment import teardown_deployment
from flows.transfer_model import transfer_model


def _step(name: str, expect_ok: bool, action: Callable[[], Any]) -> None:
    try:
        result = action()
    except Exception as exc:  # every outcome is reported to the test
        line = {"step": name, "ok": False, "expect_ok": expect_ok, "error": f"{exc!r}"[:2000]}
    else:
        line = {"step": name, "ok": True, "expect_ok": expect_ok, "result": repr(result)[:500]}
    print("STEP " + json.dumps(line), flush=True)


def _source(uri: str) -> ModelSourceRequest:
    return ModelSourceRequest(uri=uri, registry_block="models")


def _register(name: str, kind: str = "hosts") -> Callable[[], Any]:
    form = RegisterClusterRequest(name=name, kind=kind, credentials_block=name)
    return lambda: register_cluster(form)


def _transfer(cluster: str, uri: str) -> Callable[[], Any]:
    form = TransferModelRequest(cluster=cluster, model=_source(uri))
    return lambda: transfer_model(form)


def _deploy_on_hosts(settings: dict[str, Any], name: str, **extra: Any) -> Callable[[], Any]:
    form = DeployModelRequest(
        name=name,
        cluster="lab-hosts",
        model=_source(settings["hosts_model_uri"]),
        device="cpu",
        max_model_len=256,
        concurrency=1,
        port=settings["hosts_port"],
        **({"ready_timeout_s": 120} | extra),
    )
    return lambda: deploy_model(form)


def _deploy_on_kubernetes(settings: dict[str, Any], name: str, **extra: Any) -> Callable[[], Any]:
    form = DeployModelRequest(
        name=name,
        cluster="lab-k8s",
        model=_source(settings["k8s_model_uri"]),
        device="cuda",
        max_model_len=4096,
        concurrency=1,
        **({"ready_timeout_s": 120} | extra),
    )
    return lambda: deploy_model(form)


def _teardown(cluster: str, deployment: str) -> Callable[[], Any]:
    form = TeardownRequest(cluster=cluster, deployment=deployment)
    return lambda: teardown_deployment(form)


def happy_path(settings: dict[str, Any]) -> None:
    _step("register hosts", True, _register("lab-hosts"))
    _step("register kubernetes", True, _register("lab-k8s", "kubernetes"))
    _step("transfer to hosts", True, _transfer("lab-hosts", settings["hosts_model_uri"]))
    _step("transfer to kubernetes", True, _transfer("lab-k8s", settings["k8s_model_uri"]))
    _step("deploy on hosts", True, _deploy_on_hosts(settings, "canary-cpu"))
    _step("deploy on kubernetes", True, _deploy_on_kubernetes(settings, "canary-gpu"))
    _step("teardown canary-cpu", True, _teardown("lab-hosts", "canary-cpu"))
    _step("teardown canary-gpu", True, _teardown("lab-k8s", "canary-gpu"))


def failure_paths(settings: dict[str, Any]) -> None:
    missing = "s3://models/no-such-model"
    _step("register an unreachable cluster", False, _register("lab-dead", "kubernetes"))
    _step("transfer a missing model to hosts", False, _transfer("lab-hosts", missing))
    _step("transfer a missing model to kubernetes", False, _transfer("lab-k8s", missing))
    _step(
        "deploy a runtime that cannot start on hosts",
        False,
        _deploy_on_hosts(
            settings, "canary-bad", ready_timeout_s=60, engine_args=["--no-such-flag"]
        ),
    )
    _step(
        "deploy a crashing runtime on kubernetes",
        False,
        _deploy_on_kubernetes(settings, "canary-crash", ready_timeout_s=60),
    )


def main() -> None:
    phase, settings_path = sys.argv[1], Path(sys.argv[2])
    settings = json.loads(settings_path.read_text())
    {"happy": happy_path, "failures": failure_paths}[phase](settings)


if __name__ == "__main__":
    main()
