"""Cache plumbing: the lock really excludes, the stamp is written last, steps time out."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from budcluster.runtimes import _cache
from budcluster.runtimes._cache import Deadline, build_lock, read_stamp, run_step, write_stamp
from budcluster.runtimes.errors import RuntimeBuildError, RuntimeBuildTimeout
from budcluster.runtimes.vllm_cpu import cached_vllm_cpu, ensure_vllm_cpu, vllm_cpu_dir

HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from budcluster.runtimes._cache import Deadline, build_lock
    with build_lock(Path(sys.argv[1]), Deadline(30, "test")):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def test_lock_excludes_another_process_until_it_releases(tmp_path: Path) -> None:
    lock = tmp_path / "entry" / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock), "1.5"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    with (
        pytest.raises(RuntimeBuildTimeout, match=r"timeout_s=0\.3"),
        build_lock(lock, Deadline(0.3, "waiting")),
    ):
        pytest.fail("acquired a lock another process holds")
    started = time.monotonic()
    with build_lock(lock, Deadline(20, "waiting")):
        waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert waited > 0.3  # it had to wait for the holder to finish


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock), "60"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait(timeout=10)
    with build_lock(lock, Deadline(5, "after kill -9")):
        pass


def test_stamp_round_trip_and_garbage_means_unfinished(tmp_path: Path) -> None:
    assert read_stamp(tmp_path) is None
    write_stamp(tmp_path, {"version": "1"})
    assert read_stamp(tmp_path) == {"version": "1"}
    (tmp_path / _cache.STAMP_NAME).write_text("{trunc")
    assert read_stamp(tmp_path) is None


def test_failed_step_reports_its_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    with pytest.raises(RuntimeBuildError, match="exit code 3") as info:
        run_step(
            [sys.executable, "-c", "print('compiling foo.c'); import sys; sys.exit(3)"],
            log_path=log,
            deadline=Deadline(30, "t"),
        )
    assert "compiling foo.c" in str(info.value)
    assert "compiling foo.c" in log.read_text()


def test_step_over_the_deadline_is_a_temporary_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeBuildTimeout, match="timed out"):
        run_step(
            [sys.executable, "-c", "import time; time.sleep(30)"],
            log_path=tmp_path / "log",
            deadline=Deadline(0.5, "t"),
        )


def test_interrupted_vllm_install_is_redone_not_trusted(tmp_path: Path) -> None:
    """A venv without a stamp (killed mid-install) is not returned; the install reruns."""
    entry = vllm_cpu_dir("0.0.0-test", tmp_path)
    (entry / "venv" / "bin").mkdir(parents=True)
    (entry / "venv" / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")
    assert cached_vllm_cpu("0.0.0-test", tmp_path) is None
    # The install step runs (and fails fast: the fake python exits 1); no stamp appears.
    with pytest.raises(RuntimeBuildError):
        ensure_vllm_cpu("0.0.0-test", tmp_path, timeout_s=60)
    assert read_stamp(entry) is None
    write_stamp(entry, {"version": "0.0.0-test"})
    assert cached_vllm_cpu("0.0.0-test", tmp_path) == entry / "venv" / "bin" / "python"


def test_llama_server_built_for_other_cpu_flags_counts_as_missing(tmp_path: Path) -> None:
    from budcluster.runtimes.llama_server import (
        cached_llama_server,
        cmake_options,
        cpu_key,
        llama_cpp_dir,
    )

    bin_dir = llama_cpp_dir("9.9.9", tmp_path) / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "llama-server").write_text("binary")
    options = list(cmake_options())
    write_stamp(bin_dir, {"version": "9.9.9", "cpu_key": "0" * 16, "cmake_options": options})
    assert cached_llama_server("9.9.9", tmp_path) is None
    write_stamp(bin_dir, {"version": "9.9.9", "cpu_key": cpu_key(), "cmake_options": options})
    assert cached_llama_server("9.9.9", tmp_path) == bin_dir / "llama-server"
    assert cpu_key() == cpu_key() and len(cpu_key()) == 16
