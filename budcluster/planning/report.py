"""A markdown view of a RuntimePlan, for Prefect artifacts and the CLI."""

from __future__ import annotations

import shlex

from budcluster.planning.models import RuntimePlan


def plan_markdown(plan: RuntimePlan) -> str:
    lines = [
        f"# Runtime plan: {plan.served_model_name}",
        "",
        "| | |",
        "|---|---|",
        f"| device | {plan.device_kind} |",
        f"| engine | {plan.engine} |",
        f"| image | `{plan.image}` |",
        f"| tensor parallel | {plan.tensor_parallel_size} |",
        f"| replicas | {plan.replicas} |",
        f"| max model len | {plan.max_model_len} |",
        f"| dtype | {plan.dtype} |",
        "",
        "## Placement",
        "",
    ]
    for number, placement in enumerate(plan.placements):
        where = ", ".join(placement.devices)
        cpus = f", CPUs {placement.cpus}" if placement.cpus else ""
        lines.append(f"- replica {number}: {placement.node_name}: {where}{cpus}")
    lines += ["", "## Memory arithmetic", ""]
    lines += [f"- {line}" for line in plan.memory.lines()]
    lines += ["", "## Decisions", ""]
    lines += [f"- {decision}" for decision in plan.decisions]
    if plan.rejected:
        lines += ["", "## Did not fit", ""] + [f"- {item}" for item in plan.rejected]
    lines += [
        "",
        "## Container",
        "",
        "```",
        shlex.join(plan.args),
        "```",
        "",
        f"env: `{plan.env}`; resources: `{plan.resources}`",
        "",
        "## Host command",
        "",
        "```",
        " ".join(f"{k}={shlex.quote(v)}" for k, v in plan.host_env.items())
        + (" " if plan.host_env else "")
        + shlex.join(plan.host_command),
        "```",
        "",
    ]
    return "\n".join(lines)
