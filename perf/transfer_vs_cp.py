"""Copy a multi-GB model directory with ``cp -r`` and with ``transfer_model``, same disk,
same run, alternating order, cold and warm page cache, and print every run, the medians,
the ratio, the CPU seconds per GB of each, and the machine's load during each run.

The transfer is measured WITH verification: the source carries a manifest made by
``build_manifest`` beforehand (not timed), and every copied byte is hashed and checked
against it. Both copies are timed twice: until the copy returns (the data is in the page
cache) and until a following ``sync`` returns (the data is on disk).

Cold runs drop the page cache before each copy (needs a writable
``/proc/sys/vm/drop_caches``, i.e. root; the script says when it could not). Warm runs
read the whole source first so both copies read it from memory.

Other processes on a shared machine take CPU away from whichever copy needs more of it,
so each run prints ``/proc/loadavg`` and ``/proc/pressure/cpu`` (some avg10), and the end
prints the per-step CPU costs (sha256, read, write, in-kernel copy) measured here and how
many free cores the transfer would need to reach 0.9x of this ``cp``.

    .venv/bin/python perf/transfer_vs_cp.py                        # ~2.7 GB, 3 repeats, cold+warm
    .venv/bin/python perf/transfer_vs_cp.py --repeats 5 --mode cold --workdir /data
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from budcluster.transfer import LocalDirSource, build_manifest, transfer_model
from budcluster.transfer.manifest import write_manifest

CHUNK = 16 << 20
STEP_BUFFER = 256 << 10
"""The engine's buffer size (engine.COPY_BUFFER_BYTES), so step costs match its loop."""
TARGET_RATIO = 0.9


def make_model(root: Path, size_bytes: int, shards: int, seed: int) -> None:
    """``shards`` safetensors-like files of random bytes plus small JSON files."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    per_shard = size_bytes // shards
    for index in range(1, shards + 1):
        path = root / f"model-{index:05d}-of-{shards:05d}.safetensors"
        with path.open("wb") as out:
            left = per_shard
            while left:
                step = min(CHUNK, left)
                out.write(rng.randbytes(step))
                left -= step
    (root / "config.json").write_text('{"model_type": "llama", "hidden_size": 4096}\n')
    (root / "tokenizer.json").write_bytes(rng.randbytes(2 << 20))
    (root / "generation_config.json").write_text('{"do_sample": true}\n')


def drop_caches() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def warm_up(root: Path) -> None:
    """Read every file once so the next copy finds the source in the page cache."""
    buffer = memoryview(bytearray(CHUNK))
    for path in root.iterdir():
        with path.open("rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass


def machine_load() -> str:
    """1-minute load average and the share of time some task waited for a CPU (10 s)."""
    load = Path("/proc/loadavg").read_text().split()[0]
    try:
        pressure = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        some = pressure.split()[1].removeprefix("avg10=") + "%"
    except (OSError, IndexError):
        some = "n/a"
    return f"load {load} cpu-psi {some}"


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Run:
    copy_s: float
    synced_s: float
    cpu_s: float
    load: str


def time_cp(source: Path, dest: Path, workers: int) -> Run:
    del workers
    cpu = _cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(dest)], check=True, timeout=3600)
    copied = time.perf_counter()
    cpu = _cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    load = machine_load()  # right after the copy: the 10 s pressure average covers it
    os.sync()
    return Run(copied - started, time.perf_counter() - started, cpu, load)


def time_transfer(source: Path, dest: Path, workers: int) -> Run:
    cpu = _cpu_seconds(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = transfer_model(LocalDirSource(source), dest, workers=workers)
    copied = time.perf_counter()
    cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu
    load = machine_load()
    os.sync()
    assert result.files_copied == result.files and result.bytes_copied == result.bytes_total
    return Run(copied - started, time.perf_counter() - started, cpu, load)


TOOLS: dict[str, Callable[[Path, Path, int], Run]] = {"cp -r": time_cp, "transfer": time_transfer}


def measure(
    mode: str, source: Path, base: Path, total: int, repeats: int, workers: int
) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {name: [] for name in TOOLS}
    for repeat in range(repeats):
        order = list(TOOLS) if repeat % 2 == 0 else list(reversed(TOOLS))
        for name in order:
            dest = base / "dest"
            shutil.rmtree(dest, ignore_errors=True)
            os.sync()
            if mode == "cold":
                drop_caches()
            else:
                warm_up(source)
            run = TOOLS[name](source, dest, workers)
            runs[name].append(run)
            print(
                f"  {mode} run {repeat + 1} {name:9s} copy {run.copy_s:6.2f} s "
                f"({total / run.copy_s / 1e6:7.1f} MB/s)  +sync {run.synced_s:6.2f} s "
                f"({total / run.synced_s / 1e6:7.1f} MB/s)  cpu {run.cpu_s:5.2f} s  [{run.load}]",
                flush=True,
            )
    return runs


def summarize(mode: str, runs: dict[str, list[Run]], total: int) -> None:
    gb = total / 1e9
    print(f"{mode} medians of {len(runs['cp -r'])}:")
    copy: dict[str, float] = {}
    synced: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, rows in runs.items():
        copy[name] = statistics.median(total / r.copy_s / 1e6 for r in rows)
        synced[name] = statistics.median(total / r.synced_s / 1e6 for r in rows)
        cpu[name] = statistics.median(r.cpu_s / gb for r in rows)
        cores = statistics.median(r.cpu_s / r.copy_s for r in rows)
        print(
            f"  {name:9s} copy {copy[name]:7.1f} MB/s   copy+sync {synced[name]:7.1f} MB/s   "
            f"cpu {cpu[name]:.2f} s/GB   cores used {cores:.2f}"
        )
    print(
        f"  ratio transfer/cp ({mode}): copy {copy['transfer'] / copy['cp -r']:.2f}x, "
        f"copy+sync {synced['transfer'] / synced['cp -r']:.2f}x "
        f"(target >= {TARGET_RATIO:.2f}x; the transfer verifies every byte)"
    )
    # Wall time of the transfer >= its CPU time / free cores, so reaching the target at
    # its CPU cost needs this many cores entirely free for it.
    cp_seconds_per_gb = 1e3 / copy["cp -r"]
    needed = cpu["transfer"] / (cp_seconds_per_gb / TARGET_RATIO)
    print(
        f"  cores the transfer needs free for {TARGET_RATIO:.2f}x of this cp ({mode}, copy): "
        f"{needed:.2f} (its {cpu['transfer']:.2f} CPU-s/GB in {cp_seconds_per_gb / TARGET_RATIO:.2f} s/GB)"
    )


def _step(path: Path, body: Callable[[memoryview, int, int], None]) -> float:
    """CPU seconds per GB of ``body(buffer, source_fd, dest_fd)`` over ``path`` (warm)."""
    warm_up(path.parent)
    dest = path.with_name("step.out")
    buffer = memoryview(bytearray(STEP_BUFFER))
    cpu = _cpu_seconds(resource.RUSAGE_SELF)
    with path.open("rb", buffering=0) as source, dest.open("wb", buffering=0) as out:
        body(buffer, source.fileno(), out.fileno())
    cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu
    dest.unlink()
    return cpu / (path.stat().st_size / 1e9)


def step_costs(shard: Path, base: Path) -> None:
    """What each part of the work costs here, one thread, warm cache, 256 KiB buffers."""
    work = base / "steps"
    work.mkdir()
    sample = work / shard.name
    shutil.copyfile(shard, sample)
    size = sample.stat().st_size

    def sha256_in_memory(buffer: memoryview, source: int, out: int) -> None:
        digest = hashlib.sha256()
        for _ in range(size // len(buffer)):
            digest.update(buffer)

    def read(buffer: memoryview, source: int, out: int) -> None:
        while os.readv(source, [buffer]):
            pass

    def read_write(buffer: memoryview, source: int, out: int) -> None:
        while count := os.readv(source, [buffer]):
            os.write(out, buffer[:count])

    def read_sha256_write(buffer: memoryview, source: int, out: int) -> None:
        digest = hashlib.sha256()
        while count := os.readv(source, [buffer]):
            digest.update(buffer[:count])
            os.write(out, buffer[:count])

    def kernel_copy(buffer: memoryview, source: int, out: int) -> None:
        while os.copy_file_range(source, out, 64 << 20):
            pass

    steps = {
        "sha256 (in memory, hashlib/OpenSSL)": sha256_in_memory,
        "read (page cache -> buffer)": read,
        "read + write": read_write,
        "read + sha256 + write (the engine's loop)": read_sha256_write,
        "copy_file_range (what cp does)": kernel_copy,
    }
    print(f"step costs, one thread, warm cache, {size / 1e9:.2f} GB [{machine_load()}]:")
    for name, body in steps.items():
        print(f"  {name:42s} {_step(sample, body):.3f} CPU-s/GB")
    shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.5, help="model size in GiB (2.5)")
    parser.add_argument("--shards", type=int, default=4, help="weight files (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--workers", type=int, default=4, help="transfer workers (default 4)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to work (same disk)")
    parser.add_argument(
        "--mode", choices=["both", "cold", "warm"], default="both", help="page cache (both)"
    )
    parser.add_argument("--keep-cache", action="store_true", help="same as --mode warm")
    args = parser.parse_args()
    if args.size_gb <= 0 or args.shards < 1 or args.repeats < 1 or args.workers < 1:
        parser.error("--size-gb must be > 0 and --shards, --repeats, --workers at least 1")
    modes = ["cold", "warm"] if args.mode == "both" else [args.mode]
    if args.keep_cache:
        modes = ["warm"]

    size = int(args.size_gb * (1 << 30))
    base = Path(tempfile.mkdtemp(prefix="transfer-vs-cp-", dir=args.workdir))
    try:
        source = base / "model"
        started = time.perf_counter()
        make_model(source, size, args.shards, seed=11)
        write_manifest(source, build_manifest(source, workers=args.workers))
        total = sum(p.stat().st_size for p in source.iterdir() if p.is_file())
        print(
            f"model: {total / 1e9:.2f} GB in {args.shards} shards + json, made in "
            f"{time.perf_counter() - started:.1f} s under {base}"
        )
        print(f"cpus: {os.cpu_count()}, transfer workers: {args.workers}, [{machine_load()}]")
        if "cold" in modes and not drop_caches():
            print("cold: /proc/sys/vm/drop_caches is not writable (not root); skipping cold runs")
            modes.remove("cold")
        for mode in modes:
            summarize(mode, measure(mode, source, base, total, args.repeats, args.workers), total)
        step_costs(next(source.glob("model-*.safetensors")), base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
