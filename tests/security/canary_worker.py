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


def _step(name: str, expect_ok: bool, action: Callable[[], Any]) -> None:
    try:
        result = action()
    except Exception as exc:  # every outcome is reported to the test
        line = {"step": name, "ok": False, "expect_ok": expect_ok, "error": f"{exc!r}"[:2000]}
    else:
        line = {"step": name, "ok": True, "expect_ok": expect_ok, "result": repr(result)[:500]}
    print("STEP " + json.dumps(line), flush=True)


def happy_path(settings: dict[str, Any]) -> None:
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

    s3_gguf = ModelSourceRequest(uri=settings["hosts_model_uri"], registry_block="models")
    s3_hf = ModelSourceRequest(uri=settings["k8s_model_uri"], registry_block="models")
    _step(
        "register hosts",
        True,
        lambda: register_cluster(
            RegisterClusterRequest(name="lab-hosts", credentials_block="lab-hosts")
        ),
    )
    _step(
        "register kubernetes",
        True,
        lambda: register_cluster(
            RegisterClusterRequest(name="lab-k8s", kind="kubernetes", credentials_block="lab-k8s")
        ),
    )
    _step(
        "transfer to hosts",
        True,
        lambda: transfer_model(TransferModelRequest(cluster="lab-hosts", model=s3_gguf)),
    )
    _step(
        "transfer to kubernetes",
        True,
        lambda: transfer_model(TransferModelRequest(cluster="lab-k8s", model=s3_hf)),
    )
    _step(
        "deploy on hosts",
        True,
        lambda: deploy_model(
            DeployModelRequest(
                name="canary-cpu",
                cluster="lab-hosts",
                model=s3_gguf,
                device="cpu",
                max_model_len=256,
                concurrency=1,
                port=settings["hosts_port"],
                ready_timeout_s=120,
            )
        ),
    )
    _step(
        "deploy on kubernetes",
        True,
        lambda: deploy_model(
            DeployModelRequest(
                name="canary-gpu",
                cluster="lab-k8s",
                model=s3_hf,
                device="cuda",
                max_model_len=4096,
                concurrency=1,
                ready_timeout_s=120,
            )
        ),
    )
    for cluster, deployment in (("lab-hosts", "canary-cpu"), ("lab-k8s", "canary-gpu")):
        _step(
            f"teardown {deployment}",
            True,
            lambda c=cluster, d=deployment: teardown_deployment(
                TeardownRequest(cluster=c, deployment=d)
            ),
        )


def failure_paths(settings: dict[str, Any]) -> None:
    from budcluster.job_requests import (
        DeployModelRequest,
        ModelSourceRequest,
        RegisterClusterRequest,
        TransferModelRequest,
    )
    from flows.deploy_model import deploy_model
    from flows.register_cluster import register_cluster
    from flows.transfer_model import transfer_model

    missing = ModelSourceRequest(uri="s3://models/no-such-model", registry_block="models")
    s3_gguf = ModelSourceRequest(uri=settings["hosts_model_uri"], registry_block="models")
    s3_hf = ModelSourceRequest(uri=settings["k8s_model_uri"], registry_block="models")
    _step(
        "register an unreachable cluster",
        False,
        lambda: register_cluster(
            RegisterClusterRequest(name="lab-dead", kind="kubernetes", credentials_block="lab-dead")
        ),
    )
    _step(
        "transfer a missing model to hosts",
        False,
        lambda: transfer_model(TransferModelRequest(cluster="lab-hosts", model=missing)),
    )
    _step(
        "transfer a missing model to kubernetes",
        False,
        lambda: transfer_model(TransferModelRequest(cluster="lab-k8s", model=missing)),
    )
    _step(
        "deploy a runtime that cannot start on hosts",
        False,
        lambda: deploy_model(
            DeployModelRequest(
                name="canary-bad",
                cluster="lab-hosts",
                model=s3_gguf,
                device="cpu",
                max_model_len=256,
                concurrency=1,
                port=settings["hosts_port"],
                ready_timeout_s=60,
                engine_args=["--no-such-flag"],
            )
        ),
    )
    _step(
        "deploy a crashing runtime on kubernetes",
        False,
        lambda: deploy_model(
            DeployModelRequest(
                name="canary-crash",
                cluster="lab-k8s",
                model=s3_hf,
                device="cuda",
                max_model_len=4096,
                concurrency=1,
                ready_timeout_s=60,
            )
        ),
    )


def main() -> None:
    phase, settings_path = sys.argv[1], Path(sys.argv[2])
    settings = json.loads(settings_path.read_text())
    {"happy": happy_path, "failures": failure_paths}[phase](settings)


if __name__ == "__main__":
    main()
