"""Keys as a Kubernetes worker pod sees them: the kubelet's Secret volume is root-owned, on a
read-only mount, mode 0400, or 0440 in the pod's fsGroup. The keyring accepts exactly that
besides the user's own private files; previous keys may sit flat in the directory, as a
Secret (whose keys cannot hold '/') carries them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from budcluster.crypto import Keyring, init_keys, rotate_active_key
from budcluster.crypto.files import key_file_problem
from budcluster.crypto.secret_manifest import keys_secret_manifest, secret_key_names

PROJECT = Path(__file__).resolve().parents[2]
ME = 1000
P = Path("/keys/rsa-private-key.pem")


@pytest.mark.parametrize(
    ("owner", "mode", "read_only"),
    [
        (ME, 0o600, False),  # the user's own private file
        (ME, 0o400, True),
        (0, 0o400, True),  # a Secret volume, no fsGroup (a root container reads it)
        (0, 0o440, True),  # a Secret volume with the pod's fsGroup
    ],
)
def test_accepted(owner: int, mode: int, read_only: bool) -> None:
    assert key_file_problem(P, owner, mode, ME, read_only=read_only) is None


@pytest.mark.parametrize(
    ("owner", "mode", "read_only", "says"),
    [
        (ME, 0o640, False, "has mode 640, so group or others can read"),
        (ME, 0o440, True, "has mode 440, so group or others can read"),
        (0, 0o440, False, "owned by uid 0, not by this user"),  # writable: not a Secret mount
        (0, 0o444, True, "must be mode 0400 (0440 with an fsGroup)"),  # defaultMode left 0644
        (0, 0o460, True, "must be mode 0400"),  # group may write
        (1001, 0o400, True, "owned by uid 1001, not by this user"),  # another user's, even RO
    ],
)
def test_refused(owner: int, mode: int, read_only: bool, says: str) -> None:
    problem = key_file_problem(P, owner, mode, ME, read_only=read_only)
    assert problem is not None and says in problem


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("rotated") / "crypto-keys"
    init_keys(directory)
    rotate_active_key(directory)
    return directory


def _as_secret_volume(keys: Path, volume: Path, *, gid: int, mode: int) -> None:
    """The files the kubelet projects from `keys k8s-secret`'s Secret, under its key names."""
    volume.mkdir(parents=True)
    for key, path in secret_key_names(keys):
        target = volume / key
        shutil.copyfile(path, target)
        os.chown(target, 0, gid)
        target.chmod(mode)
    volume.chmod(0o755)


def test_previous_keys_flat_in_the_directory_load(rotated: Path, tmp_path: Path) -> None:
    original = Keyring.load(rotated)
    volume = tmp_path / "volume"
    _as_secret_volume(rotated, volume, gid=os.getgid(), mode=0o400)
    names = sorted(p.name for p in volume.iterdir())
    assert names[1].startswith("previous-rsa-private-key-") and len(names) == 4
    if os.getuid() == 0:  # the copies are root's: as this user's own files they load
        loaded = Keyring.load(volume)
        assert loaded.key_ids == original.key_ids


def test_the_manifest_holds_every_key_under_a_secret_key_name(rotated: Path) -> None:
    manifest = keys_secret_manifest(rotated, name="budcluster-crypto-keys", namespace="ns")
    keys = sorted(manifest["data"])
    assert keys[:3] == [
        "bindings-required",
        f"previous-{next((rotated / 'previous').iterdir()).name}",
        "rsa-private-key.pem",
    ]
    assert keys[3:] == ["symmetric-key-256"]
    assert all("/" not in key for key in keys)
    assert "workspaces.json" not in keys
    assert manifest["metadata"]["annotations"]["budcluster.io/active-key-id"] == (
        Keyring.load(rotated).active_key_id
    )


def _mount_available() -> bool:
    if os.getuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(["unshare", "-m", "mount", "-t", "tmpfs", "none", "/mnt"],
                           capture_output=True, timeout=30)  # fmt: skip
    return probe.returncode == 0


@pytest.mark.skipif(not _mount_available(), reason="needs root and mount namespaces")
@pytest.mark.parametrize(
    ("gid", "mode", "read_only", "outcome"),
    [
        (2000, 0o440, True, "loaded"),  # fsGroup 2000: the kubelet's 0440, RO mount
        (2000, 0o440, False, "owned by uid 0, not by this user"),
        (0, 0o400, True, "needs `securityContext.fsGroup`"),  # non-root without fsGroup
    ],
)
def test_a_non_root_pod_reads_a_read_only_secret_mount_only_with_its_fs_group(
    rotated: Path,
    request: pytest.FixtureRequest,
    gid: int,
    mode: int,
    read_only: bool,
    outcome: str,
) -> None:
    """A real read-only bind mount in a private mount namespace, read by uid 1000 whose
    supplementary group is the pod's fsGroup (2000)."""
    # pytest's own temporary directories are 0700: uid 1000 could not reach the files.
    shared = Path(tempfile.mkdtemp(prefix="budcluster-mount-", dir="/tmp"))
    shared.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    source, mount = shared / "projected", shared / "mounted"
    _as_secret_volume(rotated, source, gid=gid, mode=mode)
    mount.mkdir()
    load = (
        "import sys\n"
        "from budcluster.crypto import Keyring, CryptoError\n"
        "try:\n"
        f"    print('loaded', Keyring.load(__import__('pathlib').Path({str(mount)!r})).key_ids)\n"
        "except CryptoError as exc:\n"
        "    print(exc)\n"
    )
    remount = f"mount -o remount,ro,bind {mount} && " if read_only else ""
    script = (
        f"mount --bind {source} {mount} && {remount}"
        f'exec setpriv --reuid {ME} --regid {ME} --groups 2000 {sys.executable} -c "$0"'
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, load],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT), "HOME": "/tmp"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert outcome in done.stdout, done.stdout
    if outcome == "loaded":
        assert str(Keyring.load(rotated).key_ids) in done.stdout
