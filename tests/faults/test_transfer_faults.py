"""Faults during a model transfer: ``kill -9`` while a hosts cluster stages through Ansible
(the host's copy, and separately the controller), and a disk that fills up midway.

Each fault leaves no manifest; the rerun resumes from the ``.part`` files, copies exactly
the bytes that were not there (the transfer's own report says so), and the result verifies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from budcluster.targets.base import ModelSourceSpec, StagedModel
from budcluster.targets.hosts import HostsTarget
from budcluster.targets.hosts.errors import HostsTargetError
from budcluster.transfer import MANIFEST_NAME, LocalDirSource, build_manifest, verify_destination
from budcluster.transfer.console import THROTTLE_ENV
from budcluster.transfer.engine import transfer_model
from budcluster.transfer.errors import DestinationFull
from tests.ansible.helpers import local_inventory
from tests.transfer.model_files import write_model

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20

# One big file that is still copying when the two small ones are done (the workers share
# the throttle), so a kill finds finished files and a long .part.
KILL_MODEL = {
    "config.json": 2_000,
    "model-00001-of-00003.safetensors": 6 * MIB,
    "model-00002-of-00003.safetensors": 1 * MIB,
    "model-00003-of-00003.safetensors": 1 * MIB,
}
FULL_MODEL = {
    "config.json": 2_000,
    "tokenizer.json": 200_000,
    "model-00001-of-00003.safetensors": 3 * MIB,
    "model-00002-of-00003.safetensors": 3 * MIB,
    "model-00003-of-00003.safetensors": 3 * MIB,
}
SMALL_DISK_KIB = 4096  # under half of FULL_MODEL
PART_MIN_BYTES = 256 << 10
PART_MARGIN_BYTES = 1 * MIB


@dataclass(frozen=True)
class OnDisk:
    """What a stopped transfer left: finished files and .part files, by relative path."""

    complete: dict[str, tuple[int, int]]
    """path -> (inode, mtime_ns) of files at their final name and full size."""
    parts: dict[str, int]
    """path (without .part) -> bytes in its .part."""
    sizes: Mapping[str, int]

    @property
    def in_place(self) -> int:
        return sum(self.sizes[rel] for rel in self.complete) + sum(self.parts.values())

    @property
    def missing(self) -> int:
        return sum(self.sizes.values()) - self.in_place


def on_disk(dest: Path, sizes: Mapping[str, int]) -> OnDisk:
    complete = {}
    parts = {}
    for rel, size in sizes.items():
        final, part = dest / rel, dest / f"{rel}.part"
        if final.is_file() and final.stat().st_size == size:
            complete[rel] = (final.stat().st_ino, final.stat().st_mtime_ns)
        elif part.is_file():
            parts[rel] = part.stat().st_size
    return OnDisk(complete, parts, sizes)


def midway(dest: Path, sizes: Mapping[str, int]) -> bool:
    """A model file is finished and a big one is partway, with margin both sides."""
    state = on_disk(dest, sizes)
    finished = [rel for rel in state.complete if sizes[rel] >= PART_MIN_BYTES]
    partway = [
        rel
        for rel, size in state.parts.items()
        if PART_MIN_BYTES <= size <= sizes[rel] - PART_MARGIN_BYTES
    ]
    return bool(finished and partway)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def transfers_into(dest: Path) -> list[int]:
    """Pids of ``python -m budcluster.transfer ... DEST`` processes."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"budcluster.transfer" in argv and str(dest).encode() in argv:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_group_of(pid: int) -> None:
    """``kill -9`` the process group of ``pid``: on a host, the ansible-playbook worker that
    runs the copy command, its module process and the transfer itself."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)


def assert_verified(dest: Path, source: Path, staged_or_report: StagedModel | None) -> None:
    recorded = verify_destination(dest)
    assert recorded == build_manifest(source)
    if staged_or_report is not None:
        assert staged_or_report.files == len(recorded.files)


def make_target(state_dir: Path) -> HostsTarget:
    return HostsTarget(local_inventory(), state_dir=str(state_dir))


def report(name: str, **figures: Any) -> None:
    print(f"\n{name}: " + json.dumps(figures))


# --- kill -9 during hosts staging --------------------------------------------------------


def test_kill9_of_the_hosts_copy_midway_then_the_rerun_copies_only_the_rest(
    tmp_path: Path,
) -> None:
    source = tmp_path / "model"
    write_model(source, KILL_MODEL)
    total = sum(KILL_MODEL.values())
    target = make_target(tmp_path / "state")
    dest = tmp_path / "state" / "models" / "tiny"
    errors: list[BaseException] = []

    def stage() -> None:
        try:
            # About 8 s of copying at 1 MB/s: the kill comes at about 3 s.
            target.stage_model(
                ModelSourceSpec(str(source), {THROTTLE_ENV: "1000000"}), "tiny", ["localhost"]
            )
        except BaseException as exc:  # handed to the test below
            errors.append(exc)

    started = time.monotonic()
    staging = threading.Thread(target=stage)
    staging.start()
    try:
        wait_for(lambda: midway(dest, KILL_MODEL), "the hosts copy to be midway")
        (copier,) = transfers_into(dest)
        kill_group_of(copier)
        staging.join(timeout=120)
        assert not staging.is_alive(), "stage_model did not return after its copy was killed"
    finally:
        for pid in transfers_into(dest):
            kill_group_of(pid)
    first_s = time.monotonic() - started
    assert errors and isinstance(errors[0], HostsTargetError), errors
    cut = on_disk(dest, KILL_MODEL)
    assert cut.complete and cut.parts, cut
    assert not (dest / MANIFEST_NAME).exists(), "an interrupted destination has no manifest"

    started = time.monotonic()
    staged = make_target(tmp_path / "state").stage_model(
        ModelSourceSpec(str(source)), "tiny", ["localhost"]
    )
    rerun_s = time.monotonic() - started
    # The transfer's own report (its JSON, through the playbook): exactly what was missing.
    assert staged.bytes_copied == cut.missing < total
    assert staged.bytes == total
    for rel, identity in cut.complete.items():
        stat = (dest / rel).stat()
        assert (stat.st_ino, stat.st_mtime_ns) == identity, f"{rel} was copied again"
    assert_verified(dest, source, staged)
    report(
        "kill -9 of the host's copy",
        killed_error=str(errors[0])[:200],
        first_run_bytes=cut.in_place,
        rerun_bytes=staged.bytes_copied,
        total_bytes=total,
        first_run_s=round(first_s, 1),
        rerun_s=round(rerun_s, 1),
        rerun_transfer_s=round(staged.seconds, 2),
    )


CONTROLLER = """
import sys
from budcluster.targets.base import ModelSourceSpec
from budcluster.targets.hosts import HostsTarget
from tests.ansible.helpers import local_inventory

source, state_dir, throttle = sys.argv[1:4]
target = HostsTarget(local_inventory(), state_dir=state_dir)
target.stage_model(
    ModelSourceSpec(source, {"THROTTLE_ENV": throttle}), "tiny", ["localhost"]
)
""".replace("THROTTLE_ENV", THROTTLE_ENV)


def _orphans_of(controller_pid: int) -> list[int]:
    """Processes started by the runs of ``controller_pid`` (their private data directory
    is ``<secrets root>/<pid>-<start time>/``)."""
    marker = f"budcluster-secrets-{os.getuid()}/{controller_pid}-".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_kill9_of_the_controller_leaves_a_copy_running_that_a_rerun_never_joins(
    tmp_path: Path,
) -> None:
    source = tmp_path / "model"
    sizes = {**KILL_MODEL, "model-00001-of-00003.safetensors": 16 * MIB}
    write_model(source, sizes)
    total = sum(sizes.values())
    state = tmp_path / "state"
    dest = state / "models" / "tiny"
    controller = subprocess.Popen(
        # 1 MB/s: the big file has over ten seconds to go when the controller dies.
        [sys.executable, "-c", CONTROLLER, str(source), str(state), "1000000"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    leftovers: list[int] = []
    try:
        wait_for(lambda: midway(dest, sizes), "the hosts copy to be midway")
        leftovers = _orphans_of(controller.pid)
        controller.send_signal(signal.SIGKILL)
        assert controller.wait(timeout=10) == -signal.SIGKILL
        # ansible-playbook runs in a session of its own: the host's copy goes on.
        (orphan,) = transfers_into(dest)
        assert alive(orphan)

        # A rerun meanwhile must not write into the same .part files: it is refused, naming
        # the copy that still runs, and that copy is untouched.
        with pytest.raises(HostsTargetError, match=rf"another transfer \(pid {orphan} "):
            make_target(state).stage_model(ModelSourceSpec(str(source)), "tiny", ["localhost"])
        assert alive(orphan), "the left-over copy ended before the rerun could be refused"
        assert not (dest / MANIFEST_NAME).exists()

        # The operator stops it, as the message says; the next rerun resumes.
        kill_group_of(orphan)
        wait_for(lambda: not alive(orphan), "the left-over copy to die", timeout_s=10)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(timeout=10)
        for pid in [*transfers_into(dest), *leftovers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    cut = on_disk(dest, sizes)
    assert cut.parts, cut
    assert not (dest / MANIFEST_NAME).exists(), "an interrupted destination has no manifest"

    started = time.monotonic()
    staged = make_target(state).stage_model(ModelSourceSpec(str(source)), "tiny", ["localhost"])
    rerun_s = time.monotonic() - started
    assert staged.bytes_copied == cut.missing < total
    for rel, identity in cut.complete.items():
        stat = (dest / rel).stat()
        assert (stat.st_ino, stat.st_mtime_ns) == identity, f"{rel} was copied again"
    assert_verified(dest, source, staged)
    report(
        "kill -9 of the controller",
        first_run_bytes=cut.in_place,
        rerun_bytes=staged.bytes_copied,
        total_bytes=total,
        rerun_s=round(rerun_s, 1),
        rerun_transfer_s=round(staged.seconds, 2),
    )


# --- disk full -------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size_kib: int) -> Iterator[Callable[[int], None]]:
    """A tmpfs of ``size_kib`` at ``where``; yields a function that resizes it (KiB)."""
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs for a small disk (needs root or CAP_SYS_ADMIN): "
            f"{mounted.stderr.strip()}"
        )

    def resize(kib: int) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,size={kib}k", str(where)],
            capture_output=True,
            timeout=30,
            check=True,
        )

    try:
        yield resize
    finally:
        done = subprocess.run(["umount", str(where)], capture_output=True, timeout=30, check=False)
        if done.returncode != 0:  # something still has it open: detach it anyway
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def _assert_disk_full_message(message: str, dest: Path, disk: Path, state: OnDisk) -> None:
    assert "Traceback" not in message
    assert f"destination {dest} is full (No space left on device)" in message
    assert f"mounted at {disk}" in message
    total = sum(state.sizes.values())
    assert f"needs {total / MIB:.1f} MiB ({total} bytes)" in message
    assert f"({state.in_place} bytes) of it is in place" in message
    assert f"({state.missing} bytes) more must fit" in message
    assert "rerun" in message


def test_a_full_disk_fails_the_local_transfer_clearly_and_the_rerun_resumes(
    tmp_path: Path,
) -> None:
    source = tmp_path / "model"
    write_model(source, FULL_MODEL)
    total = sum(FULL_MODEL.values())
    disk = tmp_path / "disk"
    dest = disk / "model"
    with small_disk(disk, SMALL_DISK_KIB) as resize:
        started = time.monotonic()
        with pytest.raises(DestinationFull) as failed:
            transfer_model(LocalDirSource(source), dest, workers=2)
        first_s = time.monotonic() - started
        cut = on_disk(dest, FULL_MODEL)
        _assert_disk_full_message(str(failed.value), dest, disk, cut)
        assert cut.parts and cut.in_place > SMALL_DISK_KIB * 1024 // 2, cut
        assert not (dest / MANIFEST_NAME).exists(), "incomplete data has no manifest"

        # The command line says it in one line, exit 2 (retrying without room cannot help).
        command = [sys.executable, "-m", "budcluster.transfer", str(source), str(dest)]
        done = subprocess.run(
            [*command, "--json"], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: destination ") and done.stderr.count("\n") == 1
        error = json.loads(done.stdout)
        assert error["error"] == "DestinationFull" and error["retryable"] is False
        # A resumed append may fill the slack of a .part's last page: measure again.
        cut = on_disk(dest, FULL_MODEL)
        _assert_disk_full_message(error["message"], dest, disk, cut)
        assert not (dest / MANIFEST_NAME).exists()

        resize(4 * SMALL_DISK_KIB)
        started = time.monotonic()
        rerun = subprocess.run(
            [*command, "--json"], capture_output=True, text=True, timeout=60, check=True
        )
        rerun_s = time.monotonic() - started
        result = json.loads(rerun.stdout)
        assert result["bytes_copied"] == cut.missing < total
        assert result["bytes_total"] == total
        assert result["files_skipped"] == len(cut.complete)
        assert_verified(dest, source, None)
        assert result["manifest_sha256"] == build_manifest(source).sha256()
    report(
        "disk full, local engine",
        first_run_bytes=cut.in_place,
        rerun_bytes=result["bytes_copied"],
        total_bytes=total,
        disk_kib=SMALL_DISK_KIB,
        first_run_s=round(first_s, 2),
        rerun_s=round(rerun_s, 2),
        message=str(failed.value),
    )


def test_a_full_disk_fails_hosts_staging_clearly_and_the_rerun_resumes(tmp_path: Path) -> None:
    source = tmp_path / "model"
    write_model(source, FULL_MODEL)
    total = sum(FULL_MODEL.values())
    disk = tmp_path / "disk"
    dest = disk / "models" / "tiny"
    with small_disk(disk, SMALL_DISK_KIB) as resize:
        started = time.monotonic()
        with pytest.raises(HostsTargetError) as failed:
            make_target(disk).stage_model(ModelSourceSpec(str(source)), "tiny", ["localhost"])
        first_s = time.monotonic() - started
        cut = on_disk(dest, FULL_MODEL)
        # The playbook fails with the transfer's own words: exit 2 and the message.
        message = str(failed.value)
        assert "budcluster.transfer exited 2: error: " in message, message
        _assert_disk_full_message(message, dest, disk, cut)
        assert cut.parts, cut
        assert not (dest / MANIFEST_NAME).exists(), "incomplete data has no manifest"

        resize(4 * SMALL_DISK_KIB)
        started = time.monotonic()
        staged = make_target(disk).stage_model(ModelSourceSpec(str(source)), "tiny", ["localhost"])
        rerun_s = time.monotonic() - started
        assert staged.bytes_copied == cut.missing < total
        assert staged.bytes == total
        for rel, identity in cut.complete.items():
            stat = (dest / rel).stat()
            assert (stat.st_ino, stat.st_mtime_ns) == identity, f"{rel} was copied again"
        assert_verified(dest, source, staged)
    report(
        "disk full, hosts staging",
        first_run_bytes=cut.in_place,
        rerun_bytes=staged.bytes_copied,
        total_bytes=total,
        first_run_s=round(first_s, 1),
        rerun_s=round(rerun_s, 1),
        rerun_transfer_s=round(staged.seconds, 2),
        message=message,
    )
