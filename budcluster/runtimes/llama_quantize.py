"""llama.cpp's ``llama-quantize``, built in the kept llama-server build tree, and its runs.

The binary is one more target of ``<cache>/llama.cpp/<version>/build``: the tree that
:func:`~budcluster.runtimes.llama_server.ensure_llama_server` configured is reused as is
(no new configure, so nothing already built is invalidated), ninja compiles the quantize
tool and links it, and the result is copied to ``<entry>/quantize-bin/llama-quantize``
with its own stamp. ``bin/llama-server`` is a copy made by the server's build, so linking
another target never touches the cached server.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budcluster.runtimes._cache import Build, cached_install, read_stamp
from budcluster.runtimes.errors import RuntimeBuildError, RuntimeBuildTimeout
from budcluster.runtimes.llama_server import (
    build_and_install,
    cmake_options,
    cpu_key,
    ensure_llama_server,
    llama_cpp_dir,
)
from budcluster.runtimes.progress import ProgressSink
from budcluster.runtimes.versions import LLAMA_CPP_PYTHON_VERSION

GGUF_QUANT_TYPES = ("Q4_0", "Q4_K_M", "Q5_0", "Q5_K_M", "Q6_K", "Q8_0")
"""The types the quantize flow offers (llama-quantize names; a subset of what it knows)."""

_FALLBACK = re.compile(
    r"warning:\s+(?P<tensor>\S+)\s+- ncols\s+(?P<ncols>\d+) not divisible by\s+(?P<block>\d+)"
    r" \(required for type\s+(?P<wanted>\S+)\).*?-> falling back to\s+(?P<used>\S+)"
)
_CONVERTED = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(?P<tensor>\S+).*?converting to (?P<type>\S+) \.\.")
_SIZES = re.compile(r"(?P<which>model|quant) size\s+=\s+(?P<mib>[\d.]+) MiB")


def _quantize_dir(version: str, cache_dir: Path | None) -> Path:
    return llama_cpp_dir(version, cache_dir) / "quantize-bin"


def cached_llama_quantize(
    version: str = LLAMA_CPP_PYTHON_VERSION, cache_dir: Path | None = None
) -> Path | None:
    """The cached binary if it is complete and built for this CPU, else None. Never builds."""
    bin_dir = _quantize_dir(version, cache_dir)
    binary = bin_dir / "llama-quantize"
    stamp = read_stamp(bin_dir)
    if (
        stamp is None
        or stamp.get("cpu_key") != cpu_key()
        or stamp.get("cmake_options") != list(cmake_options())
        or not binary.exists()
    ):
        return None
    return binary


def ensure_llama_quantize(
    version: str = LLAMA_CPP_PYTHON_VERSION,
    cache_dir: Path | None = None,
    *,
    jobs: int | None = None,
    timeout_s: float = 1800.0,
    progress: ProgressSink | None = None,
) -> Path:
    """Return a ``llama-quantize`` built for this machine, building it once.

    The llama-server build comes first (it configures the tree and builds ggml and
    libllama, which the quantize tool links); then only the quantize tool's own sources
    compile. The stamp's ``build_s`` is the incremental part.
    """
    ensure_llama_server(version, cache_dir, jobs=jobs, timeout_s=timeout_s, progress=progress)
    entry = llama_cpp_dir(version, cache_dir)
    return cached_install(
        entry,
        ready=lambda: cached_llama_quantize(version, cache_dir),
        install=lambda build: _build(entry, version, jobs or os.cpu_count() or 1, build),
        what=f"building llama-quantize from llama-cpp-python {version}",
        name="llama-quantize build",
        timeout_s=timeout_s,
        log_name="build-quantize.log",
        stamp_dir=_quantize_dir(version, cache_dir),
        progress=progress,
    )


def _build(entry: Path, version: str, jobs: int, build: Build) -> tuple[Path, dict[str, Any]]:
    build_dir = entry / "build"
    if not (build_dir / "CMakeCache.txt").exists():
        raise RuntimeBuildError(
            f"{build_dir} has no CMakeCache.txt: the llama-server build tree is missing; "
            "remove the llama.cpp cache entry's bin/stamp.json and rerun"
        )
    started = time.monotonic()
    binary = build_and_install(
        build,
        build_dir,
        "llama-quantize",
        entry / "quantize-bin",
        jobs,
        step="compile and link llama-quantize",
    )
    return binary, {
        "version": version,
        "cpu_key": cpu_key(),
        "cmake_options": list(cmake_options()),
        "jobs": jobs,
        "build_s": round(time.monotonic() - started, 1),
    }


@dataclass(frozen=True)
class TensorFallback:
    """One tensor whose shape did not suit the requested type, and what was used instead."""

    tensor: str
    ncols: int
    block: int
    wanted: str
    used: str


@dataclass(frozen=True)
class QuantizeResult:
    """What one llama-quantize run wrote and did, read from its own log."""

    output: Path
    quant_type: str
    tensor_types: dict[str, str]
    fallbacks: tuple[TensorFallback, ...]
    model_size_mib: float | None
    quant_size_mib: float | None
    duration_s: float

    def type_counts(self) -> dict[str, int]:
        """How many tensors were written as each type (of those llama-quantize converted)."""
        counts: dict[str, int] = {}
        for tensor_type in self.tensor_types.values():
            counts[tensor_type] = counts.get(tensor_type, 0) + 1
        return dict(sorted(counts.items()))


def parse_quantize_log(text: str) -> tuple[dict[str, str], list[TensorFallback], dict[str, float]]:
    """Per-tensor target types, fallbacks and the model/quant sizes from llama-quantize's log."""
    tensor_types: dict[str, str] = {}
    fallbacks: list[TensorFallback] = []
    sizes: dict[str, float] = {}
    for line in text.splitlines():
        converted = _CONVERTED.search(line)
        if converted:
            tensor_types[converted["tensor"]] = converted["type"]
        fallback = _FALLBACK.search(line)
        if fallback:
            fallbacks.append(
                TensorFallback(
                    tensor=fallback["tensor"],
                    ncols=int(fallback["ncols"]),
                    block=int(fallback["block"]),
                    wanted=fallback["wanted"],
                    used=fallback["used"],
                )
            )
        size = _SIZES.search(line)
        if size:
            sizes[size["which"]] = float(size["mib"])
    return tensor_types, fallbacks, sizes


def quantize_gguf(
    source: Path,
    output: Path,
    quant_type: str,
    *,
    binary: Path | None = None,
    threads: int | None = None,
    timeout_s: float = 600.0,
) -> QuantizeResult:
    """Quantize ``source`` to ``output`` as ``quant_type``; the file appears only when complete."""
    if quant_type not in GGUF_QUANT_TYPES:
        raise ValueError(f"quant_type {quant_type!r} is not one of {', '.join(GGUF_QUANT_TYPES)}")
    tool = binary if binary is not None else ensure_llama_quantize()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".partial")
    argv = [str(tool), str(source), str(tmp), quant_type, str(threads or os.cpu_count() or 1)]
    started = time.monotonic()
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        tmp.unlink(missing_ok=True)
        raise RuntimeBuildTimeout(f"llama-quantize ran over timeout_s={timeout_s:g}") from exc
    log = result.stdout + result.stderr
    if result.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        tail = "\n".join(log.splitlines()[-30:])
        raise RuntimeBuildError(f"llama-quantize exited {result.returncode} for {source}:\n{tail}")
    tmp.replace(output)
    tensor_types, fallbacks, sizes = parse_quantize_log(log)
    return QuantizeResult(
        output=output,
        quant_type=quant_type,
        tensor_types=tensor_types,
        fallbacks=tuple(fallbacks),
        model_size_mib=sizes.get("model"),
        quant_size_mib=sizes.get("quant"),
        duration_s=round(time.monotonic() - started, 2),
    )
