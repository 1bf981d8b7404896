"""Every CPU, hl-smi and node-label fixture, with the values a human reads in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcluster.hardware.cpuinfo import parse_cpuinfo
from budcluster.hardware.hlsmi import parse_hl_smi
from budcluster.hardware.inventory import NodeInventory
from budcluster.hardware.lscpu import parse_lscpu
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels, read_label_sets

AMX = {"amx_bf16", "amx_int8", "amx_tile"}


def inv(fragment: dict) -> NodeInventory:  # type: ignore[type-arg]
    return NodeInventory.model_validate(merge_fragments(fragment))


def cpuinfo(hw: Path, name: str) -> NodeInventory:
    return inv(parse_cpuinfo((hw / "cpu" / name).read_text(), name))


@pytest.mark.parametrize(
    ("name", "vendor", "model_name", "family", "model", "cores", "threads", "amx"),
    [
        ("proc-cpuinfo_intel-xeon-platinum-8480plus_sapphirerapids_archspec.txt",
         "GenuineIntel", "Intel(R) Xeon(R) Platinum 8480+", 6, 143, 56, 112, True),
        ("proc-cpuinfo_intel-xeon-platinum-8488C_sapphirerapids_aws_eessi.txt",
         "GenuineIntel", "Intel(R) Xeon(R) Platinum 8488C", 6, 143, 8, 16, True),
        ("proc-cpuinfo_intel-xeon-6975P-C_graniterapids_aws_eessi.txt",
         "GenuineIntel", "Intel(R) Xeon(R) 6975P-C", 6, 173, 8, 16, True),
        ("proc-cpuinfo_amd-epyc-9654_genoa-zen4_archspec.txt",
         "AuthenticAMD", "AMD EPYC 9654 96-Core Processor", 25, 17, 96, 96, False),
        ("proc-cpuinfo_amd-epyc-9V33X_genoa-x-zen4_azure_eessi.txt",
         "AuthenticAMD", "AMD EPYC 9V33X 96-Core Processor", 25, 17, 88, 88, False),
    ],
)  # fmt: skip
def test_x86_cpuinfo(
    hw: Path, name: str, vendor: str, model_name: str, family: int, model: int,
    cores: int, threads: int, amx: bool,
) -> None:  # fmt: skip
    cpu = cpuinfo(hw, name).cpu
    assert cpu is not None
    assert (cpu.vendor, cpu.model_name, cpu.family, cpu.model) == (
        vendor,
        model_name,
        family,
        model,
    )
    assert (cpu.cores_per_socket, cpu.threads_per_socket) == (cores, threads)
    assert cpu.architecture == "x86_64"
    assert {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"} <= set(cpu.isa_flags)
    assert (set(cpu.isa_flags) >= AMX) is amx
    assert cpu.has_amx is amx
    # Genoa has AVX-512 FP16? No: avx512_fp16 is Sapphire Rapids and later only.
    assert ("avx512_fp16" in cpu.isa_flags) is amx


def test_cpuinfo_excerpt_is_flagged_not_counted_as_one_cpu_machine(hw: Path) -> None:
    result = cpuinfo(hw, "proc-cpuinfo_intel-xeon-platinum-8480plus_sapphirerapids_archspec.txt")
    assert result.cpu is not None and result.cpu.sockets is None
    assert any("1 of the 112 logical CPUs" in note for note in result.notes)


@pytest.mark.parametrize(
    ("name", "core", "flags", "absent"),
    [
        ("proc-cpuinfo_aws-graviton2_neoverse-n1_archspec.txt", "Neoverse-N1", {"neon"}, {"sve"}),
        ("proc-cpuinfo_aws-graviton3_neoverse-v1_archspec.txt", "Neoverse-V1",
         {"neon", "sve", "bf16", "i8mm"}, {"sve2"}),
        ("proc-cpuinfo_arm-neoverse-v2_archspec.txt", "Neoverse-V2",
         {"neon", "sve", "sve2", "bf16"}, set()),
        ("proc-cpuinfo_google-axion_neoverse-v2_gcp_eessi.txt", "Neoverse-V2",
         {"neon", "sve", "sve2", "i8mm"}, set()),
    ],
)  # fmt: skip
def test_arm_cpuinfo(hw: Path, name: str, core: str, flags: set[str], absent: set[str]) -> None:
    cpu = cpuinfo(hw, name).cpu
    assert cpu is not None
    assert (cpu.architecture, cpu.vendor, cpu.model_name) == ("aarch64", "ARM", core)
    assert flags <= set(cpu.isa_flags)
    assert not absent & set(cpu.isa_flags)
    assert not AMX & set(cpu.isa_flags)


def test_lscpu_two_socket_sapphire_rapids(hw: Path) -> None:
    name = "lscpu_intel-xeon-platinum-8462Yplus_sapphirerapids_2s_vllm-ascend-issue264-excerpt.txt"
    cpu = inv(parse_lscpu((hw / "cpu" / name).read_text(), name)).cpu
    assert cpu is not None
    assert cpu.model_name == "Intel(R) Xeon(R) Platinum 8462Y+"
    assert (cpu.sockets, cpu.cores_per_socket, cpu.threads_per_core, cpu.logical_cpus) == (
        2, 32, 2, 128,
    )  # fmt: skip
    assert [n.cpu_list for n in cpu.numa_nodes] == ["0-31,64-95", "32-63,96-127"]
    assert cpu.numa_nodes[0].physical_cpus == list(range(32))
    assert cpu.numa_nodes[1].physical_cpus == list(range(32, 64))
    assert set(cpu.isa_flags) >= AMX
    assert "avx512_fp16" in cpu.isa_flags


def test_lscpu_gh200_grace_nine_numa_nodes_one_with_cpus(hw: Path) -> None:
    name = "lscpu_nvidia-gh200-grace_neoverse-v2_warp-ik-excerpt.txt"
    cpu = inv(parse_lscpu((hw / "cpu" / name).read_text(), name)).cpu
    assert cpu is not None
    assert (cpu.architecture, cpu.vendor, cpu.model_name) == ("aarch64", "ARM", "Neoverse-V2")
    assert cpu.logical_cpus == 64 and cpu.threads_per_core == 1
    assert cpu.cores_per_socket == 64  # "Core(s) per cluster: 64", "Socket(s): -"
    assert len(cpu.numa_nodes) == 9
    assert cpu.numa_nodes[0].cpu_list == "0-63"
    assert all(node.cpus == [] for node in cpu.numa_nodes[1:])  # GPU/HBM memory-only nodes
    assert {"neon", "sve", "sve2", "bf16", "i8mm"} <= set(cpu.isa_flags)


def test_hl_smi_gaudi2_eight_cards_six_busy(hw: Path) -> None:
    name = "hl-smi_8x-HL-225-gaudi2_driver-1.21.1_vdwarakn-readme-excerpt.txt"
    gaudi = inv(parse_hl_smi((hw / "hl-smi" / name).read_text(), name)).gaudi
    assert gaudi is not None
    assert gaudi.hl_smi_version == "hl-1.21.1-fw-59.2.3.0"
    assert gaudi.driver_version == "1.21.1-bfcec49"
    assert gaudi.nic_driver_version == "1.21.1-ead2cb0"
    assert len(gaudi.devices) == 8
    assert {d.model for d in gaudi.devices} == {"HL-225"}
    assert {d.generation for d in gaudi.devices} == {"Gaudi2"}
    assert {d.memory_total_mib for d in gaudi.devices} == {98304}
    assert gaudi.devices[0].bus_id == "0000:33:00.0" and gaudi.devices[0].memory_used_mib == 94963
    assert gaudi.devices[7].bus_id == "0000:4d:00.0"
    # Only card 1 (768 MiB used) is idle; the others hold 82-95 GiB of someone's work.
    assert [d.index for d in gaudi.devices if not d.in_use] == [1]


def test_hl_smi_gaudi3_eight_idle_cards(hw: Path) -> None:
    name = "hl-smi_8x-HL-325L-gaudi3_driver-1.20.1_ibm-cloud-openshift-docs-excerpt.txt"
    gaudi = inv(parse_hl_smi((hw / "hl-smi" / name).read_text(), name)).gaudi
    assert gaudi is not None
    assert gaudi.driver_version == "1.20.1-366eb9c"
    assert gaudi.hl_smi_version == "hl-1.21.0-fw-59.2.1.0"
    assert [d.model for d in gaudi.devices] == ["HL-325L"] * 8
    assert {d.generation for d in gaudi.devices} == {"Gaudi3"}
    assert {d.memory_total_mib for d in gaudi.devices} == {131072}
    assert {d.memory_used_mib for d in gaudi.devices} == {672}
    assert not any(d.in_use for d in gaudi.devices)
    assert gaudi.devices[0].bus_id == "0000:e9:00.0"


def labels(hw: Path, name: str, node: str | None = None) -> NodeInventory:
    sets = read_label_sets((hw / "k8s-node-labels" / name).read_text())
    return inv(parse_node_labels(sets[node] if node else next(iter(sets.values())), name))


def test_gfd_labels_h100_single_strategy_mig_disabled(hw: Path) -> None:
    result = labels(hw, "nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-node-labels.json")
    assert result.node_name == "s4124-0073"
    assert result.nvidia is not None
    assert result.nvidia.mig_strategy == "single"
    assert result.nvidia.attached_gpus == 1
    gpu = result.nvidia.gpus[0]
    assert (gpu.product, gpu.memory_total_mib) == ("NVIDIA-H100-80GB-HBM3", 81559)
    assert (gpu.driver_version, gpu.cuda_version, gpu.compute_capability) == (
        "550.54.15", "12.4", "9.0",
    )  # fmt: skip
    assert gpu.mig_mode == "disabled" and gpu.mig_devices == []
    assert result.cpu is not None and result.cpu.vendor == "AMD" and result.cpu.family == 25
    assert not AMX & set(result.cpu.isa_flags)
    assert "10de" in result.pci_vendors_present
    assert result.host is not None and result.host.kernel == "5.15.0-102-generic"
    assert result.host.os == "ubuntu 22.04"


def test_gfd_labels_h100_mixed_strategy_mig_slices(hw: Path) -> None:
    result = labels(hw, "nfd-gfd_h100-80gb-hbm3_amd-epyc-milan_mig-mixed-node-labels.json")
    assert result.nvidia is not None and result.nvidia.mig_strategy == "mixed"
    gpu = result.nvidia.gpus[0]
    assert gpu.mig_mode == "enabled"
    assert [(m.profile, m.memory_total_mib) for m in gpu.mig_devices] == [
        ("3g.40gb", 40320),
        ("2g.20gb", 20096),
        ("1g.10gb", 9984),
        ("1g.10gb", 9984),
    ]


def test_gfd_labels_dgx_a100_old_naming(hw: Path) -> None:
    result = labels(hw, "gfd_dgx-a100-sxm4-40gb_nvidia-labels_cloud-native-docs-excerpt.json")
    assert result.nvidia is not None
    gpu = result.nvidia.gpus[0]
    assert gpu.product == "A100-SXM4-40GB"  # pre-"NVIDIA-" product naming
    assert gpu.memory_total_mib == 40537
    assert (gpu.driver_version, gpu.cuda_version, gpu.compute_capability) == (
        "450.80.02", "11.0", "8.0",
    )  # fmt: skip
    assert result.nvidia.attached_gpus == 1
    assert result.cpu is None  # the excerpt keeps only nvidia.com/* labels


def test_nfd_label_list_sapphire_rapids_node_and_controller(hw: Path) -> None:
    name = "nfd_intel-sapphirerapids-node_kubectl-label-list_container-experience-kits-excerpt.txt"
    sets = read_label_sets((hw / "k8s-node-labels" / name).read_text())
    assert sorted(sets) == ["controller1", "node1"]
    node1 = labels(hw, name, "node1")
    assert node1.node_name == "node1"
    assert node1.cpu is not None
    assert (node1.cpu.vendor, node1.cpu.family, node1.cpu.model) == ("Intel", 6, 143)
    assert AMX | {"avx512_fp16", "avx512_bf16"} <= set(node1.cpu.isa_flags)
    assert node1.nvidia is None and node1.gaudi is None
    assert node1.pci_vendors_present == ["1a03", "8086"]
    assert node1.host is not None and node1.host.os == "rocky 9.0"
    controller = labels(hw, name, "controller1")
    assert controller.cpu is None and controller.node_name == "controller1"


def test_habana_pci_label_is_noted() -> None:
    """The one real Gaudi label fragment seen publicly: pci-1da3.present."""
    result = inv(parse_node_labels({"feature.node.kubernetes.io/pci-1da3.present": "true"}))
    assert result.pci_vendors_present == ["1da3"]
    assert any("Habana" in note for note in result.notes)
