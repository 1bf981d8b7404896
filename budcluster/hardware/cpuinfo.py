"""Parse ``/proc/cpuinfo`` (x86 and ARM layouts) into the ``cpu`` section of a fragment."""

from __future__ import annotations

from budcluster.hardware._text import Fragment, interesting_flags, source_record, to_int

# ARM "CPU implementer" / "CPU part" ids of the server cores we expect to meet; the kernel
# prints no model name on ARM, so this is how a human (and lscpu) names the core.
_ARM_IMPLEMENTERS = {0x41: "ARM", 0x61: "Apple", 0xC0: "Ampere"}
_ARM_PARTS = {
    (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4F): "Neoverse-V2",
    (0x41, 0xD8E): "Neoverse-N3",
    (0x41, 0xD84): "Neoverse-V3",
}


def _blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        key = key.strip().lower()
        if key == "processor" and current and "processor" in current:
            blocks.append(current)
            current = {}
        current[key] = value.strip()
    if current:
        blocks.append(current)
    return [block for block in blocks if "processor" in block]


def parse_cpuinfo(text: str, origin: str = "/proc/cpuinfo") -> Fragment:
    """The CPU facts /proc/cpuinfo holds. It has no NUMA layout; that comes from sysfs or lscpu."""
    blocks = _blocks(text)
    if not blocks:
        raise ValueError(f"{origin}: no 'processor' block found; is this /proc/cpuinfo output?")
    first = blocks[0]
    notes: list[str] = []
    is_arm = "cpu implementer" in first
    raw_flags = (first.get("flags") or first.get("features") or "").split()
    cpu: Fragment = {
        "architecture": "aarch64" if is_arm else "x86_64",
        "isa_flags": interesting_flags(raw_flags),
        "logical_cpus": len(blocks),
        "numa_nodes": [],
        "source": "cpuinfo",
    }
    if is_arm:
        implementer = to_int(first.get("cpu implementer"))
        part = to_int(first.get("cpu part"))
        cpu["vendor"] = _ARM_IMPLEMENTERS.get(implementer or -1)
        cpu["model_name"] = _ARM_PARTS.get((implementer or -1, part or -1))
        cpu["model"] = part
        cpu["threads_per_core"] = 1  # no SMT on the Arm server cores listed above
    else:
        cores = to_int(first.get("cpu cores"))
        siblings = to_int(first.get("siblings"))
        cpu["vendor"] = first.get("vendor_id")
        cpu["model_name"] = first.get("model name")
        cpu["family"] = to_int(first.get("cpu family"))
        cpu["model"] = to_int(first.get("model"))
        cpu["cores_per_socket"] = cores
        cpu["threads_per_socket"] = siblings
        if cores and siblings:
            cpu["threads_per_core"] = siblings // cores
        physical_ids = {block.get("physical id") for block in blocks if "physical id" in block}
        if siblings and len(blocks) >= siblings * max(len(physical_ids), 1):
            cpu["sockets"] = len(physical_ids) or 1
        elif siblings and len(blocks) < siblings:
            notes.append(
                f"{origin}: lists {len(blocks)} of the {siblings} logical CPUs of a socket "
                "(an excerpt); the socket count is unknown from this file"
            )
    fragment: Fragment = {"cpu": cpu, "sources": [source_record("cpuinfo", origin)]}
    if notes:
        fragment["notes"] = notes
    return fragment
