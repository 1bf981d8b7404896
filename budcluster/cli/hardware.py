"""``budcluster hardware``: detect this machine, or parse saved tool outputs into one inventory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from budcluster.cli.errors import exits_on_error
from budcluster.hardware._text import Fragment
from budcluster.hardware.collector import collect
from budcluster.hardware.cpuinfo import parse_cpuinfo
from budcluster.hardware.hlsmi import parse_hl_smi
from budcluster.hardware.inventory import NodeInventory
from budcluster.hardware.lscpu import parse_lscpu
from budcluster.hardware.meminfo import parse_meminfo
from budcluster.hardware.merge import merge_fragments
from budcluster.hardware.node_labels import parse_node_labels, read_label_sets
from budcluster.hardware.nvidia_text import (
    is_capture,
    parse_nvidia_smi_capture,
    parse_nvidia_smi_q,
    parse_query_gpu_csv,
)
from budcluster.hardware.nvidia_xml import parse_nvidia_smi_xml

app = typer.Typer(help="Hardware inventory: detect this node or parse saved tool outputs.")


def _print(inventory: NodeInventory, as_json: bool) -> None:
    if as_json:
        typer.echo(inventory.model_dump_json(indent=2))
        return
    cpu, mem = inventory.cpu, inventory.memory
    typer.echo(f"node: {inventory.node_name or '-'}")
    if cpu:
        typer.echo(
            f"cpu: {cpu.model_name or cpu.vendor} ({cpu.architecture}), sockets={cpu.sockets} "
            f"cores/socket={cpu.cores_per_socket} threads/core={cpu.threads_per_core}"
        )
        for node in cpu.numa_nodes:
            typer.echo(f"  NUMA node {node.id}: CPUs {node.cpu_list or '-'}")
        typer.echo(f"  ISA: {' '.join(cpu.isa_flags) or '-'}")
    if mem:
        typer.echo(f"memory: {mem.total_mib} MiB total, {mem.available_mib} MiB available")
    for gpu in inventory.nvidia.gpus if inventory.nvidia else []:
        typer.echo(
            f"gpu {gpu.index}: {gpu.product} {gpu.memory_total_mib} MiB MIG={gpu.mig_mode}"
            f"{' (in use)' if gpu.in_use else ''}"
        )
    for hpu in inventory.gaudi.devices if inventory.gaudi else []:
        typer.echo(f"hpu {hpu.index}: {hpu.model} {hpu.memory_total_mib} MiB")
    for tool in inventory.tools:
        if not tool.present:
            typer.echo(f"not present: {tool.name}: {tool.reason}")
    for note in inventory.notes:
        typer.echo(f"note: {note}")


@app.command()
@exits_on_error()
def detect(
    as_json: bool = typer.Option(False, "--json", help="Print the NodeInventory JSON."),
) -> None:
    """Inventory this machine (CPU, NUMA, ISA, memory, NVIDIA, Gaudi, host tools)."""
    _print(NodeInventory.model_validate(collect()), as_json)


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from exc


@app.command()
@exits_on_error()
def parse(
    nvidia_smi_xml: Path | None = typer.Option(None, help="Output of nvidia-smi -q -x."),
    nvidia_smi_query: Path | None = typer.Option(
        None, help="nvidia-smi --query-gpu CSV, nvidia-smi -q text, or a multi-command capture."
    ),
    hl_smi: Path | None = typer.Option(None, help="Output of hl-smi (the summary table)."),
    cpuinfo: Path | None = typer.Option(None, help="A copy of /proc/cpuinfo."),
    lscpu: Path | None = typer.Option(None, help="Output of lscpu."),
    meminfo: Path | None = typer.Option(None, help="A copy of /proc/meminfo."),
    node_labels: Path | None = typer.Option(
        None, help="Node labels: JSON map, node JSON, or 'kubectl label node --list' text."
    ),
    node: str | None = typer.Option(None, help="Which node of a multi-node label file."),
    as_json: bool = typer.Option(False, "--json", help="Print the NodeInventory JSON."),
) -> None:
    """Merge saved tool outputs into one NodeInventory (richest source first)."""
    fragments: list[Fragment] = []
    try:
        if nvidia_smi_xml:
            fragments.append(
                parse_nvidia_smi_xml(_read(nvidia_smi_xml, "--nvidia-smi-xml"), str(nvidia_smi_xml))
            )
        if nvidia_smi_query:
            text = _read(nvidia_smi_query, "--nvidia-smi-query")
            origin = str(nvidia_smi_query)
            if is_capture(text):
                fragments.append(parse_nvidia_smi_capture(text, origin))
            elif "NVSMI LOG" in text or "Driver Version" in text.split("\n", 8)[-1]:
                fragments.append(parse_nvidia_smi_q(text, origin))
            else:
                fragments.append(parse_query_gpu_csv(text, origin))
        if hl_smi:
            fragments.append(parse_hl_smi(_read(hl_smi, "--hl-smi"), str(hl_smi)))
        if lscpu:
            fragments.append(parse_lscpu(_read(lscpu, "--lscpu"), str(lscpu)))
        if cpuinfo:
            fragments.append(parse_cpuinfo(_read(cpuinfo, "--cpuinfo"), str(cpuinfo)))
        if meminfo:
            fragments.append(parse_meminfo(_read(meminfo, "--meminfo"), str(meminfo)))
        if node_labels:
            sets = read_label_sets(_read(node_labels, "--node-labels"))
            if node is not None and node not in sets:
                raise typer.BadParameter(
                    f"node {node!r} not in {node_labels}; it has {sorted(sets)}",
                    param_hint="--node",
                )
            name = node if node is not None else next(iter(sets))
            fragments.append(parse_node_labels(sets[name], str(node_labels)))
    except (ValueError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not fragments:
        raise typer.BadParameter("give at least one input file, e.g. --lscpu lscpu.txt")
    _print(NodeInventory.model_validate(merge_fragments(*fragments)), as_json)
