"""The collector on this machine, its stdlib-only promise, and its fallbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.hardware import collector
from budcluster.hardware.inventory import NodeInventory
from budcluster.hardware.merge import merge_fragments

REPO_ROOT = Path(__file__).resolve().parents[2]


def _real_numa_cpus() -> dict[int, str]:
    nodes = Path("/sys/devices/system/node").glob("node[0-9]*")
    return {int(p.name[4:]): (p / "cpulist").read_text().strip() for p in nodes}


def test_collector_runs_with_the_standard_library_only() -> None:
    """-S drops site-packages (pydantic, prefect, pynvml); -E ignores PYTHON* env. If the
    collector imported any third-party module this would fail with ImportError."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); import runpy; "
        "runpy.run_module('budcluster.hardware.collector', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert "pydantic" not in done.stderr
    inventory = NodeInventory.model_validate(data)
    nvml = next(t for t in inventory.tools if t.name == "nvml")
    assert nvml.present is False and "not installed" in (nvml.reason or "")


def test_detect_json_shows_this_machine() -> None:
    result = CliRunner().invoke(app, ["hardware", "detect", "--json"])
    assert result.exit_code == 0, result.output
    inventory = NodeInventory.model_validate_json(result.output)
    assert inventory.cpu is not None
    assert inventory.cpu.logical_cpus == os.cpu_count()
    assert {n.id: n.cpu_list for n in inventory.cpu.numa_nodes} == _real_numa_cpus()
    flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
    assert ("avx2" in inventory.cpu.isa_flags) is ("avx2" in flags)
    assert ("amx_bf16" in inventory.cpu.isa_flags) is ("amx_bf16" in flags)
    assert inventory.memory is not None and inventory.memory.total_mib > 0
    names = {t.name: t for t in inventory.tools}
    for tool in ("nvidia-smi", "hl-smi"):
        if tool in names and not names[tool].present:
            assert names[tool].reason  # "not present" always says why


def fixture_runner(files: dict[str, str]) -> Any:
    def run(argv: list[str]) -> str:
        key = " ".join(argv[:2])
        if key not in files:
            raise collector.ToolFailed(f"{argv[0]} not found on PATH")
        return files[key]

    return run


def no_nvml() -> Any:
    raise ImportError("No module named 'pynvml'")


def test_nvidia_falls_back_to_xml(hw: Path) -> None:
    xml = (hw / "nvidia-smi-xml" / "a10g_telegraf.xml").read_text()
    fragment = collector.collect_nvidia(fixture_runner({"nvidia-smi -q": xml}), no_nvml)
    assert fragment["nvidia"]["gpus"][0]["product"] == "NVIDIA A10G"
    tools = {t["name"]: t for t in fragment["tools"]}
    assert tools["nvml"]["present"] is False
    assert tools["nvidia-smi"]["present"] is True


def test_nvidia_falls_back_to_csv_when_xml_fails(hw: Path) -> None:
    from budcluster.hardware.nvidia_text import split_capture

    text = (hw / "nvidia-smi-captures" / "linux-x86_64__nvidia-l40s__595.80.txt").read_text()
    csv_text = split_capture(text)["idle :: query-gpu (csv, what the exporter parses)"]

    def run(argv: list[str]) -> str:
        if argv[1] == "-q":
            raise collector.ToolFailed("nvidia-smi -q -x exited 9: driver not loaded")
        return csv_text

    fragment = collector.collect_nvidia(run, no_nvml)
    assert fragment["nvidia"]["gpus"][0]["product"] == "NVIDIA L40S"
    assert fragment["nvidia"]["gpus"][0]["compute_capability"] == "8.9"


def test_missing_tools_are_recorded_not_raised() -> None:
    fragment = collector.collect_nvidia(fixture_runner({}), no_nvml)
    assert "nvidia" not in fragment
    assert {t["name"]: t["present"] for t in fragment["tools"]} == {
        "nvml": False,
        "nvidia-smi": False,
    }
    gaudi = collector.collect_gaudi(fixture_runner({}))
    assert gaudi["tools"] == [
        {"name": "hl-smi", "present": False, "reason": "hl-smi not found on PATH"}
    ]


def test_run_tool_times_out() -> None:
    with pytest.raises(collector.ToolFailed, match="timed out"):
        collector.run_tool(["sleep", "5"], timeout_s=0.2)


class FakeNvmlError(Exception):
    pass


def fake_nvml() -> Any:
    """A stand-in for pynvml exposing the calls the collector makes, with H100-MIG values."""
    gib = 1024**3
    handles = {"gpu0": SimpleNamespace(total=80 * gib, free=79 * gib, used=1 * gib)}
    mig = SimpleNamespace(total=40 * gib, free=40 * gib, used=0)

    def memory(handle: str) -> Any:
        return handles.get(handle, mig)

    def mig_handle(handle: str, slot: int) -> str:
        if slot > 0:
            raise FakeNvmlError("not found")
        return "mig0"

    return SimpleNamespace(
        NVMLError=FakeNvmlError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: "550.54.15",
        nvmlSystemGetCudaDriverVersion_v2=lambda: 12040,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: "gpu0",
        nvmlDeviceGetMemoryInfo=memory,
        nvmlDeviceGetCudaComputeCapability=lambda h: (9, 0),
        nvmlDeviceGetMigMode=lambda h: (1, 1),
        nvmlDeviceGetMaxMigDeviceCount=lambda h: 7,
        nvmlDeviceGetMigDeviceHandleByIndex=mig_handle,
        nvmlDeviceGetName=lambda h: (
            "NVIDIA H100 80GB HBM3" + (" MIG 3g.40gb" if h == "mig0" else "")
        ),
        nvmlDeviceGetGpuInstanceId=lambda h: 2,
        nvmlDeviceGetComputeInstanceId=lambda h: 0,
        nvmlDeviceGetUUID=lambda h: f"UUID-{h}",
        nvmlDeviceGetNvLinkState=lambda h, link: (_ for _ in ()).throw(FakeNvmlError("MIG")),
        nvmlDeviceGetComputeRunningProcesses=lambda h: [],
        nvmlDeviceGetPciInfo=lambda h: SimpleNamespace(busId=b"00000000:00:09.0"),
    )


def test_nvml_path() -> None:
    fragment = collector.collect_nvidia(fixture_runner({}), fake_nvml)
    inventory = NodeInventory.model_validate(merge_fragments(fragment))
    assert inventory.nvidia is not None and inventory.nvidia.cuda_version == "12.4"
    gpu = inventory.nvidia.gpus[0]
    assert (gpu.product, gpu.memory_total_mib, gpu.compute_capability) == (
        "NVIDIA H100 80GB HBM3",
        81920,
        "9.0",
    )
    assert gpu.pci_bus_id == "00000000:00:09.0"
    assert [(m.profile, m.memory_total_mib, m.uuid) for m in gpu.mig_devices] == [
        ("3g.40gb", 40960, "UUID-mig0")
    ]


def test_merge_keeps_the_richer_source_and_fills_gaps(hw: Path) -> None:
    """XML first (exact memory, bus id), then GFD labels (compute capability, MIG strategy)."""
    from budcluster.hardware.node_labels import parse_node_labels, read_label_sets
    from budcluster.hardware.nvidia_xml import parse_nvidia_smi_xml

    xml = parse_nvidia_smi_xml(
        (hw / "nvidia-smi-xml" / "a100-sxm4-40gb-mig_netdata.xml").read_text()
    )
    labels = next(
        iter(
            read_label_sets(
                (
                    hw
                    / "k8s-node-labels"
                    / "gfd_dgx-a100-sxm4-40gb_nvidia-labels_cloud-native-docs-excerpt.json"
                ).read_text()
            ).values()
        )
    )
    merged = NodeInventory.model_validate(merge_fragments(xml, parse_node_labels(labels)))
    assert merged.nvidia is not None
    gpu = merged.nvidia.gpus[0]
    assert gpu.memory_total_mib == 40960  # from the XML, not the label's 40537
    assert gpu.product == "NVIDIA A100-SXM4-40GB"
    assert gpu.compute_capability == "8.0"  # only the labels know it
    assert gpu.source == "nvidia-smi-xml"
    assert [s.kind for s in merged.sources] == ["nvidia-smi-xml", "node-labels"]


def test_schema_is_documented_and_shared() -> None:
    schema = NodeInventory.model_json_schema()
    assert {"cpu", "memory", "nvidia", "gaudi", "host", "tools", "sources"} <= set(
        schema["properties"]
    )
    assert "NvidiaGpu" in schema["$defs"] and "GaudiDevice" in schema["$defs"]
    assert schema["$defs"]["ToolStatus"]["properties"]["reason"]["description"]
