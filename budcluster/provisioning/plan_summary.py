"""What a saved Terraform plan would do, from ``terraform show -json``: counts and a table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Terraform's own wording for each list of actions in resource_changes[].change.actions.
_ACTION_NAMES = {
    ("create",): "create",
    ("update",): "update",
    ("delete",): "delete",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("read",): "read",
    ("no-op",): "no-op",
}


@dataclass(frozen=True)
class ResourceChange:
    address: str
    resource_type: str
    action: str
    reason: str | None = None

    def as_row(self) -> dict[str, str]:
        return {
            "action": self.action,
            "address": self.address,
            "type": self.resource_type,
            "reason": self.reason or "",
        }


@dataclass(frozen=True)
class PlanSummary:
    """Counts as Terraform prints them ("Plan: 12 to add, 0 to change, 0 to destroy")."""

    add: int
    change: int
    destroy: int
    changes: list[ResourceChange] = field(default_factory=list)
    terraform_version: str = ""
    outputs_changed: list[str] = field(default_factory=list)
    """Root outputs the plan sets or changes (a module update may change only outputs)."""
    plan_file: str = ""
    """The saved plan this summarizes, in the run's workspace (set by whoever saved it)."""

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.outputs_changed)

    @property
    def replaced(self) -> list[str]:
        return [c.address for c in self.changes if c.action == "replace"]

    @property
    def deleted(self) -> list[str]:
        return [c.address for c in self.changes if c.action in ("delete", "replace")]

    def headline(self) -> str:
        return f"Plan: {self.add} to add, {self.change} to change, {self.destroy} to destroy."

    def as_dict(self) -> dict[str, Any]:
        return {
            "add": self.add,
            "change": self.change,
            "destroy": self.destroy,
            "terraform_version": self.terraform_version,
            "outputs_changed": list(self.outputs_changed),
            "changes": [c.as_row() for c in self.changes],
        }


def summarize_plan(document: Mapping[str, Any]) -> PlanSummary:
    """Summarize a ``terraform show -json <planfile>`` document."""
    add = change = destroy = 0
    changes = []
    for entry in document.get("resource_changes") or []:
        actions = tuple((entry.get("change") or {}).get("actions") or ())
        action = _ACTION_NAMES.get(actions, "+".join(actions) or "unknown")
        if action in ("no-op", "read"):
            continue
        if action == "create":
            add += 1
        elif action == "update":
            change += 1
        elif action == "delete":
            destroy += 1
        elif action == "replace":
            add += 1
            destroy += 1
        changes.append(
            ResourceChange(
                address=str(entry.get("address", "?")),
                resource_type=str(entry.get("type", "?")),
                action=action,
                reason=entry.get("action_reason"),
            )
        )
    outputs_changed = sorted(
        name
        for name, entry in (document.get("output_changes") or {}).items()
        if tuple((entry or {}).get("actions") or ()) not in ((), ("no-op",))
    )
    order = {"delete": 0, "replace": 1, "update": 2, "create": 3}
    changes.sort(key=lambda c: (order.get(c.action, 4), c.address))
    return PlanSummary(
        add=add,
        change=change,
        destroy=destroy,
        changes=changes,
        terraform_version=str(document.get("terraform_version", "")),
        outputs_changed=outputs_changed,
    )


def plan_markdown(cluster: str, summary: PlanSummary, *, destroy: bool) -> str:
    """The plan as a person reads it before approving: the counts and one row per resource."""
    verb = "destroy" if destroy else "provision"
    lines = [f"## Terraform plan to {verb} `{cluster}`", "", f"**{summary.headline()}**", ""]
    if summary.replaced:
        lines += [f"Replaces (destroy, then create): {', '.join(summary.replaced)}", ""]
    if summary.changes:
        lines += ["| action | resource | type |", "|---|---|---|"]
        lines += [f"| {c.action} | `{c.address}` | {c.resource_type} |" for c in summary.changes]
    elif summary.outputs_changed:
        lines.append(f"Only outputs change: {', '.join(summary.outputs_changed)}.")
    else:
        lines.append("No changes: the infrastructure matches the configuration.")
    return "\n".join(lines)
