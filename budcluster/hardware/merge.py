"""Join inventory fragments from several sources into one NodeInventory-shaped dict.

Fragments are given richest first: a value already set is kept and later fragments only fill
gaps, so a fact's ``source`` names the tool that supplied it. Device lists are matched by
index; a richer source's device list is never replaced by a poorer one.
"""

from __future__ import annotations

import copy
from typing import Any

from budcluster.hardware._text import Fragment

SCHEMA_VERSION = 1

_DEVICE_LISTS = {"gpus", "devices", "mig_devices", "numa_nodes"}


def _fill(target: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        current = target.get(key)
        if key in _DEVICE_LISTS and isinstance(value, list):
            if not current:
                target[key] = copy.deepcopy(value)
            else:
                by_index = {item.get("index", item.get("id")): item for item in current}
                for item in value:
                    match = by_index.get(item.get("index", item.get("id")))
                    if match is not None:
                        _fill(match, item)
        elif isinstance(current, dict) and isinstance(value, dict):
            _fill(current, value)
        elif current is None or current == [] or current == "":
            target[key] = copy.deepcopy(value)


def _merge_tools(fragments: list[Fragment]) -> list[dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for fragment in fragments:
        for tool in fragment.get("tools", []):
            known = tools.get(tool["name"])
            if known is None or (tool.get("present") and not known.get("present")):
                tools[tool["name"]] = dict(tool)
    return [tools[name] for name in sorted(tools)]


def merge_fragments(*fragments: Fragment) -> Fragment:
    """One inventory dict from many fragments (each may hold any subset of sections)."""
    merged: Fragment = {"schema_version": SCHEMA_VERSION}
    sources: list[dict[str, str]] = []
    notes: list[str] = []
    vendors: set[str] = set()
    for fragment in fragments:
        sources.extend(fragment.get("sources", []))
        notes.extend(n for n in fragment.get("notes", []) if n not in notes)
        vendors.update(fragment.get("pci_vendors_present", []))
        rest = {
            k: v
            for k, v in fragment.items()
            if k not in {"sources", "notes", "tools", "pci_vendors_present", "schema_version"}
        }
        _fill(merged, rest)
    merged["sources"] = sources
    merged["notes"] = notes
    merged["tools"] = _merge_tools(list(fragments))
    merged["pci_vendors_present"] = sorted(vendors)
    return merged
