"""HF safetensors -> GGUF with llama.cpp's own ``convert_hf_to_gguf.py`` (same sdist), and a
PEFT LoRA adapter -> GGUF adapter with its ``convert_lora_to_gguf.py``.

The script needs torch, transformers, sentencepiece and numpy; it runs in a small cached
venv (``<cache>/gguf-convert/<llama-cpp-python version>/venv``, torch CPU from the local
wheel), so the project venv stays free of torch. ``gguf`` comes from the sdist's own
``gguf-py``, which the script puts on its path, so it always matches the converter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from budcluster.runtimes._cache import Build, cached_install, read_stamp, resolve_cache_dir
from budcluster.runtimes.errors import RuntimeBuildError, RuntimeBuildTimeout
from budcluster.runtimes.llama_server import ensure_llama_cpp_sources
from budcluster.runtimes.progress import ProgressSink
from budcluster.runtimes.versions import LLAMA_CPP_PYTHON_VERSION, TORCH_CPU_VERSION

CONVERTER_PACKAGES = (
    f"torch=={TORCH_CPU_VERSION}",
    "numpy>=2.2,<3",
    "sentencepiece>=0.1.98,<0.3",
    "transformers>=4.57,<6",
    "protobuf>=4.21",
    "safetensors>=0.4,<1",
    "tqdm>=4.27",
    "pyyaml>=5.1",
    "requests>=2.25",
)
_SHIM = Path(__file__).with_name("_convert_shim.py")


def ensure_gguf_converter(
    version: str = LLAMA_CPP_PYTHON_VERSION,
    cache_dir: Path | None = None,
    *,
    timeout_s: float = 1200.0,
    base_python: str = sys.executable,
    progress: ProgressSink | None = None,
) -> Path:
    """Return the python of the converter venv, creating it once per machine."""
    entry = resolve_cache_dir(cache_dir) / "gguf-convert" / version
    python = entry / "venv" / "bin" / "python"
    return cached_install(
        entry,
        ready=lambda: python if read_stamp(entry) is not None and python.exists() else None,
        install=lambda build: _install(entry, build, base_python),
        what="installing the GGUF converter venv",
        name="GGUF converter install",
        timeout_s=timeout_s,
        progress=progress,
    )


def _install(entry: Path, build: Build, base_python: str) -> tuple[Path, dict[str, Any]]:
    python = entry / "venv" / "bin" / "python"
    if not python.exists():
        shutil.rmtree(entry / "venv", ignore_errors=True)
        build.run("create the venv", [base_python, "-m", "venv", entry / "venv"])
    build.run(
        "pip install torch (CPU), transformers, sentencepiece",
        [python, "-m", "pip", "--disable-pip-version-check", "--no-input", "install",
         *CONVERTER_PACKAGES],
        env={**os.environ, "PIP_DEFAULT_TIMEOUT": "180"},
    )  # fmt: skip
    build.run(
        "check that the converter's imports load",
        [python, "-c", "import torch, transformers, sentencepiece, numpy"],
    )
    return python, {"packages": list(CONVERTER_PACKAGES), "install_s": build.elapsed_s()}


def convert_hf_to_gguf(
    model_dir: Path,
    outfile: Path,
    *,
    outtype: str = "f16",
    declare_pre_tokenizer: str = "gpt-2",
    version: str = LLAMA_CPP_PYTHON_VERSION,
    cache_dir: Path | None = None,
    timeout_s: float = 600.0,
    progress: ProgressSink | None = None,
) -> Path:
    """Convert an HF Llama directory to ``outfile`` and return it.

    ``declare_pre_tokenizer`` is what the GGUF's ``tokenizer.ggml.pre`` says; the shim
    checks that tokenizer.json really uses GPT-2's byte-level splitting before it does so.
    A first call fetches the sources and installs the converter, telling ``progress``.
    """
    src = ensure_llama_cpp_sources(version, cache_dir, progress=progress)
    python = ensure_gguf_converter(version, cache_dir, progress=progress)
    tmp = outfile.with_name(outfile.name + ".partial")
    cmd = [
        str(python), str(_SHIM),
        "--llama-cpp-src", str(src),
        "--declare-pre", declare_pre_tokenizer,
        str(model_dir), "--",
        "--outfile", str(tmp),
        "--outtype", outtype,
    ]  # fmt: skip
    return _run_converter(cmd, tmp, outfile, "convert_hf_to_gguf.py", model_dir, timeout_s)


def convert_lora_to_gguf(
    adapter_dir: Path,
    base_model_dir: Path,
    outfile: Path,
    *,
    outtype: str = "f32",
    version: str = LLAMA_CPP_PYTHON_VERSION,
    cache_dir: Path | None = None,
    timeout_s: float = 600.0,
    progress: ProgressSink | None = None,
) -> Path:
    """Convert a PEFT LoRA directory to a GGUF adapter ``outfile`` and return it.

    ``base_model_dir`` is the base model's HF directory: the script reads its config.json
    to map the adapter's tensor names (never the hub: the run is offline). An adapter has
    no vocabulary, so the pre-tokenizer shim that model conversion needs is not used.
    """
    src = ensure_llama_cpp_sources(version, cache_dir, progress=progress)
    python = ensure_gguf_converter(version, cache_dir, progress=progress)
    tmp = outfile.with_name(outfile.name + ".partial")
    cmd = [
        str(python), str(src / "convert_lora_to_gguf.py"),
        "--base", str(base_model_dir),
        "--outfile", str(tmp),
        "--outtype", outtype,
        str(adapter_dir),
    ]  # fmt: skip
    return _run_converter(cmd, tmp, outfile, "convert_lora_to_gguf.py", adapter_dir, timeout_s)


def _run_converter(
    cmd: list[str], tmp: Path, outfile: Path, script: str, source: Path, timeout_s: float
) -> Path:
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, check=False,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        tmp.unlink(missing_ok=True)
        raise RuntimeBuildTimeout(f"{script} ran over {timeout_s:g} s") from exc
    if result.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise RuntimeBuildError(f"{script} failed (exit {result.returncode}) for {source}:\n{tail}")
    tmp.replace(outfile)
    return outfile
