"""Parse plain ``lscpu`` output into the ``cpu`` section, NUMA layout included."""

from __future__ import annotations

import re

from budcluster.hardware._text import (
    Fragment,
    interesting_flags,
    parse_cpu_list,
    source_record,
    to_int,
)

_NUMA_LINE = re.compile(r"^NUMA node(\d+) CPU\(s\)$")


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip()] = value.strip()
    return fields


def physical_cpus_by_enumeration(cpus: list[int], physical_core_count: int) -> list[int]:
    """One thread per core, assuming Linux's usual x86 order: ids below the core count are
    the first thread of each core and their SMT siblings follow. lscpu alone cannot prove
    this, so the collector reads sysfs thread_siblings instead where it can."""
    return [cpu for cpu in cpus if cpu < physical_core_count]


def parse_lscpu(text: str, origin: str = "lscpu") -> Fragment:
    fields = _fields(text)
    if "Architecture" not in fields:
        raise ValueError(f"{origin}: no 'Architecture:' line; is this lscpu output?")
    threads_per_core = to_int(fields.get("Thread(s) per core"))
    cores_per_socket = to_int(fields.get("Core(s) per socket") or fields.get("Core(s) per cluster"))
    sockets = to_int(fields.get("Socket(s)"))
    if sockets is None:
        # Newer lscpu prints "Socket(s): -" on Arm and counts clusters instead.
        sockets = to_int(fields.get("Cluster(s)"))
    logical = to_int(fields.get("CPU(s)"))
    notes: list[str] = []
    physical_core_count = (
        cores_per_socket * sockets if cores_per_socket is not None and sockets else None
    )
    numa_nodes: list[Fragment] = []
    for key, value in fields.items():
        match = _NUMA_LINE.match(key)
        if not match:
            continue
        cpus = parse_cpu_list(value)
        node: Fragment = {"id": int(match.group(1)), "cpus": cpus}
        if threads_per_core == 1:
            node["physical_cpus"] = cpus
        elif physical_core_count:
            node["physical_cpus"] = physical_cpus_by_enumeration(cpus, physical_core_count)
        numa_nodes.append(node)
    numa_nodes.sort(key=lambda node: int(node["id"]))
    if threads_per_core and threads_per_core > 1 and numa_nodes:
        notes.append(
            f"{origin}: physical cores per NUMA node assume SMT siblings are numbered after "
            "all first threads (usual on x86 Linux); lscpu does not state it"
        )
    cpu: Fragment = {
        "architecture": fields["Architecture"],
        "vendor": fields.get("Vendor ID"),
        "model_name": fields.get("Model name"),
        "family": to_int(fields.get("CPU family")),
        "model": to_int(fields.get("Model")),
        "sockets": sockets,
        "cores_per_socket": cores_per_socket,
        "threads_per_core": threads_per_core,
        "threads_per_socket": (
            cores_per_socket * threads_per_core if cores_per_socket and threads_per_core else None
        ),
        "logical_cpus": logical,
        "numa_nodes": numa_nodes,
        "isa_flags": interesting_flags(fields.get("Flags", "").split()),
        "source": "lscpu",
    }
    fragment: Fragment = {"cpu": cpu, "sources": [source_record("lscpu", origin)]}
    if notes:
        fragment["notes"] = notes
    return fragment
