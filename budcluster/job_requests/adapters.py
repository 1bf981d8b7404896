"""Form of a LoRA adapter served beside a deployment's model."""

from __future__ import annotations

from pydantic import Field, field_validator

from budcluster.job_requests._common import ModelSourceRequest, _check_name, _Form

MAX_ADAPTER_NAME = 40
"""An adapter is staged as ``lora-<name>-<12 hex>``, which must stay a 63-character name."""


class LoraAdapterRequest(_Form):
    """A LoRA adapter of the deployment's model, served beside it."""

    name: str = Field(
        description=(
            "Adapter name, e.g. 'support-tone': what a request names to use it (vLLM's model "
            "name) and how the store lists it under the base model."
        )
    )
    uri: str = Field(
        description=(
            "The adapter: a directory on the controller, s3://bucket/prefix or "
            "hf://org/name[@revision]. A GGUF adapter for llama.cpp, a PEFT directory "
            "(adapter_config.json + adapter_model.safetensors) for vLLM."
        )
    )
    registry_block: str | None = Field(
        None, description="Bud S3 Registry block holding the keys for an s3:// URI."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > MAX_ADAPTER_NAME:
            raise ValueError(
                f"adapter name {value!r} is longer than {MAX_ADAPTER_NAME} characters; "
                "give a shorter one"
            )
        return _check_name(value, "adapter name")

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("adapter uri is empty; give a directory, s3://... or hf://...")
        return value.strip()

    def source(self) -> ModelSourceRequest:
        """The adapter as a model source: it is fetched and staged the same way."""
        return ModelSourceRequest(uri=self.uri, registry_block=self.registry_block)
