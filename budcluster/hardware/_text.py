"""Small stdlib helpers shared by the parsers: CPU lists, sizes, ISA flag names."""

from __future__ import annotations

import re
from typing import Any

Fragment = dict[str, Any]
"""A partial NodeInventory as plain JSON-ready data; ``merge.merge_fragments`` joins them."""

# The ISA features the planner and the runtimes care about, in their /proc/cpuinfo spelling.
# The full flag list is noise for planning; these decide engine builds and dtypes.
INTERESTING_FLAGS: tuple[str, ...] = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx512_fp16",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
    "neon",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)

# NFD spells CPUID features in upper case without underscores.
NFD_CPUID_TO_FLAG: dict[str, str] = {
    "AVX2": "avx2",
    "AVX512F": "avx512f",
    "AVX512BF16": "avx512_bf16",
    "AVX512VNNI": "avx512_vnni",
    "AVX512FP16": "avx512_fp16",
    "AVXVNNI": "avx_vnni",
    "AMXBF16": "amx_bf16",
    "AMXINT8": "amx_int8",
    "AMXTILE": "amx_tile",
    "ASIMD": "neon",
    "SVE": "sve",
    "SVE2": "sve2",
}

_MIB_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(MiB|GiB|KiB|B)?\s*$", re.IGNORECASE)
_UNIT_TO_MIB = {"b": 1 / (1024 * 1024), "kib": 1 / 1024, "mib": 1.0, "gib": 1024.0}


def interesting_flags(raw_flags: list[str]) -> list[str]:
    """The planning-relevant ISA flags of a raw flag list; ARM ``asimd`` is reported as neon."""
    present = {flag.lower() for flag in raw_flags}
    if "asimd" in present:
        present.add("neon")
    return [flag for flag in INTERESTING_FLAGS if flag in present]


def parse_cpu_list(text: str) -> list[int]:
    """Expand a kernel CPU list such as ``0-31,64-95`` into CPU ids. Empty text is no CPUs."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.extend(range(int(low), int(high) + 1))
        else:
            cpus.append(int(part))
    return cpus


def format_cpu_list(cpus: list[int]) -> str:
    """Compress CPU ids into kernel list syntax: [0,1,2,5] -> ``0-2,5``."""
    ordered = sorted(set(cpus))
    ranges: list[str] = []
    start = prev = None
    for cpu in ordered:
        if start is None:
            start = prev = cpu
        elif prev is not None and cpu == prev + 1:
            prev = cpu
        else:
            ranges.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = cpu
    if start is not None:
        ranges.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ",".join(ranges)


def parse_mib(text: str | None) -> int | None:
    """``"81559 MiB"`` -> 81559. ``N/A``, ``[N/A]`` and empty give None."""
    if text is None:
        return None
    match = _MIB_RE.match(text)
    if not match:
        return None
    unit = (match.group(2) or "MiB").lower()
    return round(float(match.group(1)) * _UNIT_TO_MIB[unit])


def clean(text: str | None) -> str | None:
    """Strip a tool value; the tools' "not available" spellings become None."""
    if text is None:
        return None
    value = text.strip()
    if not value or value in {"N/A", "[N/A]", "-", "Not Supported", "[Not Supported]"}:
        return None
    return value


def to_int(text: str | None) -> int | None:
    value = clean(text)
    if value is None:
        return None
    try:
        return int(value, 0) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def mig_mode(text: str | None) -> str | None:
    """Normalise MIG mode spellings: Enabled/Disabled -> enabled/disabled; N/A -> not_supported."""
    if text is None:
        return None
    value = text.strip().lower()
    if value in {"enabled", "disabled"}:
        return value
    if value in {"n/a", "[n/a]"}:
        return "not_supported"
    return None


def source_record(kind: str, origin: str) -> dict[str, str]:
    return {"kind": kind, "origin": origin}
