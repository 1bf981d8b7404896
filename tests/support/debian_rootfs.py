"""A Debian root filesystem made by ``mmdebstrap`` from Debian's packages, cached per package set.

The image build (the Containerfile's ``BASE``) and the SSH test host (its own root) both need a
Debian userland without a registry for base images. ``mmdebstrap`` makes one from the Debian
mirror this machine already uses for apt, in about 20 s; the tarball is cached under
``~/.cache/budcluster/rootfs/`` keyed by suite, variant and package list, so CI pays once per
machine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("BUDCLUSTER_CACHE", Path.home() / ".cache" / "budcluster")) / "rootfs"
SUITE = "bookworm"
MMDEBSTRAP_TIMEOUT_S = 600


def debian_rootfs_tarball(packages: list[str], *, variant: str = "minbase") -> Path:
    """Return a cached ``rootfs.tar`` of Debian ``SUITE`` with ``packages``; build it if missing.

    Skips the calling test when ``mmdebstrap`` is not installed (``apt-get install mmdebstrap``;
    ``.ci/run`` installs it).
    """
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap is not installed (apt-get install mmdebstrap)")
    key = hashlib.sha256(f"{SUITE}|{variant}|{','.join(sorted(packages))}".encode()).hexdigest()
    tarball = CACHE / f"{SUITE}-{variant}-{key[:16]}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(f".{os.getpid()}.partial.tar")
    argv = ["mmdebstrap", f"--variant={variant}", "--quiet"]
    if packages:
        argv.append("--include=" + ",".join(sorted(packages)))
    argv += [SUITE, str(partial)]
    subprocess.run(argv, check=True, timeout=MMDEBSTRAP_TIMEOUT_S)
    # The rename is atomic, so a parallel worker sees the whole tarball or none.
    partial.replace(tarball)
    return tarball
