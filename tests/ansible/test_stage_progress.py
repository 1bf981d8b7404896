"""Staging on hosts reports progress while the hosts copy, read from their progress files,
and once more at the end; a failed read never fails the transfer."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from budcluster.targets.base import ModelSourceSpec, TransferProgress
from budcluster.targets.hosts import HostsTarget, HostsTimeouts
from budcluster.targets.hosts.results import host_progress, sum_progress
from budcluster.transfer.console import PROGRESS_NAME, THROTTLE_ENV


def _model(root: Path, files: int, size: int) -> None:
    root.mkdir()
    for index in range(files):
        (root / f"part-{index}.bin").write_bytes(os.urandom(size))


def test_stage_model_reports_progress_while_the_hosts_copy(
    target: HostsTarget, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    _model(source, files=4, size=1_500_000)
    target.timeouts = HostsTimeouts(progress_poll_s=1.0)
    spec = ModelSourceSpec(str(source), {THROTTLE_ENV: "600000"})  # about ten seconds
    heard: list[tuple[float, TransferProgress]] = []
    started = time.monotonic()
    staged = target.stage_model(
        spec, "tiny", ["localhost"], progress=lambda p: heard.append((time.monotonic(), p))
    )
    took = time.monotonic() - started
    *during, (_, final) = heard
    assert final == TransferProgress(4, 4, 6_000_000, 6_000_000, staged.seconds)
    midway = [p for _, p in during if 0 < p.bytes_done < p.bytes_total]
    assert midway, heard
    assert all(p.bytes_total == 6_000_000 and p.files_total == 4 for _, p in during)
    done = [p.bytes_done for _, p in during]
    assert done == sorted(done)
    assert not (Path(staged.path) / PROGRESS_NAME).exists()
    print(
        f"\n{len(midway)} intermediate reports of {len(heard)} over {took:.1f} s "
        f"(transfer {staged.seconds:.1f} s): "
        + ", ".join(f"{t - started:.1f}s {p.fraction:.0%}" for t, p in heard)
    )


def test_a_failed_progress_read_is_skipped(
    target: HostsTarget,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = tmp_path / "src"
    _model(source, files=2, size=600_000)
    target.timeouts = HostsTimeouts(progress_poll_s=0.5)
    # Every read fails: its playbook is not there.
    monkeypatch.setattr("budcluster.targets.hosts.target._PROGRESS_PLAYBOOK", "missing.yml")
    heard: list[TransferProgress] = []
    with caplog.at_level(logging.DEBUG, logger="budcluster.targets.hosts.target"):
        staged = target.stage_model(
            ModelSourceSpec(str(source), {THROTTLE_ENV: "400000"}),
            "tiny",
            ["localhost"],
            progress=heard.append,
        )
    assert staged.files == 2
    assert heard == [TransferProgress(2, 2, 1_200_000, 1_200_000, staged.seconds)]
    assert "reading transfer progress failed" in caplog.text


def _transfers_into(dest: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"budcluster.transfer" in argv and str(dest).encode() in argv:
            found.append(int(entry.name))
    return found


def test_a_failing_progress_callback_cancels_the_staging_run(
    target: HostsTarget, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    _model(source, files=2, size=2_000_000)
    target.timeouts = HostsTimeouts(progress_poll_s=1.0)
    dest = Path(target.state_dir).resolve() / "models" / "tiny"

    def refuse(progress: TransferProgress) -> None:
        raise RuntimeError(f"the caller gave up at {progress.fraction:.0%}")

    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="the caller gave up"):
            target.stage_model(
                # Sixty seconds of copying: the first report (each read is an
                # ansible-playbook run, several seconds on a loaded machine) comes well before.
                ModelSourceSpec(str(source), {THROTTLE_ENV: "66000"}),
                "tiny",
                ["localhost"],
                progress=refuse,
            )
        # The playbook run was stopped, not waited for.
        assert time.monotonic() - started < 40
    finally:
        # Stopping ansible-playbook does not stop the command it started on the host
        # (it runs in a session of its own), as with a timeout; end it here.
        for pid in _transfers_into(dest):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _slurped(body: object) -> dict[str, object]:
    return {"content": base64.b64encode(json.dumps(body).encode()).decode(), "encoding": "base64"}


def test_host_progress_reads_the_file_and_refuses_anything_else() -> None:
    body = {"files_total": 4, "files_done": 1, "bytes_total": 100, "bytes_done": 30, "seconds": 2}
    assert host_progress(_slurped(body)) == TransferProgress(4, 1, 100, 30, 2.0)
    assert host_progress({"msg": "file not found", "failed": False}) is None
    assert host_progress(None) is None
    assert host_progress({"content": "not base64!"}) is None
    assert host_progress(_slurped([1, 2])) is None
    assert host_progress(_slurped({**body, "bytes_done": -1})) is None
    assert host_progress(_slurped({**body, "files_done": "1"})) is None


def test_sum_progress_counts_hosts_not_yet_heard_from_as_not_started() -> None:
    assert sum_progress({}, 2, 1.0) is None
    one = TransferProgress(4, 2, 100, 50, 3.0)
    assert sum_progress({"a": one}, 2, 5.0) == TransferProgress(8, 2, 200, 50, 5.0)
    both = sum_progress({"a": one, "b": TransferProgress(4, 4, 100, 100, 4.0)}, 2, 6.0)
    assert both == TransferProgress(8, 6, 200, 150, 6.0)
