"""Default container images per engine build. Users override any entry via PlanRequest.images."""

from __future__ import annotations

VLLM_VERSION = "v0.11.0"

DEFAULT_IMAGES: dict[str, str] = {
    "vllm-cuda": f"vllm/vllm-openai:{VLLM_VERSION}",
    "vllm-cpu": f"public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:{VLLM_VERSION}",
    "vllm-cpu-arm64": f"public.ecr.aws/q9t5s3a7/vllm-arm64-cpu-release-repo:{VLLM_VERSION}",
    # Intel's Gaudi vLLM build ("vllm-installer" images on the Habana vault).
    "vllm-hpu": "vault.habana.ai/gaudi-docker/1.23.0/ubuntu22.04/habanalabs/vllm-installer-2.9.0:latest",
    "llama.cpp": "ghcr.io/ggml-org/llama.cpp:server",
}


def image_for(key: str, overrides: dict[str, str]) -> str:
    return overrides.get(key) or DEFAULT_IMAGES[key]
