"""How long detect-nodes takes on a 1,000-node cluster: detection plus recording.

Starts the Kubernetes API emulator (``tests/k8s_emulator``) with N nodes in a realistic mix
(CPU-only Sapphire Rapids, 8x H100, H100 with MIG, Gaudi2; GPU pools tainted, a few nodes
cordoned or NotReady), plus other teams' pods holding accelerators on some nodes, then runs
what flows/detect_nodes.py runs:

- detect: ``KubernetesTarget.detect_nodes`` (list nodes, apply the node-info collector
  DaemonSet, wait for every ready node's ConfigMap, list the pods holding devices,
  reconcile each node's inventory);
- record: ``tasks.records.record_nodes`` (the task's body: one transaction appending a
  snapshot per node) on a throwaway Postgres database and on a SQLite file.

The baseline, measured in the same run, is a smaller cluster of the same mix (``--baseline
100``): the script prints the per-node cost at both sizes and their ratio (1.0 means
detection scales linearly), and the total against the 10 s target.

The emulator runs in this process (its own thread, as in the tests); the CPU seconds of its
thread are printed beside the wall time, so what is the emulator and what is detection
shows.

Usage:
    PYTHONPATH=$PWD .venv/bin/python perf/detect_1000_nodes.py [--nodes 1000] [--baseline 100]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from budcluster.adapters import kubernetes as kube
from budcluster.hardware.inventory import NodeInventory
from budcluster.settings import get_settings
from budcluster.store import clusters as cluster_rows
from budcluster.store.migrate import upgrade
from budcluster.store.models import Node, NodeSnapshot
from budcluster.targets.kubernetes import KubernetesTarget, KubernetesTimeouts
from tests.k8s_emulator.emulator import Emulator, start_emulator
from tests.k8s_emulator.nodes import (
    NodeSpec,
    Taint,
    amx_cpu_node,
    gaudi2_node,
    h100_mig_node,
    h100_node,
)
from tests.k8s_emulator.waiting import eventually

TARGET_S = 10.0
OTHERS = "other-team"
# Generous API and detection timeouts: the point is to measure, not to time out.
TIMEOUTS = KubernetesTimeouts(api_s=60, detect_s=600, ready_s=60, resync_s=1)


def node_mix(count: int) -> list[NodeSpec]:
    """``count`` nodes: 50 % CPU-only, 30 % 8x H100 (tainted ``nvidia.com/gpu``), 5 % H100
    with MIG, 15 % Gaudi2 (tainted ``habana.ai/gaudi``); every 50th node cordoned and every
    100th NotReady (the collector cannot run there; detection still lists it)."""
    nodes = []
    for i in range(count):
        ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        slot = i % 20
        if slot < 10:
            spec = amx_cpu_node(f"cpu-{i:04d}", internal_ip=ip)
        elif slot < 16:
            spec = h100_node(f"h100-{i:04d}", internal_ip=ip)
            spec.taints = [Taint("nvidia.com/gpu", "NoSchedule", "present")]
        elif slot < 17:
            spec = h100_mig_node(f"h100-mig-{i:04d}", internal_ip=ip)
            spec.taints = [Taint("nvidia.com/gpu", "NoSchedule", "present")]
        else:
            spec = gaudi2_node(f"gaudi2-{i:04d}", internal_ip=ip)
            spec.taints = [Taint("habana.ai/gaudi", "NoSchedule", "present")]
        spec.labels["topology.kubernetes.io/zone"] = f"zone-{'abc'[i % 3]}"
        spec.labels["node.kubernetes.io/instance-type"] = spec.name.rsplit("-", 1)[0]
        spec.unschedulable = i % 50 == 7
        spec.ready = i % 100 != 13
        nodes.append(spec)
    return nodes


def other_teams_pods(emu: Emulator, api: Any, gpu_pods: int) -> None:
    """A Deployment of ``gpu_pods`` replicas each holding 2 GPUs on the tainted pool: what
    detection must count as in use."""
    template = {
        "metadata": {"labels": {"app": "trainer"}},
        "spec": {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "resources": {"limits": {"nvidia.com/gpu": "2"}},
                }
            ],
        },
    }
    kube.apply_objects(
        api,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHERS}},
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "trainer", "namespace": OTHERS},
                "spec": {
                    "replicas": gpu_pods,
                    "selector": {"matchLabels": {"app": "trainer"}},
                    "template": template,
                },
            },
        ],
        release="others",
    )

    def running() -> bool:
        pods = emu.objects("pods", namespace=OTHERS)
        return sum(p.get("status", {}).get("phase") == "Running" for p in pods) == gpu_pods

    eventually(running, timeout=300)


def thread_cpu_s(thread: threading.Thread) -> float:
    """User + system CPU seconds of one thread of this process (Linux /proc)."""
    stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def throwaway_postgres(admin_url: str) -> Iterator[str]:
    name = f"budcluster_perf_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class Recorded:
    seconds: float
    rows: int


def record(url: str, cluster: str, inventories: list[NodeInventory]) -> Recorded:
    """The record-nodes task's body against ``url`` (a fresh store with the cluster
    registered), timed; returns the rows it wrote (nodes + snapshots)."""
    from tasks._store import results_store
    from tasks.records import record_nodes

    upgrade(url)
    os.environ["BUDCLUSTER_DATABASE_URL"] = url
    get_settings.cache_clear()
    results_store.cache_clear()
    store = results_store()
    try:
        with store.session() as session:
            cluster_rows.register_cluster(
                session,
                name=cluster,
                kind="kubernetes",
                provider="onprem",
                credentials_block=cluster,
            )
        started = time.perf_counter()
        record_nodes.fn(cluster, inventories)
        seconds = time.perf_counter() - started
        with store.session() as session:
            rows = sum(
                session.scalar(select(func.count()).select_from(table)) or 0
                for table in (Node, NodeSnapshot)
            )
    finally:
        store.dispose()
        results_store.cache_clear()
    return Recorded(seconds, rows)


@dataclass
class Run:
    nodes: int
    detect_s: float
    emulator_cpu_s: float
    ours_cpu_s: float
    process_cpu_s: float
    postgres: Recorded
    sqlite: Recorded

    @property
    def total_s(self) -> float:
        return self.detect_s + self.postgres.seconds


def run(count: int, gpu_pods: int, admin_url: str) -> Run:
    print(f"--- {count} nodes: starting the emulator", flush=True)
    emu = start_emulator(flavour="kubernetes", nodes=node_mix(count))
    try:
        api = kube.api_client_from_kubeconfig(emu.kubeconfig_dict())
        other_teams_pods(emu, api, gpu_pods)
        target = KubernetesTarget(api, timeouts=TIMEOUTS)
        emu_cpu0, ours_cpu0 = thread_cpu_s(emu._thread), time.thread_time()
        process_cpu0 = time.process_time()
        started = time.perf_counter()
        inventories = target.detect_nodes()
        detect_s = time.perf_counter() - started
        emu_cpu = thread_cpu_s(emu._thread) - emu_cpu0
        ours_cpu = time.thread_time() - ours_cpu0
        process_cpu = time.process_time() - process_cpu0
        if emu.errors:
            raise RuntimeError("the emulator failed:\n" + "\n".join(emu.errors))
    finally:
        emu.stop()
    _check(inventories, count, gpu_pods)
    with throwaway_postgres(admin_url) as url:
        postgres = record(url, "perf", inventories)
    with tempfile.TemporaryDirectory() as folder:
        sqlite = record(f"sqlite:///{Path(folder) / 'perf.db'}", "perf", inventories)
    return Run(count, detect_s, emu_cpu, ours_cpu, process_cpu, postgres, sqlite)


def _check(inventories: list[NodeInventory], count: int, gpu_pods: int) -> None:
    """What was detected is what the cluster holds: not a fast wrong answer."""
    if len(inventories) != count:
        raise RuntimeError(f"detected {len(inventories)} nodes of {count}")
    held = sum(
        d.count for i in inventories for d in i.devices_in_use if d.resource == "nvidia.com/gpu"
    )
    if held != 2 * gpu_pods:
        raise RuntimeError(f"detection counts {held} GPUs in use; the pods hold {2 * gpu_pods}")
    gaudi = sum(1 for i in inventories if i.gaudi and i.gaudi.devices)
    expected = sum(1 for s in node_mix(count) if s.name.startswith("gaudi2") and s.ready)
    if gaudi != expected:
        raise RuntimeError(f"{gaudi} Gaudi nodes inventoried; {expected} are ready")


def show(r: Run) -> None:
    per_node_ms = 1000 * r.total_s / r.nodes
    print(
        f"nodes={r.nodes}  detect={r.detect_s:.2f}s (CPU: emulator thread "
        f"{r.emulator_cpu_s:.2f}s, detection thread {r.ours_cpu_s:.2f}s, process "
        f"{r.process_cpu_s:.2f}s)  "
        f"record postgres={r.postgres.seconds:.2f}s ({r.postgres.rows} rows)  "
        f"record sqlite={r.sqlite.seconds:.2f}s ({r.sqlite.rows} rows)  "
        f"total (detect + postgres)={r.total_s:.2f}s  {per_node_ms:.2f} ms/node",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=100, help="nodes of the baseline run")
    parser.add_argument(
        "--gpu-pods-per-100-nodes",
        type=int,
        default=10,
        help="other teams' 2-GPU pods per 100 nodes",
    )
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    # The kubernetes client builds its API classes on first use (seconds, once per
    # process): paid here, so the baseline's per-node cost is not inflated by it.
    import_started = time.perf_counter()
    from kubernetes.client import CoreV1Api  # noqa: F401

    print(
        f"one-time kubernetes client import {time.perf_counter() - import_started:.2f}s; "
        f"load average before the run {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    runs = []
    for count in (args.baseline, args.nodes):
        runs.append(run(count, count * args.gpu_pods_per_100_nodes // 100, args.postgres_admin_url))
        show(runs[-1])
    base, big = runs
    scaling = (big.total_s / big.nodes) / (base.total_s / base.nodes)
    marginal_ms = 1000 * (big.total_s - base.total_s) / (big.nodes - base.nodes)
    print(
        f"per-node cost {big.nodes} vs {base.nodes} nodes: {scaling:.2f}x "
        "(1.00 = linear; above 1 grows faster than the cluster; below 1, fixed costs such "
        f"as pod start-up spread over more nodes); each node past {base.nodes} cost "
        f"{marginal_ms:.2f} ms"
    )
    verdict = "meets" if big.total_s <= TARGET_S else "MISSES"
    print(
        f"headline: {big.nodes} nodes detected {big.detect_s:.2f}s + recorded "
        f"{big.postgres.seconds:.2f}s (postgres) = {big.total_s:.2f}s, "
        f"{big.total_s / TARGET_S:.2f}x the {TARGET_S:.0f} s target: {verdict}"
    )
    print(
        f"script wall time {time.perf_counter() - started:.1f}s; load average after "
        f"{os.getloadavg()[0]:.2f}"
    )
    return 0 if big.total_s <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
