"""Every nvidia-smi fixture, with the values a human reads in it."""

from __future__ import annotations

from pathlib import Path

from budcluster.hardware.inventory import NodeInventory
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.nvidia_text import (
    parse_nvidia_smi_capture,
    parse_nvidia_smi_q,
    parse_query_gpu_csv,
    split_capture,
)
from budcluster.hardware.nvidia_xml import parse_nvidia_smi_xml


def xml(hw: Path, name: str) -> NodeInventory:
    text = (hw / "nvidia-smi-xml" / name).read_text()
    return NodeInventory.model_validate(merge_fragments(parse_nvidia_smi_xml(text, name)))


def capture(hw: Path, name: str) -> NodeInventory:
    text = (hw / "nvidia-smi-captures" / name).read_text()
    return NodeInventory.model_validate(merge_fragments(parse_nvidia_smi_capture(text, name)))


def test_a100_80gb_mig_telegraf_is_four_attached_one_described(hw: Path) -> None:
    inv = xml(hw, "a100-sxm4-80gb-mig_telegraf.xml")
    assert inv.nvidia is not None
    assert inv.nvidia.attached_gpus == 4
    assert len(inv.nvidia.gpus) == 1
    assert any("4 attached GPUs but describes 1" in note for note in inv.notes)
    gpu = inv.nvidia.gpus[0]
    assert gpu.product == "NVIDIA A100-SXM4-80GB"
    assert gpu.memory_total_mib == 81920
    assert gpu.driver_version == "535.54.03"
    assert gpu.cuda_version == "12.2"
    assert gpu.mig_mode == "enabled"
    assert gpu.virtualization_mode == "None"
    assert gpu.pci_bus_id == "00000000:01:00.0"
    assert [m.gpu_instance_id for m in gpu.mig_devices] == [3, 4, 5, 6]
    assert {m.memory_total_mib for m in gpu.mig_devices} == {19968}
    assert {m.multiprocessor_count for m in gpu.mig_devices} == {14}


def test_a100_40gb_mig_netdata(hw: Path) -> None:
    inv = xml(hw, "a100-sxm4-40gb-mig_netdata.xml")
    assert inv.nvidia is not None and inv.nvidia.attached_gpus == 1
    gpu = inv.nvidia.gpus[0]
    assert gpu.product == "NVIDIA A100-SXM4-40GB"
    assert (gpu.memory_total_mib, gpu.memory_free_mib) == (40960, 40315)
    assert (gpu.driver_version, gpu.cuda_version) == ("510.47.03", "11.6")
    assert gpu.uuid == "GPU-27b94a00-ed54-5c24-b1fd-1054085de32a"
    assert gpu.pci_bus_id == "00000000:00:04.0"
    assert gpu.virtualization_mode == "Pass-Through"
    assert gpu.mig_mode == "enabled"
    assert [(m.index, m.memory_total_mib, m.multiprocessor_count) for m in gpu.mig_devices] == [
        (0, 19968, 42),
        (1, 19968, 42),
    ]


def test_a10g_telegraf_graphics_process_does_not_mark_it_busy(hw: Path) -> None:
    inv = xml(hw, "a10g_telegraf.xml")
    assert inv.nvidia is not None
    gpu = inv.nvidia.gpus[0]
    assert gpu.product == "NVIDIA A10G"
    assert (gpu.memory_total_mib, gpu.memory_free_mib, gpu.memory_used_mib) == (23028, 22569, 22)
    assert (gpu.driver_version, gpu.cuda_version) == ("515.105.01", "11.7")
    assert gpu.pci_bus_id == "00000000:00:1E.0"
    assert gpu.mig_mode == "not_supported"  # <current_mig>N/A</current_mig>
    assert gpu.compute_processes == 0  # only Xorg, a "G" process
    assert gpu.in_use is False


def test_tesla_t4_with_a_python_compute_process_is_in_use(hw: Path) -> None:
    inv = xml(hw, "tesla-t4_telegraf.xml")
    assert inv.nvidia is not None
    gpu = inv.nvidia.gpus[0]
    assert gpu.product == "Tesla T4"
    assert gpu.architecture == "Turing"
    assert (gpu.memory_total_mib, gpu.memory_free_mib) == (15360, 13939)
    assert gpu.compute_processes == 1  # "python", type C, 1005 MiB
    assert gpu.in_use is True


def test_h100_capture_q_text_csv_and_nvlink(hw: Path) -> None:
    inv = capture(hw, "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt")
    assert inv.nvidia is not None
    assert (inv.nvidia.driver_version, inv.nvidia.cuda_version) == ("590.48.01", "13.1")
    gpu = inv.nvidia.gpus[0]
    assert gpu.product == "NVIDIA H100 80GB HBM3"
    assert gpu.memory_total_mib == 81559
    assert gpu.memory_free_mib == 81081  # the idle -q section, not the load one (61263)
    assert gpu.compute_capability == "9.0"  # only the --query-gpu CSV has it
    assert gpu.mig_mode == "disabled"
    assert gpu.nvlink_active_links == 18
    assert gpu.pci_bus_id == "00000000:00:09.0"
    assert gpu.uuid == "GPU-00000000-0000-0000-0000-000000000000"  # masked by the capture


def test_h100_mig_capture_names_profiles_from_list(hw: Path) -> None:
    inv = capture(hw, "linux-x86_64__nvidia-h100-mig__590.48.01.txt")
    assert inv.nvidia is not None
    gpu = inv.nvidia.gpus[0]
    assert gpu.mig_mode == "enabled"
    assert gpu.nvlink_active_links is None  # "not supported for Devices in MIG mode"
    assert [(m.profile, m.memory_total_mib, m.gpu_instance_id) for m in gpu.mig_devices] == [
        ("3g.40gb", 40448, 2),
        ("2g.20gb", 20096, 3),
        ("1g.10gb", 9984, 9),
        ("1g.10gb", 9984, 10),
    ]
    assert gpu.mig_devices[1].uuid == "MIG-00000001-0000-0000-0000-000000000001"


def test_l40s_capture(hw: Path) -> None:
    inv = capture(hw, "linux-x86_64__nvidia-l40s__595.80.txt")
    assert inv.nvidia is not None
    gpu = inv.nvidia.gpus[0]
    assert gpu.product == "NVIDIA L40S"
    assert gpu.architecture == "Ada Lovelace"
    assert (gpu.driver_version, gpu.cuda_version) == ("595.80", "13.2")
    assert gpu.memory_total_mib == 46068
    assert gpu.compute_capability == "8.9"
    assert gpu.mig_mode == "not_supported"
    assert gpu.nvlink_active_links is None  # "Device does not have or support Nvlink"


def test_capture_sections_parse_on_their_own(hw: Path) -> None:
    """The -q text and the CSV parsers also work on bare command output (the collector's
    fallback path), not only inside a capture."""
    text = (hw / "nvidia-smi-captures" / "linux-x86_64__nvidia-l40s__595.80.txt").read_text()
    sections = split_capture(text)
    from_q = parse_nvidia_smi_q(sections["idle :: query (-q)"])["nvidia"]["gpus"][0]
    csv_text = sections["idle :: query-gpu (csv, what the exporter parses)"]
    from_csv = parse_query_gpu_csv(csv_text)["nvidia"]["gpus"][0]
    assert from_q["product"] == from_csv["product"] == "NVIDIA L40S"
    assert from_q["memory_total_mib"] == from_csv["memory_total_mib"] == 46068
    assert from_csv["mig_mode"] == "not_supported"
