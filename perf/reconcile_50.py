"""reconcile-deployments at load: N catalogue entries through a process work pool of W workers.

Everything real except the cluster: a `prefect server` on a throwaway Postgres database,
a results store on another, `prefect deploy` of deploy-model and reconcile-deployments
from prefect.yaml, W separate `prefect worker start` processes, and the reconcile
triggered with `prefect deployment run`. The cluster is the Kubernetes API emulator
(tests/k8s_emulator: simulated controllers and engines, no runtime process per
deployment) with 8-GPU H100 nodes, registered by the real register-cluster flow; the
models are Qwen2.5-0.5B's config.json in moto's S3, M distinct models shared round-robin.

Three phases, on one server, store and cluster:

1. baseline: B entries, 1 worker (deploy-model's concurrency limit 1);
2. load: N entries, W workers (deploy-model's concurrency limit L, default W);
3. again: the load catalogue reconciled once more with nothing changed (W workers): it
   starts no run, or, if the load left failures, deploys just those; then a third
   reconcile ("settled") must start none.

For each it prints the time from `prefect deployment run` to every entry `ready` in the
store, deploy-model runs per minute, each worker's share of the runs, failed runs, task
retries and duplicate runs; then the load/baseline throughput ratio, and which
deploy-model runs the later reconciles started (none, once converged).

Usage (from the repository root):
    PYTHONPATH=$PWD .venv/bin/python perf/reconcile_50.py [--deployments 50] [--workers 3]
        [--baseline-deployments 5] [--models 5] [--rollout-limit W] [--slot-wait-s S]
        [--timeout-s 1800] [--keep]

Exit status 1 when a phase does not converge, a run fails, a run is duplicated, a runtime
is missing or doubled on the cluster, or a reconcile after convergence starts a run.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
# This process's own flow (register-cluster) and moto's request lines would drown the figures.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
logging.getLogger("werkzeug").setLevel(logging.WARNING)

from tests.k8s_emulator.emulator import Emulator, start_emulator  # noqa: E402
from tests.k8s_emulator.nodes import h100_node  # noqa: E402
from tests.support.prefect_server import (  # noqa: E402
    PREFECT,
    PrefectServer,
    free_port,
    running_prefect_server,
)

ADMIN_URL = os.environ.get(
    "BUDCLUSTER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
POOL = "budcluster-process"  # the pool prefect.yaml names
CLUSTER = "perf-k8s"
QWEN = PROJECT / "tests" / "fixtures" / "models" / "Qwen2.5-0.5B-Instruct"
S3_KEYS = {"access_key_id": "perf-id", "secret_access_key": "perf-secret"}
GPUS_PER_NODE = 8
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@dataclass
class Platform:
    server: PrefectServer
    store_url: str
    workdir: Path
    emulator: Emulator
    worker_env: dict[str, str] = field(default_factory=dict)

    def prefect(self, *args: str, timeout_s: float = 300) -> str:
        result = subprocess.run(
            [PREFECT, *args],
            cwd=PROJECT,
            env=self.worker_env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} exited {result.returncode}:\n{output}")
        return output

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.server.api_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")


# --- setup -------------------------------------------------------------------------------


@contextmanager
def throwaway_databases() -> Iterator[dict[str, str]]:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    names = {
        kind: f"budcluster_perf_{kind}_{secrets.token_hex(4)}" for kind in ("prefect", "store")
    }
    admin = create_engine(
        ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    with admin.connect() as connection:
        for name in names.values():
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = make_url(ADMIN_URL)
    urls = {
        "prefect": base.set(drivername="postgresql+asyncpg", database=names["prefect"]),
        "store": base.set(database=names["store"]),
    }
    try:
        yield {kind: url.render_as_string(hide_password=False) for kind, url in urls.items()}
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def moto_s3(models: int) -> Iterator[str]:
    """moto's S3 with ``models`` copies of the demo model's metadata (qwen-0 ... qwen-M)."""
    from moto.server import ThreadedMotoServer

    from budcluster.adapters.s3 import make_s3_client

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = make_s3_client(endpoint_url=endpoint, region="us-east-1", **S3_KEYS)
        s3.create_bucket(Bucket="models")
        for index in range(models):
            for file in sorted(QWEN.iterdir()):
                s3.put_object(
                    Bucket="models", Key=f"qwen-{index}/{file.name}", Body=file.read_bytes()
                )
        yield endpoint
    finally:
        moto.stop()


def set_up_blocks_and_cluster(platform: Platform, s3_endpoint: str) -> float:
    """Blocks and registration through the real server, as an operator would; seconds."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from blocks.kubeconfig import KubeconfigCredentials
    from blocks.s3 import S3Registry
    from budcluster.job_requests import RegisterClusterRequest
    from budcluster.settings import get_settings
    from flows.register_cluster import register_cluster
    from tasks._store import results_store

    for key in ("BUDCLUSTER_KEYS_DIR", "BUDCLUSTER_DATA_DIR", "BUDCLUSTER_DATABASE_URL",
                "BUDCLUSTER_REPORTS_DIR"):  # fmt: skip
        os.environ[key] = platform.worker_env[key]
    get_settings.cache_clear()
    results_store.cache_clear()
    started = time.monotonic()
    with temporary_settings({PREFECT_API_URL: platform.server.api_url}):
        S3Registry.from_keys(
            "perf-models", bucket="models", endpoint_url=s3_endpoint, **S3_KEYS
        ).save("perf-models")
        KubeconfigCredentials.from_kubeconfig(
            CLUSTER, yaml.safe_dump(platform.emulator.kubeconfig_dict())
        ).save(CLUSTER)
        register_cluster(
            RegisterClusterRequest(name=CLUSTER, kind="kubernetes", credentials_block=CLUSTER)
        )
    return time.monotonic() - started


def write_catalogue(path: Path, prefix: str, count: int, models: int) -> list[str]:
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    entries = [
        {
            "name": name,
            "cluster": CLUSTER,
            "model": {"uri": f"s3://models/qwen-{i % models}", "registry_block": "perf-models"},
            "hardware": {"device": "cuda"},
            "runtime": {"max_model_len": 2048, "concurrency": 1, "ready_timeout_s": 300},
        }
        for i, name in enumerate(names)
    ]
    path.write_text(yaml.safe_dump({"prune": False, "deployments": entries}, sort_keys=False))
    return names


# --- workers -----------------------------------------------------------------------------


@contextmanager
def running_workers(platform: Platform, count: int, tag: str) -> Iterator[list[str]]:
    """``count`` separate `prefect worker start` processes on the pool, stopped on exit."""
    env = dict(platform.worker_env)
    env.update(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5")
    # Only the workers have it: set while `prefect deploy` runs, it would be baked in.
    env["BUDCLUSTER_PROJECT_DIR"] = str(PROJECT)
    names = [f"{tag}-w{i + 1}" for i in range(count)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            with (platform.workdir / f"{name}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [PREFECT, "worker", "start", "--pool", POOL, "--name", name],
                        cwd=PROJECT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for name, process in zip(names, processes, strict=True):
                if process.poll() is not None:
                    log_text = (platform.workdir / f"{name}.log").read_text(errors="replace")
                    raise RuntimeError(f"worker {name} exited:\n{log_text[-3000:]}")
            online = {
                w["name"]
                for w in platform.api("POST", f"/work_pools/{POOL}/workers/filter", {})
                if w["status"] == "ONLINE"
            }
            if set(names) <= online:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"workers {names} not online after 120 s")
        yield names
    finally:
        for process in processes:
            stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- one phase ---------------------------------------------------------------------------


@dataclass
class PhaseResult:
    label: str
    deployments: int
    workers: int
    rollout_limit: int
    converged_s: float | None
    reconcile_s: float | None
    reconcile_state: str
    runs: list[dict[str, Any]]
    duplicates: dict[str, int]
    retried_tasks: int
    not_ready: list[str]
    phases: list[dict[str, float]] = field(default_factory=list)

    @property
    def failed_runs(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["state_type"] != "COMPLETED"]

    @property
    def runs_per_minute(self) -> float | None:
        """Runs over the time to convergence (or, short of it, until the reconcile ended)."""
        seconds = self.converged_s or self.reconcile_s
        if not self.runs or not seconds:
            return None
        return len(self.runs) / (seconds / 60)

    def worker_share(self) -> dict[str, int]:
        return dict(
            collections.Counter(
                (r.get("labels") or {}).get("prefect.worker.name", "(none)") for r in self.runs
            )
        )


def filtered(platform: Platform, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of a Prefect ``/filter`` endpoint (its pages are at most 200 rows)."""
    rows: list[dict[str, Any]] = []
    while True:
        page = platform.api("POST", path, {**body, "limit": 200, "offset": len(rows)})
        rows.extend(page)
        if len(page) < 200:
            return rows


def run_phases(platform: Platform, run_id: str) -> dict[str, float]:
    """Seconds a flow run spent queued, starting (its process) and running, from its states."""
    states = platform.api("GET", f"/flow_run_states/?flow_run_id={run_id}")
    states.sort(key=lambda state: state["timestamp"])
    times: dict[str, float] = {}
    refusals = 0
    for state in states:
        stamp = datetime.fromisoformat(state["timestamp"]).timestamp()
        if state["name"] == "AwaitingConcurrencySlot":
            refusals += 1
        times.setdefault(state["type"], stamp)
    phases: dict[str, float] = {"slot_refusals": refusals}
    created = times.get("SCHEDULED")
    pending, running = times.get("PENDING"), times.get("RUNNING")
    ended = next((times[t] for t in FINAL if t in times), None)
    if created is not None and pending is not None:
        phases["queued"] = pending - created
    if pending is not None and running is not None:
        phases["starting"] = running - pending
    if running is not None and ended is not None:
        phases["running"] = ended - running
    return phases


def set_rollout_limit(platform: Platform, limit: int) -> None:
    deployment = platform.api("GET", "/deployments/name/deploy-model/deploy-model")
    platform.api("PATCH", f"/deployments/{deployment['id']}", {"concurrency_limit": limit})


def store_statuses(store_url: str, names: list[str]) -> dict[str, str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT d.name, d.status FROM deployments d JOIN clusters c "
                    "ON c.id = d.cluster_id WHERE c.name = :cluster"
                ),
                {"cluster": CLUSTER},
            )
            found = {name: str(status) for name, status in rows}
    finally:
        engine.dispose()
    return {name: found.get(name, "absent") for name in names}


def run_phase(
    platform: Platform,
    label: str,
    names: list[str],
    catalogue: Path,
    workers: int,
    rollout_limit: int,
    timeout_s: float,
) -> PhaseResult:
    set_rollout_limit(platform, rollout_limit)
    deploy_model = platform.api("GET", "/deployments/name/deploy-model/deploy-model")
    with running_workers(platform, workers, label):
        started = time.monotonic()
        output = platform.prefect(
            "deployment", "run", "reconcile-deployments/reconcile-deployments",
            "--param", f"catalogue_path={catalogue}",
        )  # fmt: skip
        match = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
        if not match:
            raise RuntimeError(f"no flow run id in:\n{output}")
        reconcile_id = match.group(1)
        converged_s = None
        reconcile_s = None
        reconcile: dict[str, Any] = {}
        deadline = started + timeout_s
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            statuses = store_statuses(platform.store_url, names)
            reconcile = platform.api("GET", f"/flow_runs/{reconcile_id}")
            if converged_s is None and all(s == "ready" for s in statuses.values()):
                converged_s = time.monotonic() - started
            if reconcile["state_type"] in FINAL:
                reconcile_s = time.monotonic() - started
                break
            time.sleep(1)
        if converged_s is None and all(s == "ready" for s in statuses.values()):
            converged_s = time.monotonic() - started
    # The deploy-model runs this reconcile handed out: their parent task run is one of its.
    parent_tasks = {
        t["id"]
        for t in filtered(
            platform, "/task_runs/filter", {"flow_runs": {"id": {"any_": [reconcile_id]}}}
        )
    }
    runs = [
        r
        for r in filtered(
            platform, "/flow_runs/filter", {"deployments": {"id": {"any_": [deploy_model["id"]]}}}
        )
        if r.get("parent_task_run_id") in parent_tasks
    ]
    per_name = collections.Counter(r["parameters"]["request"]["name"] for r in runs)
    duplicates = {name: count for name, count in per_name.items() if count > 1}
    retried = 0
    if runs:
        child_tasks = filtered(
            platform, "/task_runs/filter", {"flow_runs": {"id": {"any_": [r["id"] for r in runs]}}}
        )
        retried = sum(1 for t in child_tasks if (t.get("run_count") or 0) > 1)
    phases = [run_phases(platform, run["id"]) for run in runs]
    return PhaseResult(
        phases=phases,
        label=label,
        deployments=len(names),
        workers=workers,
        rollout_limit=rollout_limit,
        converged_s=converged_s,
        reconcile_s=reconcile_s,
        reconcile_state=reconcile.get("state_name", "?"),
        runs=runs,
        duplicates=duplicates,
        retried_tasks=retried,
        not_ready=sorted(n for n, s in statuses.items() if s != "ready"),
    )


def report(result: PhaseResult) -> None:
    ready = result.deployments - len(result.not_ready)
    converged = (
        f"all ready after {result.converged_s:.1f} s"
        if result.converged_s
        else f"NOT converged: {ready}/{result.deployments} ready when the reconcile ended "
        f"after {result.reconcile_s or 0:.1f} s"
    )
    rate = result.runs_per_minute
    print(
        f"[{result.label}] {result.deployments} entries, {result.workers} worker(s), "
        f"deploy-model limit {result.rollout_limit}: reconcile {result.reconcile_state}, "
        f"{converged}"
    )
    print(
        f"[{result.label}] deploy-model runs {len(result.runs)}"
        + (f", {rate:.1f} per minute" if rate else "")
        + f"; failed {len(result.failed_runs)}; task retries {result.retried_tasks}; "
        f"duplicate runs {sum(result.duplicates.values()) - len(result.duplicates)}"
    )
    if result.phases:
        parts = []
        for name in ("queued", "starting", "running"):
            values = sorted(p[name] for p in result.phases if name in p)
            if values:
                parts.append(f"{name} median {median(values):.1f} s, max {values[-1]:.1f} s")
        bounced = sum(p["slot_refusals"] for p in result.phases)
        print(f"[{result.label}] one deploy-model run: " + "; ".join(parts))
        print(
            f"[{result.label}]   (queued: created to Pending; starting: Pending to Running, the "
            f"worker's process start; running: the flow); {bounced} times a run found "
            "deploy-model's limit full and was put back (AwaitingConcurrencySlot)"
        )
    print(f"[{result.label}] per-worker share: {result.worker_share()}")
    for run in result.failed_runs:
        print(
            f"[{result.label}]   failed: {run['name']} {run['state_name']}: {run['state']['message']}"
        )
    if result.not_ready:
        print(f"[{result.label}]   not ready: {result.not_ready}")


def runtime_objects(emulator: Emulator, names: list[str]) -> dict[str, int]:
    """How many runtime Deployments the cluster holds per catalogue entry."""
    from budcluster.targets.kubernetes import release_for

    releases = {release_for(name): name for name in names}
    counts: collections.Counter[str] = collections.Counter()
    for obj in emulator.objects("deployments", "apps"):
        instance = obj["metadata"].get("labels", {}).get("app.kubernetes.io/instance")
        if instance in releases:
            counts[releases[instance]] += 1
    return dict(counts)


def reconcile_again(
    platform: Platform,
    label: str,
    names: list[str],
    workdir: Path,
    args: argparse.Namespace,
    limit: int,
) -> PhaseResult:
    result = run_phase(
        platform, label, names, workdir / "load.yaml", args.workers, limit, args.timeout_s
    )
    changed = sorted(r["parameters"]["request"]["name"] for r in result.runs)
    print(
        f"[{label}] reconcile of the unchanged load catalogue: {result.reconcile_state} "
        f"{result.reconcile_s or 0:.1f} s after `prefect deployment run`; new deploy-model "
        f"runs {len(result.runs)}"
        + (
            f" ({changed}, {len(result.failed_runs)} failed; all ready: {not result.not_ready})"
            if result.runs
            else ""
        )
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=50, help="catalogue entries (load)")
    parser.add_argument("--workers", type=int, default=3, help="process workers (load)")
    parser.add_argument("--baseline-deployments", type=int, default=5)
    parser.add_argument("--models", type=int, default=5, help="distinct models, shared round-robin")
    parser.add_argument(
        "--rollout-limit", type=int, default=0,
        help="deploy-model's concurrency limit in the load phase (default: --workers)",
    )  # fmt: skip
    parser.add_argument(
        "--slot-wait-s", type=float, default=None,
        help="the server's PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS: how long a "
        "run that found deploy-model's limit full waits before it asks again (Prefect: 30)",
    )  # fmt: skip
    parser.add_argument("--timeout-s", type=float, default=1800, help="per phase")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    for name in ("deployments", "workers", "baseline_deployments", "models"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    limit = args.rollout_limit or args.workers
    wall_started = time.monotonic()
    nodes = math.ceil((args.deployments + args.baseline_deployments) / GPUS_PER_NODE) + 1
    workdir = Path(tempfile.mkdtemp(prefix="perf-reconcile-"))
    print(f"work directory (server and worker logs): {workdir}")
    ok = True
    with ExitStack() as stack:
        databases = stack.enter_context(throwaway_databases())
        s3_endpoint = stack.enter_context(moto_s3(args.models))
        emulator = start_emulator(
            flavour="kubernetes",
            nodes=[h100_node(f"gpu-h100-{i}", internal_ip=f"10.0.2.{i + 1}") for i in range(nodes)],
        )
        stack.callback(emulator.stop)
        from budcluster.crypto import init_keys
        from budcluster.store.migrate import upgrade

        upgrade(databases["store"])
        init_keys(workdir / "crypto-keys")
        server_env = {}
        if args.slot_wait_s is not None:
            server_env["PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS"] = str(
                args.slot_wait_s
            )
        server = stack.enter_context(
            running_prefect_server(workdir, databases["prefect"], extra_env=server_env)
        )
        platform = Platform(server, databases["store"], workdir, emulator)
        platform.worker_env = server.env(
            BUDCLUSTER_DATABASE_URL=databases["store"],
            BUDCLUSTER_KEYS_DIR=str(workdir / "crypto-keys"),
            BUDCLUSTER_DATA_DIR=str(workdir / "data"),
            BUDCLUSTER_REPORTS_DIR=str(workdir / "reports"),
            PREFECT_LOGGING_LEVEL="INFO",
            PYTHONPATH=str(PROJECT),
        )
        print(
            f"setup: Postgres (Prefect server and store), moto S3 ({args.models} models), "
            f"emulator with {nodes} H100 nodes x {GPUS_PER_NODE} GPUs; slot wait "
            f"{'Prefect default' if args.slot_wait_s is None else f'{args.slot_wait_s} s'}"
        )
        register_s = set_up_blocks_and_cluster(platform, s3_endpoint)
        print(f"setup: blocks saved and {CLUSTER} registered in {register_s:.1f} s")
        started = time.monotonic()
        platform.prefect("work-pool", "create", POOL, "--type", "process")
        platform.prefect(
            "--no-prompt", "deploy", "--name", "deploy-model", "--name", "reconcile-deployments",
        )  # fmt: skip
        print(f"setup: prefect deploy (2 deployments) in {time.monotonic() - started:.1f} s")

        base_names = write_catalogue(
            workdir / "baseline.yaml", "base", args.baseline_deployments, args.models
        )
        load_names = write_catalogue(workdir / "load.yaml", "load", args.deployments, args.models)
        baseline = run_phase(
            platform, "baseline", base_names, workdir / "baseline.yaml", 1, 1, args.timeout_s
        )
        report(baseline)
        load = run_phase(
            platform, "load", load_names, workdir / "load.yaml", args.workers, limit, args.timeout_s
        )
        report(load)
        # The second reconcile finds nothing to do once the first converged; when the first
        # left failures it redeploys those, and a third must then find nothing.
        again = reconcile_again(platform, "again", load_names, workdir, args, limit)
        if again.runs:
            settled = reconcile_again(platform, "settled", load_names, workdir, args, limit)
            ok &= not settled.runs and settled.reconcile_state == "Completed"
        else:
            ok &= again.reconcile_state == "Completed"
        objects = runtime_objects(emulator, load_names + base_names)
        extra = {name: count for name, count in objects.items() if count != 1}
        missing = [name for name in load_names + base_names if name not in objects]
        print(
            f"cluster: {sum(objects.values())} runtime Deployments for "
            f"{len(load_names) + len(base_names)} entries; duplicated {extra or 'none'}; "
            f"missing {missing or 'none'}"
        )
        if baseline.runs_per_minute and load.runs_per_minute:
            print(
                f"ratio: load/baseline deploy-model runs per minute = "
                f"{load.runs_per_minute / baseline.runs_per_minute:.2f} "
                f"({args.workers} workers, limit {limit} vs 1 worker, limit 1)"
            )
        for result in (baseline, load):
            ok &= (
                result.converged_s is not None
                and not result.failed_runs
                and not result.duplicates
                and result.reconcile_state == "Completed"
            )
        ok &= not extra and not missing
        if not args.keep:
            stack.callback(_remove, workdir)
        # Workers are already stopped (each phase's); the server stops next, then the rest.
    print(f"wall time of the script: {time.monotonic() - wall_started:.1f} s")
    print("result: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
