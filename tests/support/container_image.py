"""Build the project's Containerfile for real with buildah, and run commands in the image.

No registry for base images is reachable here, so ``BASE`` is a Debian bookworm root
filesystem made by ``mmdebstrap`` (:mod:`tests.support.debian_rootfs`) with ``python3`` and
``python3-venv`` (the Debian and Python release of the default ``python:3.11-slim-bookworm``)
and imported with ``podman import``. Everything lives in a storage of its own under
``~/.cache/budcluster/containers/<driver>`` (``--root``/``--runroot``), so the tests neither
see nor change the machine's containers.

Caches, so a run after the first stays short:

- the wheelhouse: every dependency wheel, built once by pip INSIDE the base (its Python
  decides the markers: Debian's 3.11.2 needs wheels the host's 3.11.7 does not), keyed by
  ``pyproject.toml`` and the base, under ``~/.cache/budcluster/wheelhouse/<key>``; the build
  installs from it with ``--no-index`` (the Containerfile's ``WHEELHOUSE`` argument);
- buildah's layer cache (``--layers``): the ``deps`` stage is keyed by ``pyproject.toml``, so a
  code change rebuilds only the last layers. Superseded images are pruned after each build.

The storage driver is overlay where the kernel has it and we are root (layers are diffs),
else vfs (every layer a full copy: slower and bigger, but works anywhere).
``BUDCLUSTER_TEST_STORAGE_DRIVER`` forces one.

RUN steps and ``buildah run`` use ``--isolation chroot``: the OCI runtime isolation does not
work in this machine's container. A chroot shares the host's network, so a command in the
image reaches servers the test starts on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.debian_rootfs import debian_rootfs_tarball

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("BUDCLUSTER_CACHE", Path.home() / ".cache" / "budcluster"))
BASE_PACKAGES = ["python3", "python3-venv"]
IMAGE = "localhost/bud-serve-cluster:test"
DEPS_IMAGE = "localhost/bud-serve-cluster-deps:test"
IMAGE_UID = 10001
BUILD_TIMEOUT_S = 1800
WHEELHOUSE_TIMEOUT_S = 1200
RUN_TIMEOUT_S = 300
# The system trust store: pip inside the base (which has no ca-certificates) verifies PyPI
# with it, which also covers a TLS-inspecting proxy the machine trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
APT_LINE = "apt-get install -y buildah podman mmdebstrap"


def require_container_tools() -> None:
    """Skip (naming the apt line) when the tools this build needs are not installed."""
    missing = [tool for tool in ("buildah", "podman", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: the image tests need `{APT_LINE}`")


def storage_driver() -> str:
    forced = os.environ.get("BUDCLUSTER_TEST_STORAGE_DRIVER")
    if forced:
        return forced
    try:
        has_overlay = "\toverlay\n" in Path("/proc/filesystems").read_text()
    except OSError:
        has_overlay = False
    return "overlay" if has_overlay and os.geteuid() == 0 else "vfs"


@dataclass(frozen=True)
class Storage:
    """One containers-storage of the tests' own (``--root``, ``--runroot``, driver)."""

    root: Path
    runroot: Path
    driver: str

    @classmethod
    def default(cls) -> Storage:
        driver = storage_driver()
        base = CACHE / "containers" / driver
        return cls(base / "storage", base / "run", driver)

    def flags(self) -> list[str]:
        return [
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            self.driver,
        ]

    def buildah(self, *args: str, timeout_s: float = RUN_TIMEOUT_S, check: bool = True) -> str:
        done = subprocess.run(
            ["buildah", *self.flags(), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"buildah {' '.join(args[:3])} ... exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done.stdout

    def conf(self, path: Path) -> Path:
        """A containers-storage.conf naming this storage, for tools run without our flags
        (``CONTAINERS_STORAGE_CONF``)."""
        path.write_text(
            "[storage]\n"
            f'driver = "{self.driver}"\n'
            f'graphroot = "{self.root}"\n'
            f'runroot = "{self.runroot}"\n'
        )
        return path

    def image_id(self, name: str) -> str:
        return self.buildah(
            "inspect", "--type", "image", "--format", "{{.FromImageID}}", name
        ).strip()

    def has_image(self, name: str) -> bool:
        done = subprocess.run(
            ["buildah", *self.flags(), "inspect", "--type", "image", name],
            capture_output=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        return done.returncode == 0


def base_image(storage: Storage) -> str:
    """The Debian base as an image in ``storage`` (imported from the cached rootfs tarball)."""
    tarball = debian_rootfs_tarball(BASE_PACKAGES)
    name = f"localhost/budcluster-test-base:{tarball.stem.rsplit('-', 1)[-1]}"
    if not storage.has_image(name):
        subprocess.run(
            ["podman", *storage.flags(), "import", "--quiet", str(tarball), name],
            check=True,
            capture_output=True,
            timeout=RUN_TIMEOUT_S,
        )
    return name


def _pip_env_flags() -> list[str]:
    flags: list[str] = []
    if HOST_CA_BUNDLE.is_file():
        flags += [
            "--volume",
            f"{HOST_CA_BUNDLE}:/run/host-ca.crt:ro",
            "--env",
            "PIP_CERT=/run/host-ca.crt",
        ]
    pip_cache = Path.home() / ".cache" / "pip"
    if pip_cache.is_dir():
        flags += ["--volume", f"{pip_cache}:/root/.cache/pip"]
    return flags


def wheelhouse(storage: Storage, base: str) -> Path:
    """Every dependency wheel for ``base``'s Python, built once per pyproject and base."""
    pyproject = (REPO_ROOT / "pyproject.toml").read_bytes()
    key = hashlib.sha256(pyproject + base.encode()).hexdigest()[:16]
    house = CACHE / "wheelhouse" / key
    if (house / ".complete").exists():
        return house
    partial = house.with_name(f"{key}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    project = partial / "project"
    project.mkdir(parents=True)
    # Only what pip needs to resolve the dependencies; the project's own wheel is dropped.
    shutil.copy(REPO_ROOT / "pyproject.toml", project)
    shutil.copy(REPO_ROOT / "README.md", project)
    (partial / "wheels").mkdir()
    container = storage.buildah("from", "--quiet", base).strip()
    try:
        storage.buildah(
            "run",
            "--isolation",
            "chroot",
            *_pip_env_flags(),
            "--volume",
            f"{partial / 'wheels'}:/wheels",
            "--volume",
            f"{project}:/project",
            container,
            "--",
            "sh",
            "-c",
            "python3 -m venv /tmp/venv && /tmp/venv/bin/pip wheel --quiet"
            " --disable-pip-version-check --wheel-dir /wheels"
            " '/project[nvidia,fast]' 'setuptools>=77' wheel",
            timeout_s=WHEELHOUSE_TIMEOUT_S,
        )
    finally:
        storage.buildah("rm", container, check=False)
    for own in (partial / "wheels").glob("bud_serve_cluster-*.whl"):
        own.unlink()
    (partial / "wheels" / ".complete").touch()
    shutil.rmtree(house, ignore_errors=True)
    (partial / "wheels").replace(house)
    shutil.rmtree(partial, ignore_errors=True)
    return house


@dataclass(frozen=True)
class BuiltImage:
    storage: Storage
    name: str
    build_s: float
    log: str
    base: str
    wheelhouse: Path


def build_image(storage: Storage, name: str = IMAGE) -> BuiltImage:
    """``buildah bud`` the repository's Containerfile into ``name``, with the caches above."""
    base = base_image(storage)
    house = wheelhouse(storage, base)
    started = time.monotonic()
    common = ["bud", *build_args(base, house), "--file", str(REPO_ROOT / "Containerfile")]
    # The deps stage gets a tag of its own: the final stage starts from BASE, so without it
    # the prune below would take the deps layers (no tagged image descends from them) and
    # every build would reinstall every dependency.
    log = storage.buildah(
        *common, "--target", "deps", "--tag", DEPS_IMAGE, str(REPO_ROOT), timeout_s=BUILD_TIMEOUT_S
    )
    log += storage.buildah(*common, "--tag", name, str(REPO_ROOT), timeout_s=BUILD_TIMEOUT_S)
    elapsed = time.monotonic() - started
    # Images superseded by this build (an older tag's chain) are dangling now; the layers of
    # the current chains are their tagged images' parents and stay, so the cache survives.
    storage.buildah("rmi", "--prune", check=False)
    return BuiltImage(storage, name, elapsed, log, base, house)


def build_args(base: str, house: Path) -> list[str]:
    """The options of the tests' builds, after ``buildah bud`` (the file and tag apart)."""
    return [
        "--layers",
        "--isolation",
        "chroot",
        "--build-arg",
        f"BASE={base}",
        "--build-arg",
        "WHEELHOUSE=/wheels",
        "--volume",
        f"{house}:/wheels:ro",
    ]


@dataclass(frozen=True)
class ImageContainer:
    """A working container of the image; each :meth:`run` is a fresh process in it."""

    storage: Storage
    container: str

    def argv(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        volumes: Mapping[Path, str] | None = None,
        user: str | None = None,
    ) -> list[str]:
        argv = ["buildah", *self.storage.flags(), "run", "--isolation", "chroot"]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        for host, target in (volumes or {}).items():
            argv += ["--volume", f"{host}:{target}"]
        if user is not None:
            argv += ["--user", user]
        return [*argv, self.container, "--", *command]

    def run(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        volumes: Mapping[Path, str] | None = None,
        user: str | None = None,
        timeout_s: float = RUN_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, env=env, volumes=volumes, user=user),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


@contextmanager
def image_container(image: BuiltImage) -> Iterator[ImageContainer]:
    container = image.storage.buildah("from", "--quiet", image.name).strip()
    try:
        yield ImageContainer(image.storage, container)
    finally:
        image.storage.buildah("rm", container, check=False)
