"""Cluster provisioning with Terraform, the pure part: forms, module variables, plan summaries.

Nothing here runs Terraform; :mod:`budcluster.adapters.terraform` does.
"""

from budcluster.provisioning.forms import (
    Approval,
    Cloud,
    CpuNodePool,
    DestroyClusterRequest,
    GpuNodePool,
    NotRegistered,
    ProvisionClusterRequest,
    StateBackend,
)
from budcluster.provisioning.modules import ModuleInputs, module_inputs
from budcluster.provisioning.plan_summary import PlanSummary, ResourceChange, summarize_plan

__all__ = [
    "Approval",
    "Cloud",
    "CpuNodePool",
    "DestroyClusterRequest",
    "GpuNodePool",
    "ModuleInputs",
    "NotRegistered",
    "PlanSummary",
    "ProvisionClusterRequest",
    "ResourceChange",
    "StateBackend",
    "module_inputs",
    "summarize_plan",
]
