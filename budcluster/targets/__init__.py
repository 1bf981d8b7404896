"""Where models run: one small interface that every kind of cluster implements.

The flows talk only to :class:`~budcluster.targets.base.ClusterTarget`. ``hosts``
(servers reached through Ansible) and ``kubernetes`` (through the API) implement it.
"""

from budcluster.targets.base import (
    AccessReport,
    ClusterTarget,
    ModelSourceSpec,
    PodScheduling,
    ProgressCallback,
    RolloutSpec,
    RuntimeFailed,
    RuntimeState,
    RuntimeStatus,
    StagedModel,
    TargetError,
    TransferProgress,
)

__all__ = [
    "AccessReport",
    "ClusterTarget",
    "ModelSourceSpec",
    "PodScheduling",
    "ProgressCallback",
    "RolloutSpec",
    "RuntimeFailed",
    "RuntimeState",
    "RuntimeStatus",
    "StagedModel",
    "TargetError",
    "TransferProgress",
]
