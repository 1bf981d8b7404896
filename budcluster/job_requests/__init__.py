"""What each job (flow) is asked to do: the parameter forms of the flows.

These are pydantic models so the Prefect UI renders real forms (descriptions, enums,
defaults) and bad input is rejected before any work starts, naming the field.
"""

from budcluster.job_requests._common import (
    REPLICAS_DESCRIPTION,
    ClusterKindChoice,
    DeviceChoice,
    EngineChoice,
    ModelSourceRequest,
    Replicas,
)
from budcluster.job_requests.adapters import MAX_ADAPTER_NAME, LoraAdapterRequest
from budcluster.job_requests.autoscaling import AutoscalingRequest, check_autoscaled_replicas
from budcluster.job_requests.benchmark import BenchmarkEndpointRequest, BenchmarkProfile
from budcluster.job_requests.clusters import DeregisterClusterRequest, RegisterClusterRequest
from budcluster.job_requests.deploy import (
    DeployModelRequest,
    TeardownRequest,
    TransferModelRequest,
)
from budcluster.job_requests.gateway import PublishGatewayRequest
from budcluster.job_requests.quantize import QuantizeModelRequest

__all__ = [
    "MAX_ADAPTER_NAME",
    "REPLICAS_DESCRIPTION",
    "AutoscalingRequest",
    "BenchmarkEndpointRequest",
    "BenchmarkProfile",
    "ClusterKindChoice",
    "DeployModelRequest",
    "DeregisterClusterRequest",
    "DeviceChoice",
    "EngineChoice",
    "LoraAdapterRequest",
    "ModelSourceRequest",
    "PublishGatewayRequest",
    "QuantizeModelRequest",
    "RegisterClusterRequest",
    "Replicas",
    "TeardownRequest",
    "TransferModelRequest",
    "check_autoscaled_replicas",
]
