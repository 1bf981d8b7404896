"""Parse ``/proc/meminfo`` into the ``memory`` section."""

from __future__ import annotations

from budcluster.hardware._text import Fragment, source_record


def parse_meminfo(text: str, origin: str = "/proc/meminfo") -> Fragment:
    values: dict[str, int] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, rest = line.split(":", 1)
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0])  # kB, as the kernel prints it
    if "MemTotal" not in values:
        raise ValueError(f"{origin}: no 'MemTotal:' line; is this /proc/meminfo output?")
    memory: Fragment = {
        "total_mib": values["MemTotal"] // 1024,
        "available_mib": values["MemAvailable"] // 1024 if "MemAvailable" in values else None,
        "source": "meminfo",
    }
    return {"memory": memory, "sources": [source_record("meminfo", origin)]}
