"""NodeInventory: the validated, documented form of what the collector and parsers produce.

Every source (collector, nvidia-smi XML/text/CSV, hl-smi, cpuinfo, lscpu, node labels)
yields the same schema; fields a source cannot know are null. ``source`` on each section
and device names the tool that supplied it; ``tools`` lists the tools that were absent or
failed, with the reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from budcluster.hardware._text import format_cpu_list


class _Model(BaseModel):
    # Unknown keys are kept (extra="allow") so newer collectors do not break older planners.
    model_config = ConfigDict(extra="allow")


class SourceRecord(_Model):
    kind: str = Field(description="Which parser or probe: nvml, nvidia-smi-xml, lscpu, ...")
    origin: str = Field(description="The file path or command the data came from.")


class ToolStatus(_Model):
    name: str
    present: bool
    reason: str | None = Field(None, description="Why the tool is not present or failed.")


class NumaNode(_Model):
    id: int
    cpus: list[int] = Field(description="Logical CPU ids in this node.")
    physical_cpus: list[int] | None = Field(
        None, description="One logical CPU per physical core (the first SMT thread)."
    )
    memory_total_mib: int | None = None

    @property
    def cpu_list(self) -> str:
        return format_cpu_list(self.cpus)


class CpuInfo(_Model):
    architecture: str | None = None
    vendor: str | None = None
    model_name: str | None = None
    family: int | None = None
    model: int | None = None
    sockets: int | None = None
    cores_per_socket: int | None = None
    threads_per_core: int | None = None
    threads_per_socket: int | None = None
    logical_cpus: int | None = None
    numa_nodes: list[NumaNode] = Field(default_factory=list)
    isa_flags: list[str] = Field(
        default_factory=list,
        description="Planning-relevant ISA flags: avx2, avx512f, avx512_bf16, avx512_vnni, "
        "avx512_fp16, avx_vnni, amx_bf16, amx_int8, amx_tile, neon, sve, sve2, bf16, i8mm.",
    )
    source: str | None = None

    @property
    def has_amx(self) -> bool:
        return "amx_bf16" in self.isa_flags and "amx_tile" in self.isa_flags

    @property
    def physical_cores(self) -> int | None:
        if self.sockets and self.cores_per_socket:
            return self.sockets * self.cores_per_socket
        return None


class MemoryInfo(_Model):
    total_mib: int
    available_mib: int | None = None
    source: str | None = None


class MigDevice(_Model):
    index: int | None = None
    profile: str | None = Field(None, description="e.g. 3g.40gb; null when the source omits it.")
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    uuid: str | None = None
    memory_total_mib: int | None = None
    memory_free_mib: int | None = None
    multiprocessor_count: int | None = None
    in_use: bool = False


class NvidiaGpu(_Model):
    index: int
    product: str | None = None
    architecture: str | None = None
    uuid: str | None = None
    memory_total_mib: int | None = None
    memory_free_mib: int | None = None
    memory_used_mib: int | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    compute_capability: str | None = None
    mig_mode: Literal["enabled", "disabled", "not_supported"] | None = None
    mig_devices: list[MigDevice] = Field(default_factory=list)
    pci_bus_id: str | None = None
    virtualization_mode: str | None = None
    nvlink_active_links: int | None = None
    compute_processes: int | None = None
    in_use: bool = Field(False, description="Taken by another workload; the planner skips it.")
    source: str | None = None


class NvidiaInfo(_Model):
    attached_gpus: int | None = Field(
        None, description="What the tool says is attached; may exceed len(gpus) in excerpts."
    )
    driver_version: str | None = None
    cuda_version: str | None = None
    mig_strategy: Literal["none", "single", "mixed"] | None = None
    gpus: list[NvidiaGpu] = Field(default_factory=list)
    source: str | None = None


class GaudiDevice(_Model):
    index: int
    model: str | None = Field(None, description="hl-smi product code: HL-205, HL-225, HL-325L...")
    generation: str | None = None
    bus_id: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    memory_free_mib: int | None = None
    utilization_percent: int | None = None
    in_use: bool = False
    source: str | None = None


class GaudiInfo(_Model):
    hl_smi_version: str | None = None
    driver_version: str | None = None
    nic_driver_version: str | None = None
    devices: list[GaudiDevice] = Field(default_factory=list)
    source: str | None = None


class HostInfo(_Model):
    kernel: str | None = None
    os: str | None = None
    docker: bool | None = None
    podman: bool | None = None
    systemd: bool | None = None
    source: str | None = None


class DevicesInUse(_Model):
    """Accelerators that pods already request on the node, as its scheduler counts them."""

    resource: str = Field(
        description="The extended resource: nvidia.com/gpu, nvidia.com/mig-<profile>, "
        "habana.ai/gaudi."
    )
    count: int = Field(ge=0)
    holder: str | None = Field(
        None,
        description="The served model name of the bud-serve-cluster runtime whose pods "
        "request them; null for any other pods.",
    )
    claimed: bool = Field(
        False,
        description="Not detected: devices another deployment's plan claimed before its "
        "pods or engine hold them (budcluster/planning/claims.py). Added to what is seen "
        "in use, never maxed with it: they are not busy yet.",
    )


class NodeTaint(_Model):
    """One taint of a Kubernetes node, as ``spec.taints`` holds it."""

    key: str
    value: str = ""
    effect: str = Field(description="NoSchedule, PreferNoSchedule or NoExecute.")

    def describe(self) -> str:
        """``key[=value]:Effect``, as ``kubectl describe node`` writes it."""
        return f"{self.key}{'=' + self.value if self.value else ''}:{self.effect}"


class NodeScheduling(_Model):
    """What decides which pods a Kubernetes node accepts: its taints, its cordon and its
    labels (for node selectors). Absent on hosts, where nothing schedules pods."""

    taints: list[NodeTaint] = Field(default_factory=list)
    unschedulable: bool = Field(
        False, description="Cordoned (spec.unschedulable): the scheduler places no new pods."
    )
    labels: dict[str, str] = Field(default_factory=dict)


class NodeInventory(_Model):
    """Everything the planner needs to know about one node."""

    schema_version: int = 1
    node_name: str | None = None
    collected_at: str | None = None
    cpu: CpuInfo | None = None
    memory: MemoryInfo | None = None
    nvidia: NvidiaInfo | None = None
    gaudi: GaudiInfo | None = None
    host: HostInfo | None = None
    pci_vendors_present: list[str] = Field(
        default_factory=list, description="PCI vendor ids seen by NFD: 10de NVIDIA, 1da3 Habana."
    )
    devices_in_use: list[DevicesInUse] = Field(
        default_factory=list,
        description="What the node's non-terminated pods request (Kubernetes only); the "
        "planner counts that many devices of each resource as taken. Empty where no "
        "scheduler hands out devices (hosts): there, only the tools' in_use flags count.",
    )
    scheduling: NodeScheduling | None = Field(
        None,
        description="Taints, cordon and labels (Kubernetes only); the planner counts only "
        "nodes whose taints the deployment tolerates, that match its node selector and are "
        "not cordoned.",
    )
    tools: list[ToolStatus] = Field(default_factory=list)
    sources: list[SourceRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def devices_held(self, resource: str, replacing: str | None = None) -> int:
        """How many ``resource`` devices pods hold, less those of the runtime serving
        ``replacing`` (a redeploy replaces its own pods before it starts new ones)."""
        return sum(
            entry.count
            for entry in self.devices_in_use
            if entry.resource == resource
            and not entry.claimed
            and (replacing is None or entry.holder != replacing)
        )

    def devices_claimed(self, resource: str) -> int:
        """How many ``resource`` devices other deployments' plans claimed (not yet held)."""
        return sum(
            entry.count
            for entry in self.devices_in_use
            if entry.resource == resource and entry.claimed
        )

    @classmethod
    def from_fragment(cls, data: dict[str, Any]) -> NodeInventory:
        return cls.model_validate(data)
