"""Parse ``nvidia-smi -q -x`` XML (DTD v10 to v12) into the ``nvidia`` section."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from budcluster.hardware._text import (
    Fragment,
    clean,
    mig_mode,
    parse_mib,
    source_record,
    to_int,
)

# A device whose memory is more than this share used is treated as taken by someone else.
BUSY_MEMORY_FRACTION = 0.10


def _text(element: ET.Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path)
    return clean(found.text) if found is not None and found.text is not None else None


def is_busy(used_mib: int | None, total_mib: int | None, compute_processes: int) -> bool:
    if compute_processes > 0:
        return True
    if used_mib is None or not total_mib:
        return False
    return used_mib > total_mib * BUSY_MEMORY_FRACTION


def _mig_devices(gpu: ET.Element) -> list[Fragment]:
    devices: list[Fragment] = []
    for mig in gpu.findall("mig_devices/mig_device"):
        devices.append(
            {
                "index": to_int(_text(mig, "index")),
                "profile": None,  # the XML does not name the profile; nvidia-smi -L does
                "gpu_instance_id": to_int(_text(mig, "gpu_instance_id")),
                "compute_instance_id": to_int(_text(mig, "compute_instance_id")),
                "uuid": None,
                "memory_total_mib": parse_mib(_text(mig, "fb_memory_usage/total")),
                "memory_free_mib": parse_mib(_text(mig, "fb_memory_usage/free")),
                "multiprocessor_count": to_int(
                    _text(mig, "device_attributes/shared/multiprocessor_count")
                ),
            }
        )
    return devices


def _compute_processes(gpu: ET.Element) -> int:
    return sum(
        1 for proc in gpu.findall("processes/process_info") if _text(proc, "type") in {"C", "C+G"}
    )


def parse_nvidia_smi_xml(text: str, origin: str = "nvidia-smi -q -x") -> Fragment:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"{origin}: not valid nvidia-smi XML ({exc})") from exc
    if root.tag != "nvidia_smi_log":
        raise ValueError(f"{origin}: root element is <{root.tag}>, expected <nvidia_smi_log>")
    driver = _text(root, "driver_version")
    cuda = _text(root, "cuda_version")
    gpus: list[Fragment] = []
    for index, gpu in enumerate(root.findall("gpu")):
        total = parse_mib(_text(gpu, "fb_memory_usage/total"))
        used = parse_mib(_text(gpu, "fb_memory_usage/used"))
        processes = _compute_processes(gpu)
        nvlinks = [
            link
            for link in gpu.findall("nvlink/*")
            if (_text(link, "state") or "").lower() == "active"
        ]
        gpus.append(
            {
                "index": index,
                "product": _text(gpu, "product_name"),
                "architecture": _text(gpu, "product_architecture"),
                "uuid": _text(gpu, "uuid"),
                "memory_total_mib": total,
                "memory_free_mib": parse_mib(_text(gpu, "fb_memory_usage/free")),
                "memory_used_mib": used,
                "driver_version": driver,
                "cuda_version": cuda,
                "compute_capability": None,  # not in the XML before DTD v12.x
                "mig_mode": mig_mode(gpu.findtext("mig_mode/current_mig")),
                "mig_devices": _mig_devices(gpu),
                "pci_bus_id": _text(gpu, "pci/pci_bus_id") or gpu.get("id"),
                "virtualization_mode": _text(gpu, "gpu_virtualization_mode/virtualization_mode"),
                "nvlink_active_links": len(nvlinks) if nvlinks else None,
                "compute_processes": processes,
                "in_use": is_busy(used, total, processes),
                "source": "nvidia-smi-xml",
            }
        )
    attached = to_int(_text(root, "attached_gpus"))
    notes: list[str] = []
    if attached is not None and attached != len(gpus):
        notes.append(
            f"{origin}: reports {attached} attached GPUs but describes {len(gpus)}; "
            "only the described GPUs are in this inventory"
        )
    nvidia: Fragment = {
        "attached_gpus": attached,
        "driver_version": driver,
        "cuda_version": cuda,
        "gpus": gpus,
        "source": "nvidia-smi-xml",
    }
    fragment: Fragment = {"nvidia": nvidia, "sources": [source_record("nvidia-smi-xml", origin)]}
    if notes:
        fragment["notes"] = notes
    return fragment
