"""Parse the text forms of nvidia-smi: ``-q``, ``--query-gpu ... --format=csv``, ``-L``,
``nvlink -s``, and the multi-command captures that hold all of them."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from budcluster.hardware._text import (
    Fragment,
    clean,
    mig_mode,
    parse_mib,
    source_record,
    to_int,
)
from budcluster.hardware.nvidia_xml import is_busy

# Fields the collector asks for in its CSV fallback (all exist since driver 450).
QUERY_GPU_FIELDS: tuple[str, ...] = (
    "index",
    "name",
    "uuid",
    "pci.bus_id",
    "memory.total",
    "memory.used",
    "memory.free",
    "driver_version",
    "compute_cap",
    "mig.mode.current",
)


@dataclass
class _Node:
    name: str
    value: str | None
    children: list[_Node] = field(default_factory=list)

    def child(self, name: str) -> _Node | None:
        return next((c for c in self.children if c.name == name), None)

    def all(self, name: str) -> list[_Node]:
        return [c for c in self.children if c.name == name]

    def get(self, *path: str) -> str | None:
        node: _Node | None = self
        for name in path:
            node = node.child(name) if node else None
        return clean(node.value) if node else None


def _raw(node: _Node, *path: str) -> str | None:
    """A value without ``clean``: "N/A" is meaningful for MIG mode (not supported)."""
    current: _Node | None = node
    for name in path:
        current = current.child(name) if current else None
    return current.value if current else None


def _indent_tree(text: str) -> _Node:
    """``nvidia-smi -q`` nests by indentation; build the tree of "Name : value" lines."""
    root = _Node("", None)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    for line in text.splitlines():
        if not line.strip() or line.startswith("==="):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if " : " in line:
            name, value = line.split(" : ", 1)
            node = _Node(name.strip(), value.strip())
        else:
            node = _Node(line.strip(), None)
        while stack[-1][0] >= indent:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root


def parse_nvidia_smi_q(text: str, origin: str = "nvidia-smi -q") -> Fragment:
    tree = _indent_tree(text)
    driver = tree.get("Driver Version")
    cuda = tree.get("CUDA Version")
    if driver is None and not any(c.name.startswith("GPU ") for c in tree.children):
        raise ValueError(
            f"{origin}: no 'Driver Version' or 'GPU <bus id>' lines; not nvidia-smi -q"
        )
    gpus: list[Fragment] = []
    for index, gpu in enumerate(c for c in tree.children if c.name.startswith("GPU ")):
        total = parse_mib(gpu.get("FB Memory Usage", "Total"))
        used = parse_mib(gpu.get("FB Memory Usage", "Used"))
        mig_devices = [
            {
                "index": to_int(mig.get("Index")),
                "profile": None,
                "gpu_instance_id": to_int(mig.get("GPU Instance ID")),
                "compute_instance_id": to_int(mig.get("Compute Instance ID")),
                "uuid": None,
                "memory_total_mib": parse_mib(mig.get("Shared FB Memory Usage", "Total")),
                "memory_free_mib": parse_mib(mig.get("Shared FB Memory Usage", "Free")),
                "multiprocessor_count": to_int(
                    mig.get("Device Attributes", "Shared", "Multiprocessor count")
                ),
            }
            for mig in gpu.all("MIG Device")
        ]
        processes = gpu.child("Processes")
        compute = 0
        if processes is not None:
            # Process fields sit flat under "Processes"; one "Type" line per process.
            compute = sum(
                1
                for p in processes.children
                if p.name == "Type" and (p.value or "").strip() in {"C", "C+G"}
            )
        gpus.append(
            {
                "index": index,
                "product": gpu.get("Product Name"),
                "architecture": gpu.get("Product Architecture"),
                "uuid": gpu.get("GPU UUID"),
                "memory_total_mib": total,
                "memory_free_mib": parse_mib(gpu.get("FB Memory Usage", "Free")),
                "memory_used_mib": used,
                "driver_version": driver,
                "cuda_version": cuda,
                "compute_capability": None,
                "mig_mode": mig_mode(_raw(gpu, "MIG Mode", "Current")),
                "mig_devices": mig_devices,
                "pci_bus_id": gpu.get("PCI", "Bus Id") or gpu.name.split(" ", 1)[1],
                "virtualization_mode": gpu.get("GPU Virtualization Mode", "Virtualization Mode"),
                "nvlink_active_links": None,
                "compute_processes": compute,
                "in_use": is_busy(used, total, compute),
                "source": "nvidia-smi-q",
            }
        )
    nvidia: Fragment = {
        "attached_gpus": to_int(tree.get("Attached GPUs")),
        "driver_version": driver,
        "cuda_version": cuda,
        "gpus": gpus,
        "source": "nvidia-smi-q",
    }
    return {"nvidia": nvidia, "sources": [source_record("nvidia-smi-q", origin)]}


def parse_query_gpu_csv(text: str, origin: str = "nvidia-smi --query-gpu") -> Fragment:
    """CSV with a header row (``--format=csv``); units in the header such as `` [MiB]``."""
    rows = [row for row in csv.reader(io.StringIO(text.strip()), skipinitialspace=True) if row]
    if len(rows) < 1 or not any(h.split(" [")[0].strip() == "name" for h in rows[0]):
        raise ValueError(f"{origin}: expected a CSV header with a 'name' column (use --format=csv)")
    header = [h.split(" [")[0].strip() for h in rows[0]]
    gpus: list[Fragment] = []
    driver: str | None = None
    for position, row in enumerate(rows[1:]):
        values = dict(zip(header, (v.strip() for v in row), strict=False))
        total = parse_mib(values.get("memory.total"))
        used = parse_mib(values.get("memory.used"))
        driver = clean(values.get("driver_version")) or driver
        index = to_int(values.get("index"))
        gpus.append(
            {
                "index": index if index is not None else position,
                "product": clean(values.get("name")),
                "uuid": clean(values.get("uuid")),
                "memory_total_mib": total,
                "memory_free_mib": parse_mib(values.get("memory.free")),
                "memory_used_mib": used,
                "driver_version": clean(values.get("driver_version")),
                "compute_capability": clean(values.get("compute_cap")),
                "mig_mode": mig_mode(
                    values.get("mig.mode.current")
                ),  # raw: "[N/A]" = not supported
                "mig_devices": [],
                "pci_bus_id": clean(values.get("pci.bus_id")),
                "in_use": is_busy(used, total, 0),
                "source": "nvidia-smi-query",
            }
        )
    nvidia: Fragment = {
        "attached_gpus": len(gpus),
        "driver_version": driver,
        "gpus": gpus,
        "source": "nvidia-smi-query",
    }
    return {"nvidia": nvidia, "sources": [source_record("nvidia-smi-query", origin)]}


_LIST_MIG = re.compile(r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s+\(UUID:\s*([^)]+)\)")
_LIST_GPU = re.compile(r"^GPU\s+(\d+):\s+(.+?)\s+\(UUID:\s*([^)]+)\)")
_NVLINK = re.compile(r"^\s*Link\s+\d+:\s+([\d.]+)\s*GB/s")


def parse_nvidia_smi_list(text: str) -> dict[int, list[tuple[int, str, str]]]:
    """``nvidia-smi -L``: GPU index -> [(MIG device index, profile, MIG UUID)]."""
    result: dict[int, list[tuple[int, str, str]]] = {}
    current: int | None = None
    for line in text.splitlines():
        gpu = _LIST_GPU.match(line)
        if gpu:
            current = int(gpu.group(1))
            result[current] = []
            continue
        mig = _LIST_MIG.match(line)
        if mig and current is not None:
            result[current].append((int(mig.group(2)), mig.group(1), mig.group(3).strip()))
    return result


def parse_nvlink_status(text: str) -> dict[int, tuple[int, float]]:
    """``nvidia-smi nvlink -s``: GPU index -> (active links, GB/s per link)."""
    result: dict[int, tuple[int, float]] = {}
    current: int | None = None
    for line in text.splitlines():
        gpu = _LIST_GPU.match(line)
        if gpu:
            current = int(gpu.group(1))
            continue
        link = _NVLINK.match(line)
        if link and current is not None:
            count, _speed = result.get(current, (0, 0.0))
            result[current] = (count + 1, float(link.group(1)))
    return result


_BANNER = re.compile(r"^# (\w[\w-]*) :: (.+?)\s*$")


def split_capture(text: str) -> dict[str, str]:
    """Sections of an nvidia_gpu_exporter capture, keyed ``"<phase> :: <name>"``."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#" * 20) and i + 1 < len(lines):
            banner = _BANNER.match(lines[i + 1])
            if banner:
                current = f"{banner.group(1)} :: {banner.group(2)}"
                sections[current] = []
                i += 2
                while i < len(lines) and lines[i].startswith("#"):
                    i += 1  # the "# $ command" line and the closing rule
                continue
        if current is not None:
            sections[current].append(line)
        i += 1
    return {name: "\n".join(body) for name, body in sections.items()}


def is_capture(text: str) -> bool:
    return "# capabilities :: " in text or "# idle :: query (-q)" in text


def parse_nvidia_smi_capture(text: str, origin: str = "nvidia-smi capture") -> Fragment:
    """Combine the idle-state ``-q`` text (rich), the ``--query-gpu`` CSV (compute capability),
    ``-L`` (MIG profile names and UUIDs) and ``nvlink -s`` of one capture file."""
    sections = split_capture(text)
    q_text = sections.get("idle :: query (-q)")
    csv_text = sections.get("idle :: query-gpu (csv, what the exporter parses)")
    if q_text is None and csv_text is None:
        raise ValueError(f"{origin}: no '-q' or '--query-gpu' section found in this capture")
    fragment = parse_nvidia_smi_q(q_text, origin) if q_text else parse_query_gpu_csv(csv_text or "")
    gpus: list[Fragment] = fragment["nvidia"]["gpus"]
    if q_text and csv_text:
        by_bus = {g["pci_bus_id"]: g for g in parse_query_gpu_csv(csv_text)["nvidia"]["gpus"]}
        for gpu in gpus:
            from_csv = by_bus.get(gpu["pci_bus_id"])
            if from_csv:
                gpu["compute_capability"] = from_csv["compute_capability"]
    listing = parse_nvidia_smi_list(sections.get("capabilities :: list (-L)", ""))
    for gpu in gpus:
        named = {idx: (profile, uuid) for idx, profile, uuid in listing.get(gpu["index"], [])}
        for mig in gpu["mig_devices"]:
            if mig["index"] in named:
                mig["profile"], mig["uuid"] = named[mig["index"]]
    links = parse_nvlink_status(sections.get("capabilities :: nvlink -s", ""))
    for gpu in gpus:
        if gpu["index"] in links:
            gpu["nvlink_active_links"], gpu["nvlink_gb_s_per_link"] = links[gpu["index"]]
    fragment["nvidia"]["source"] = "nvidia-smi-capture"
    for gpu in gpus:
        gpu["source"] = "nvidia-smi-capture"
    fragment["sources"] = [source_record("nvidia-smi-capture", origin)]
    return fragment
