"""Form of quantize-model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from budcluster.job_requests._common import _check_name, _Form


class QuantizeModelRequest(_Form):
    """Quantize a model into a new catalogue version linked to the one it came from."""

    source: str = Field(
        description=(
            "The model on the controller: a .gguf file or a directory holding one (GGUF "
            "types), or an HF safetensors directory (AWQ, GPTQ, FP8)."
        )
    )
    quantization: Literal["Q8_0", "Q4_K_M", "Q4_0", "Q5_K_M", "Q6_K", "AWQ", "GPTQ", "FP8"] = Field(
        "Q4_K_M",
        description=(
            "Q8_0, Q4_K_M, Q4_0, Q5_K_M, Q6_K: llama-quantize on this worker's CPU. "
            "AWQ, GPTQ, FP8: llm-compressor on an NVIDIA GPU node (needs cluster)."
        ),
    )
    output_dir: str | None = Field(
        None,
        description=(
            "Directory of the new version (created). Empty: <data_dir>/quantized/"
            "<model>.<quantization>."
        ),
    )
    cluster: str | None = Field(
        None, description="Registered cluster with NVIDIA GPUs; only for AWQ, GPTQ and FP8."
    )
    threads: int | None = Field(
        None, ge=1, le=1024, description="llama-quantize threads. Empty: all cores."
    )

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not value.strip() or "://" in value:
            raise ValueError(
                f"source {value!r} is not a local path; give a .gguf file or a model directory "
                "on the controller (transfer-model copies remote models there)"
            )
        return value.strip()

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        return _check_name(value, "cluster") if value else None

    @property
    def on_gpu(self) -> bool:
        return self.quantization in {"AWQ", "GPTQ", "FP8"}
