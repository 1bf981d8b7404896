"""llama.cpp's ``llama-server``, built from the ``llama-cpp-python`` sdist and cached.

Layout of one cache entry, ``<cache>/llama.cpp/<version>/``::

    sdist/llama_cpp_python-<version>.tar.gz   what ``pip download`` fetched
    src/                                      the sdist's vendor/llama.cpp (stamped)
    build/                                    cmake + ninja tree, kept so a rerun is incremental
    bin/llama-server                          the binary (stamped)

The build uses ``GGML_NATIVE=ON`` (the fastest code for this CPU); the stamp records a
fingerprint of the CPU's feature flags, and an entry built on a CPU with other flags is
rebuilt rather than run (it could die with an illegal instruction). Nothing downloads at
build time: the web UI, curl and OpenSSL are switched off.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from budcluster.runtimes._cache import (
    Build,
    cached_install,
    read_stamp,
    resolve_cache_dir,
    write_stamp,
)
from budcluster.runtimes.errors import RuntimeBuildError
from budcluster.runtimes.progress import ProgressSink
from budcluster.runtimes.versions import LLAMA_CPP_PYTHON_VERSION

CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)
"""Configure flags; the first five keep the build offline, NATIVE is keyed by :func:`cpu_key`."""

X86_NO_AMX_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
"""Compiler flags that keep ggml's AMX kernels out of an x86 build.

Some VMs list ``amx_tile``/``amx_int8`` in /proc/cpuinfo and grant the tile-data
permission, yet fault on the first tile instruction: seen here, llama-server died with
SIGILL (``tilezero`` in ggml's q8_0 AMX kernel) loading a Q4_K_M model. GGML_NATIVE would
compile those kernels in for such a CPU, and the failure only shows once a quantized model
runs. GCC lets an explicit ``-mno-*`` win over what ``-march=native`` implies, and ggml
then serves the same types with its AVX-512/AVX2 kernels.
"""


def cmake_options() -> tuple[str, ...]:
    """The configure flags for this machine: :data:`CMAKE_OPTIONS`, and on x86 no AMX."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        return (
            *CMAKE_OPTIONS,
            f"-DCMAKE_C_FLAGS={X86_NO_AMX_FLAGS}",
            f"-DCMAKE_CXX_FLAGS={X86_NO_AMX_FLAGS}",
        )
    return CMAKE_OPTIONS


LLAMA_SERVER_STARTUP_BUDGET_S = 60.0
"""How long a caller should wait for ``/health`` (under a second for the demo model here)."""


def llama_cpp_dir(version: str = LLAMA_CPP_PYTHON_VERSION, cache_dir: Path | None = None) -> Path:
    """The cache entry for one ``llama-cpp-python`` version (it may not be built yet)."""
    return resolve_cache_dir(cache_dir) / "llama.cpp" / version


def cpu_key() -> str:
    """A short fingerprint of this CPU's instruction-set flags (what GGML_NATIVE compiles for)."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
                break
    except OSError:
        pass
    basis = f"{platform.machine()}|{flags}"
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def cached_llama_server(
    version: str = LLAMA_CPP_PYTHON_VERSION, cache_dir: Path | None = None
) -> Path | None:
    """The cached binary if it is complete and built for this CPU, else None. Never builds."""
    entry = llama_cpp_dir(version, cache_dir)
    binary = entry / "bin" / "llama-server"
    stamp = read_stamp(entry / "bin")
    if (
        stamp is None
        or stamp.get("cpu_key") != cpu_key()
        or stamp.get("cmake_options") != list(cmake_options())
        or not binary.exists()
    ):
        return None
    return binary


def ensure_llama_cpp_sources(
    version: str = LLAMA_CPP_PYTHON_VERSION,
    cache_dir: Path | None = None,
    *,
    timeout_s: float = 600.0,
    progress: ProgressSink | None = None,
) -> Path:
    """Return ``<entry>/src`` (the sdist's ``vendor/llama.cpp``), fetching it if needed."""
    entry = llama_cpp_dir(version, cache_dir)
    src = entry / "src"
    return cached_install(
        entry,
        ready=lambda: src if read_stamp(src) is not None else None,
        install=lambda build: _fetch_sources(entry, version, build),
        what=f"fetching llama-cpp-python {version} sources",
        name="llama.cpp sources",
        timeout_s=timeout_s,
        log_name="fetch.log",
        stamp_dir=src,
        progress=progress,
    )


def convert_hf_to_gguf_script(
    version: str = LLAMA_CPP_PYTHON_VERSION,
    cache_dir: Path | None = None,
    *,
    timeout_s: float = 600.0,
) -> Path:
    """Path of the sdist's ``convert_hf_to_gguf.py`` (its ``gguf-py`` sits beside it)."""
    return (
        ensure_llama_cpp_sources(version, cache_dir, timeout_s=timeout_s) / "convert_hf_to_gguf.py"
    )


def ensure_llama_server(
    version: str = LLAMA_CPP_PYTHON_VERSION,
    cache_dir: Path | None = None,
    *,
    jobs: int | None = None,
    timeout_s: float = 1800.0,
    progress: ProgressSink | None = None,
) -> Path:
    """Return the path of a ``llama-server`` built for this machine, building it once.

    About 5 minutes on 2 cores the first time, told as progress lines (steps, cmake's
    progress, elapsed time) on stderr or to ``progress``; afterwards it returns at once.
    Several processes may call it together: one builds under a file lock, the others wait.
    """
    entry = llama_cpp_dir(version, cache_dir)
    return cached_install(
        entry,
        ready=lambda: cached_llama_server(version, cache_dir),
        install=lambda build: _build(entry, version, jobs or os.cpu_count() or 1, build),
        what=f"building llama-server from llama-cpp-python {version}",
        name="llama-server build",
        timeout_s=timeout_s,
        log_name="build.log",
        stamp_dir=entry / "bin",
        progress=progress,
    )


def _sources_locked(entry: Path, version: str, build: Build) -> Path:
    """The sources inside another build of the same entry (its lock already held)."""
    src = entry / "src"
    if read_stamp(src) is None:
        _, stamp = _fetch_sources(entry, version, build.logging_to(entry / "fetch.log"))
        write_stamp(src, stamp)
    return src


def _fetch_sources(entry: Path, version: str, build: Build) -> tuple[Path, dict[str, Any]]:
    src = entry / "src"
    sdist_dir = entry / "sdist"
    sdist = sdist_dir / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.exists():
        sdist_dir.mkdir(parents=True, exist_ok=True)
        build.run(
            "download the llama-cpp-python sdist",
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-input",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                sdist_dir,
                f"llama-cpp-python=={version}",
            ],
            env={**os.environ, "PIP_DEFAULT_TIMEOUT": "180"},
        )
        if not sdist.exists():
            raise RuntimeBuildError(f"pip download did not produce {sdist}; see {build.log_path}")
    build.progress.step("extract vendor/llama.cpp")
    shutil.rmtree(src, ignore_errors=True)
    _extract_vendor_tree(sdist, f"llama_cpp_python-{version}/vendor/llama.cpp/", src)
    return src, {"version": version, "sdist": sdist.name}


def _extract_vendor_tree(sdist: Path, prefix: str, dest: Path) -> None:
    """Extract the members under ``prefix`` into ``dest``, stripping the prefix."""
    dest.mkdir(parents=True)
    with tarfile.open(sdist, "r:gz") as archive:
        members = []
        for member in archive.getmembers():
            if not member.name.startswith(prefix) or member.name == prefix.rstrip("/"):
                continue
            member.name = member.name[len(prefix) :]
            members.append(member)
        if not members:
            raise RuntimeBuildError(f"{sdist} has no {prefix}: is it a llama-cpp-python sdist?")
        # The "data" filter refuses absolute paths, "..", and links that escape dest.
        archive.extractall(dest, members=members, filter="data")


def _build(entry: Path, version: str, jobs: int, build: Build) -> tuple[Path, dict[str, Any]]:
    src = _sources_locked(entry, version, build)
    build_dir = entry / "build"
    started = time.monotonic()  # build_s counts the build, not the sources' download
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    build.run(
        "configure (cmake)", ["cmake", "-S", src, "-B", build_dir, *generator, *cmake_options()]
    )
    binary = build_and_install(
        build, build_dir, "llama-server", entry / "bin", jobs, step="compile and link"
    )
    version_line = _binary_version(binary)
    return binary, {
        "version": version,
        "cpu_key": cpu_key(),
        "cmake_options": list(cmake_options()),
        "jobs": jobs,
        "build_s": round(time.monotonic() - started, 1),
        "binary_version": version_line,
    }


def build_and_install(
    build: Build, build_dir: Path, target: str, bin_dir: Path, jobs: int, *, step: str
) -> Path:
    """Build one CMake target of the configured tree and copy its binary into ``bin_dir``.

    The copy goes through a temporary name and a rename, so a reader never runs a
    half-written binary.
    """
    build.run(
        f"{step} ({jobs} jobs)",
        ["cmake", "--build", build_dir, "--target", target, "--parallel", str(jobs)],
    )
    built = build_dir / "bin" / target
    if not built.exists():
        raise RuntimeBuildError(f"the build finished but {built} is missing; see {build.log_path}")
    build.progress.step("install the binary")
    bin_dir.mkdir(parents=True, exist_ok=True)
    binary = bin_dir / target
    tmp = bin_dir / f".{target}.tmp"
    shutil.copy2(built, tmp)
    tmp.replace(binary)
    return binary


def _binary_version(binary: Path) -> str:
    """``llama-server --version`` proves the binary runs on this CPU before we stamp it."""
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeBuildError(f"the built {binary} does not run: {exc}") from exc
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise RuntimeBuildError(f"{binary} --version exited {result.returncode}: {output[-2000:]}")
    return next((line for line in output.splitlines() if "version" in line), output[:200])
