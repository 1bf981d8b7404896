"""Parse the default ``hl-smi`` summary table (Intel Gaudi) into the ``gaudi`` section."""

from __future__ import annotations

import re

from budcluster.hardware._text import Fragment, source_record
from budcluster.hardware.nvidia_xml import is_busy

_VERSION = re.compile(r"^\|\s*(HL-SMI Version|Driver Version|Nic Driver Version):\s+(\S+)")
_ROW_ID = re.compile(r"^\|\s+(\d+)\s+(HL-\w+)\s+\S+\s+\|\s+([0-9a-fA-F:.]+)\s")
_ROW_USE = re.compile(r"(\d+)MiB\s*/\s*(\d+)MiB\s*\|\s*(\d+)%")

# Product codes hl-smi prints, and the generation a human calls them.
GAUDI_GENERATIONS = {
    "HL-205": "Gaudi",
    "HL-225": "Gaudi2",
    "HL-325": "Gaudi3",
    "HL-325L": "Gaudi3",
    "HL-328": "Gaudi3",
    "HL-338": "Gaudi3",
}


def parse_hl_smi(text: str, origin: str = "hl-smi") -> Fragment:
    versions: dict[str, str] = {}
    devices: list[Fragment] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        version = _VERSION.match(line)
        if version:
            versions[version.group(1)] = version.group(2)
            continue
        row = _ROW_ID.match(line)
        if not row or number + 1 >= len(lines):
            continue
        usage = _ROW_USE.search(lines[number + 1])
        used = int(usage.group(1)) if usage else None
        total = int(usage.group(2)) if usage else None
        model = row.group(2)
        devices.append(
            {
                "index": int(row.group(1)),
                "model": model,
                "generation": GAUDI_GENERATIONS.get(model),
                "bus_id": row.group(3),
                "memory_total_mib": total,
                "memory_used_mib": used,
                "memory_free_mib": total - used if total is not None and used is not None else None,
                "utilization_percent": int(usage.group(3)) if usage else None,
                "in_use": is_busy(used, total, 0),
                "source": "hl-smi",
            }
        )
    if not devices and "HL-SMI Version" not in versions:
        raise ValueError(f"{origin}: no HL-SMI header or device rows; is this hl-smi output?")
    gaudi: Fragment = {
        "hl_smi_version": versions.get("HL-SMI Version"),
        "driver_version": versions.get("Driver Version"),
        "nic_driver_version": versions.get("Nic Driver Version"),
        "devices": devices,
        "source": "hl-smi",
    }
    return {"gaudi": gaudi, "sources": [source_record("hl-smi", origin)]}
