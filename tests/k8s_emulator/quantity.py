"""Kubernetes resource quantities ("500m", "16Gi", "1e3") as numbers, for the scheduler."""

from __future__ import annotations

import re
from typing import Any

_SUFFIX = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


def parse_quantity(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(
            f"quantities must match the regular expression '{_QUANTITY.pattern}', got {text!r}"
        )
    return float(match.group(1)) * _SUFFIX[match.group(2) or ""]


def format_quantity(value: float, resource: str) -> str:
    if resource == "cpu":
        return f"{round(value * 1000)}m" if value != int(value) else str(int(value))
    if resource in ("memory", "ephemeral-storage") and value >= 2**20:
        return f"{int(value // 2**20)}Mi"
    return str(int(value)) if value == int(value) else str(value)
