"""What every form shares: the name rule, the replica count, the choices and the base form."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from budcluster.planning.limits import MAX_REPLICAS

# Deployment and cluster names become host directory names, unit names, Kubernetes
# object names and label values, so they follow the strictest of those: DNS-1123 labels.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-63 lowercase letters, digits or '-', starting and "
            "ending with a letter or digit (e.g. 'qwen-cpu-1')"
        )
    return value


def _replicas(value: object) -> object:
    # Checked before pydantic's int|"auto" union so the error says what to write instead
    # of listing both union branches; digits in a string (a CLI --param) are accepted.
    if value == "auto":
        return value
    count = int(value.strip()) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_REPLICAS:
        return count
    raise ValueError(
        f"replicas {value!r} is not a replica count: give a positive integer (1, 2, ...) or "
        f"'auto' (as many replicas as the free devices allow), at most {MAX_REPLICAS}"
    )


Replicas = Annotated[
    Annotated[int, Field(ge=1, le=MAX_REPLICAS)] | Literal["auto"], BeforeValidator(_replicas)
]
"""How many copies of the runtime to run: a positive integer or "auto"."""

REPLICAS_DESCRIPTION = (
    "Copies of the runtime, each on its own devices of one node (a TP-2 model takes 2 GPUs "
    "per replica). auto: as many replicas as the chosen node's free devices allow (1 on CPU)."
)


class ClusterKindChoice(StrEnum):
    HOSTS = "hosts"
    KUBERNETES = "kubernetes"


class DeviceChoice(StrEnum):
    AUTO = "auto"
    CUDA = "cuda"
    HPU = "hpu"
    CPU = "cpu"


class EngineChoice(StrEnum):
    AUTO = "auto"
    VLLM = "vllm"
    LLAMA_CPP = "llama.cpp"


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class ModelSourceRequest(_Form):
    uri: str = Field(
        description=(
            "The model: a directory on the controller (/models/x), s3://bucket/prefix, or "
            "hf://org/name[@revision] from the local Hugging Face cache."
        )
    )
    registry_block: str | None = Field(
        None, description="Bud S3 Registry block holding the keys for an s3:// URI."
    )

    @property
    def model_name(self) -> str:
        """The model's name: the last part of the URI, without an @revision."""
        tail = self.uri.rstrip("/").rsplit("/", 1)[-1]
        return tail.split("@", 1)[0] or "model"

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "model uri is empty; give a directory, s3://bucket/prefix or hf://org/name"
            )
        return value.strip()
