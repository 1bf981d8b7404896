"""Collect this node's hardware inventory and print it as JSON.

Run as ``python -m budcluster.hardware.collector [--pretty]``. Standard library only (plus
``nvidia-ml-py`` when installed), because the same file runs in the node-info DaemonSet
image and through the Ansible playbook on bare hosts. A missing or failing tool is recorded
under ``tools`` as not present, with the reason; collection itself never fails on it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from budcluster.hardware._text import (
    Fragment,
    parse_cpu_list,
    source_record,
)
from budcluster.hardware.cpuinfo import parse_cpuinfo
from budcluster.hardware.hlsmi import parse_hl_smi
from budcluster.hardware.meminfo import parse_meminfo
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.nvidia_text import (
    QUERY_GPU_FIELDS,
    parse_nvidia_smi_list,
    parse_query_gpu_csv,
)
from budcluster.hardware.nvidia_xml import is_busy, parse_nvidia_smi_xml

TOOL_TIMEOUT_S = 30.0
"""nvidia-smi can take seconds per GPU on a cold driver; hl-smi similar. Never wait forever."""

SYS_NODE = Path("/sys/devices/system/node")
SYS_CPU = Path("/sys/devices/system/cpu")


def tool(name: str, present: bool, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"name": name, "present": present}
    if reason:
        record["reason"] = reason
    record.update(extra)
    return record


class ToolFailed(Exception):
    """A tool is missing, timed out or exited non-zero; the message is the recorded reason."""


def run_tool(argv: list[str], timeout_s: float = TOOL_TIMEOUT_S) -> str:
    if shutil.which(argv[0]) is None:
        raise ToolFailed(f"{argv[0]} not found on PATH")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"{' '.join(argv)} timed out after {timeout_s:.0f}s") from exc
    except OSError as exc:
        raise ToolFailed(f"{argv[0]} could not run: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ToolFailed(
            f"{' '.join(argv)} exited {done.returncode}: {detail[-1] if detail else 'no output'}"
        )
    return done.stdout


# --- CPU and memory -------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def sysfs_numa_nodes(sys_node: Path = SYS_NODE, sys_cpu: Path = SYS_CPU) -> list[Fragment]:
    """NUMA nodes with their CPUs, the first SMT thread of each core, and node memory."""
    nodes: list[Fragment] = []
    for node_dir in sorted(sys_node.glob("node[0-9]*"), key=lambda p: int(p.name[4:])):
        cpus = parse_cpu_list(_read(node_dir / "cpulist") or "")
        physical: list[int] = []
        for cpu in cpus:
            siblings = _read(sys_cpu / f"cpu{cpu}" / "topology" / "thread_siblings_list")
            first = min(parse_cpu_list(siblings)) if siblings and siblings.strip() else cpu
            if first == cpu:
                physical.append(cpu)
        memory_mib = None
        for line in (_read(node_dir / "meminfo") or "").splitlines():
            if "MemTotal:" in line:
                memory_mib = int(line.split("MemTotal:")[1].split()[0]) // 1024
        nodes.append(
            {
                "id": int(node_dir.name[4:]),
                "cpus": cpus,
                "physical_cpus": physical,
                "memory_total_mib": memory_mib,
            }
        )
    return nodes


def sysfs_topology(sys_cpu: Path = SYS_CPU) -> tuple[int | None, int | None]:
    """(sockets, physical cores) counted from sysfs topology ids."""
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    for topo in sys_cpu.glob("cpu[0-9]*/topology"):
        package = (_read(topo / "physical_package_id") or "").strip()
        core = (_read(topo / "core_id") or "").strip()
        if package:
            packages.add(package)
            cores.add((package, core))
    return (len(packages) or None, len(cores) or None)


def collect_cpu() -> Fragment:
    text = _read(Path("/proc/cpuinfo"))
    if text is None:
        return {"tools": [tool("/proc/cpuinfo", False, "not readable")]}
    fragment = parse_cpuinfo(text)
    cpu = fragment["cpu"]
    cpu["architecture"] = platform.machine() or cpu["architecture"]
    nodes = sysfs_numa_nodes()
    sockets, cores = sysfs_topology()
    if nodes:
        cpu["numa_nodes"] = nodes
        fragment["sources"].append(source_record("sysfs", str(SYS_NODE)))
    if sockets:
        cpu["sockets"] = sockets
        if cores:
            cpu["cores_per_socket"] = cores // sockets
            cpu["threads_per_core"] = max(1, cpu["logical_cpus"] // cores)
            cpu["threads_per_socket"] = cpu["logical_cpus"] // sockets
    fragment.pop("notes", None)  # notes about excerpts do not apply to the live file
    return fragment


def collect_memory() -> Fragment:
    text = _read(Path("/proc/meminfo"))
    if text is None:
        return {"tools": [tool("/proc/meminfo", False, "not readable")]}
    return parse_meminfo(text)


# --- NVIDIA ---------------------------------------------------------------------------


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def collect_nvml(nvml: Any) -> Fragment:
    """The nvidia section from NVML (``import pynvml`` of nvidia-ml-py)."""
    nvml.nvmlInit()
    try:
        driver = _str(nvml.nvmlSystemGetDriverVersion())
        cuda_int = int(nvml.nvmlSystemGetCudaDriverVersion_v2())
        cuda = f"{cuda_int // 1000}.{(cuda_int % 1000) // 10}"
        gpus: list[Fragment] = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            try:
                current_mig, _pending = nvml.nvmlDeviceGetMigMode(handle)
                mig_mode = "enabled" if current_mig == 1 else "disabled"
            except nvml.NVMLError:
                mig_mode = "not_supported"
            mig_devices: list[Fragment] = []
            if mig_mode == "enabled":
                for slot in range(int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))):
                    try:
                        mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
                    except nvml.NVMLError:
                        continue
                    mig_memory = nvml.nvmlDeviceGetMemoryInfo(mig)
                    name = _str(nvml.nvmlDeviceGetName(mig))
                    mig_devices.append(
                        {
                            "index": slot,
                            # NVML names a MIG device "<product> MIG 3g.40gb".
                            "profile": name.rsplit("MIG", 1)[-1].strip() if "MIG" in name else None,
                            "gpu_instance_id": int(nvml.nvmlDeviceGetGpuInstanceId(mig)),
                            "compute_instance_id": int(nvml.nvmlDeviceGetComputeInstanceId(mig)),
                            "uuid": _str(nvml.nvmlDeviceGetUUID(mig)),
                            "memory_total_mib": int(mig_memory.total) // 2**20,
                            "memory_free_mib": int(mig_memory.free) // 2**20,
                        }
                    )
            links = 0
            for link in range(int(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18))):
                try:
                    if nvml.nvmlDeviceGetNvLinkState(handle, link) == 1:
                        links += 1
                except nvml.NVMLError:
                    break
            try:
                processes = len(nvml.nvmlDeviceGetComputeRunningProcesses(handle))
            except nvml.NVMLError:
                processes = 0
            total = int(memory.total) // 2**20
            used = int(memory.used) // 2**20
            gpus.append(
                {
                    "index": index,
                    "product": _str(nvml.nvmlDeviceGetName(handle)),
                    "uuid": _str(nvml.nvmlDeviceGetUUID(handle)),
                    "memory_total_mib": total,
                    "memory_free_mib": int(memory.free) // 2**20,
                    "memory_used_mib": used,
                    "driver_version": driver,
                    "cuda_version": cuda,
                    "compute_capability": f"{major}.{minor}",
                    "mig_mode": mig_mode,
                    "mig_devices": mig_devices,
                    "pci_bus_id": _str(nvml.nvmlDeviceGetPciInfo(handle).busId),
                    "nvlink_active_links": links or None,
                    "compute_processes": processes,
                    "in_use": is_busy(used, total, processes),
                    "source": "nvml",
                }
            )
    finally:
        nvml.nvmlShutdown()
    nvidia = {
        "attached_gpus": len(gpus),
        "driver_version": driver,
        "cuda_version": cuda,
        "gpus": gpus,
        "source": "nvml",
    }
    return {
        "nvidia": nvidia,
        "sources": [source_record("nvml", "nvidia-ml-py")],
        "tools": [tool("nvml", True, version=driver)],
    }


def _import_nvml() -> Any:
    import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return pynvml


def collect_nvidia(
    runner: Callable[[list[str]], str] = run_tool,
    nvml_loader: Callable[[], Any] = _import_nvml,
) -> Fragment:
    """NVML when it works, else ``nvidia-smi -q -x``, else ``nvidia-smi --query-gpu`` CSV."""
    tools: list[dict[str, Any]] = []
    try:
        nvml = nvml_loader()
    except ImportError as exc:
        tools.append(tool("nvml", False, f"nvidia-ml-py is not installed ({exc})"))
    else:
        try:
            fragment = collect_nvml(nvml)
            return fragment
        except Exception as exc:  # NVMLError has many subclasses; any failure means fall back
            tools.append(tool("nvml", False, f"{type(exc).__name__}: {exc}"))
    try:
        fragment = parse_nvidia_smi_xml(runner(["nvidia-smi", "-q", "-x"]), "nvidia-smi -q -x")
        try:
            listing = parse_nvidia_smi_list(runner(["nvidia-smi", "-L"]))
            for gpu in fragment["nvidia"]["gpus"]:
                named = {i: (p, u) for i, p, u in listing.get(gpu["index"], [])}
                for mig in gpu["mig_devices"]:
                    if mig["index"] in named:
                        mig["profile"], mig["uuid"] = named[mig["index"]]
        except ToolFailed:
            pass  # profile names are a nicety; sizes come from the XML
        fragment["tools"] = [*tools, tool("nvidia-smi", True)]
        return fragment
    except (ToolFailed, ValueError) as exc:
        xml_reason = str(exc)
    argv = ["nvidia-smi", f"--query-gpu={','.join(QUERY_GPU_FIELDS)}", "--format=csv"]
    try:
        fragment = parse_query_gpu_csv(runner(argv), " ".join(argv))
        fragment["tools"] = [*tools, tool("nvidia-smi", True, f"-q -x failed: {xml_reason}")]
        return fragment
    except (ToolFailed, ValueError) as exc:
        reason = xml_reason if "not found" in xml_reason else f"{xml_reason}; csv: {exc}"
        return {"tools": [*tools, tool("nvidia-smi", False, reason)]}


def collect_gaudi(runner: Callable[[list[str]], str] = run_tool) -> Fragment:
    try:
        fragment = parse_hl_smi(runner(["hl-smi"]), "hl-smi")
    except (ToolFailed, ValueError) as exc:
        return {"tools": [tool("hl-smi", False, str(exc))]}
    fragment["tools"] = [tool("hl-smi", True)]
    return fragment


# --- host -----------------------------------------------------------------------------


def _os_release() -> str | None:
    for path in (Path("/etc/os-release"), Path("/usr/lib/os-release")):
        for line in (_read(path) or "").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return None


def collect_host() -> Fragment:
    tools = []
    for name in ("docker", "podman"):
        path = shutil.which(name)
        tools.append(
            tool(name, True, path=path) if path else tool(name, False, "not found on PATH")
        )
    systemd = Path("/run/systemd/system").is_dir()
    tools.append(
        tool("systemd", True)
        if systemd
        else tool("systemd", False, "/run/systemd/system is absent (not booted with systemd)")
    )
    host = {
        "kernel": platform.release(),
        "os": _os_release(),
        "docker": tools[0]["present"],
        "podman": tools[1]["present"],
        "systemd": systemd,
        "source": "host",
    }
    return {"host": host, "tools": tools, "sources": [source_record("host", "uname, os-release")]}


def _safe(name: str, collect: Callable[[], Fragment]) -> Fragment:
    try:
        return collect()
    except Exception as exc:  # the collector reports, it never crashes on one probe
        return {"tools": [tool(name, False, f"{type(exc).__name__}: {exc}")]}


def collect() -> Fragment:
    """This node's inventory as a plain dict in the NodeInventory shape."""
    inventory = merge_fragments(
        _safe("cpu", collect_cpu),
        _safe("memory", collect_memory),
        _safe("nvidia", collect_nvidia),
        _safe("hl-smi", collect_gaudi),
        _safe("host", collect_host),
    )
    inventory["node_name"] = os.environ.get("NODE_NAME") or socket.gethostname()
    inventory["collected_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return inventory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pretty", action="store_true", help="indent the JSON")
    args = parser.parse_args(argv)
    json.dump(collect(), sys.stdout, indent=2 if args.pretty else None, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
