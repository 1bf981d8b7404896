"""Copy a multi-GB model directory with ``cp -r`` and with ``transfer_model``, same disk,
same run, alternating order, and print both throughputs, their ratio and the CPU
seconds each spends per GB (the figure that does not depend on what else the machine runs).

The transfer is measured WITH verification: the source carries a manifest made by
``build_manifest`` beforehand (not timed), and every copied byte is hashed and checked
against it while it is copied. Both copies are timed twice: until the copy returns (the
data is in the page cache) and until a following ``sync`` returns (the data is on disk).

Where ``/proc/sys/vm/drop_caches`` is writable (root), caches are dropped before each
timed copy so both read the source from disk; the script says whether that worked.

    .venv/bin/python perf/transfer_vs_cp.py                  # ~2.5 GB, 3 repeats
    .venv/bin/python perf/transfer_vs_cp.py --size-gb 1 --repeats 2 --workdir /data
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from budcluster.transfer import LocalDirSource, build_manifest, transfer_model
from budcluster.transfer.manifest import write_manifest

CHUNK = 16 << 20


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


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_cp(source: Path, dest: Path) -> tuple[float, float, float]:
    """(seconds to copy, seconds to copy and sync, CPU seconds of cp)."""
    cpu = _cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(dest)], check=True, timeout=3600)
    copied = time.perf_counter()
    cpu = _cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    os.sync()
    return copied - started, time.perf_counter() - started, cpu


def time_transfer(source: Path, dest: Path, workers: int) -> tuple[float, float, float]:
    cpu = _cpu_seconds(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = transfer_model(LocalDirSource(source), dest, workers=workers)
    copied = time.perf_counter()
    cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu
    os.sync()
    assert result.files_copied == result.files and result.bytes_copied == result.bytes_total
    return copied - started, time.perf_counter() - started, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.5, help="model size (default 2.5)")
    parser.add_argument("--shards", type=int, default=4, help="weight files (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--workers", type=int, default=4, help="transfer workers (default 4)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to work (same disk)")
    parser.add_argument("--keep-cache", action="store_true", help="do not drop caches")
    args = parser.parse_args()

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
        dropped = False if args.keep_cache else drop_caches()
        print(
            f"drop_caches: {'yes, each copy reads a cold source' if dropped else 'no (warm page cache)'}"
        )
        print(f"cpus: {os.cpu_count()}, transfer workers: {args.workers}")

        times: dict[str, list[tuple[float, float, float]]] = {"cp -r": [], "transfer": []}
        for repeat in range(args.repeats):
            order = ["cp -r", "transfer"] if repeat % 2 == 0 else ["transfer", "cp -r"]
            for name in order:
                dest = base / "dest"
                shutil.rmtree(dest, ignore_errors=True)
                os.sync()
                if dropped:
                    drop_caches()
                seconds = (
                    time_cp(source, dest)
                    if name == "cp -r"
                    else time_transfer(source, dest, args.workers)
                )
                times[name].append(seconds)
                print(
                    f"  run {repeat + 1} {name:9s} copy {seconds[0]:6.2f} s "
                    f"({total / seconds[0] / 1e6:7.1f} MB/s)  +sync {seconds[1]:6.2f} s "
                    f"({total / seconds[1] / 1e6:7.1f} MB/s)  cpu {seconds[2]:5.2f} s"
                )
        print("median throughput (MB/s):")
        medians = {}
        for name, runs in times.items():
            copy = statistics.median(total / r[0] / 1e6 for r in runs)
            synced = statistics.median(total / r[1] / 1e6 for r in runs)
            cpu = statistics.median(r[2] / (total / 1e9) for r in runs)
            medians[name] = (copy, synced)
            print(f"  {name:9s} copy {copy:7.1f}   copy+sync {synced:7.1f}   cpu {cpu:.2f} s/GB")
        ratio_copy = medians["transfer"][0] / medians["cp -r"][0]
        ratio_sync = medians["transfer"][1] / medians["cp -r"][1]
        print(
            f"ratio transfer/cp: copy {ratio_copy:.2f}x, copy+sync {ratio_sync:.2f}x "
            "(target >= 0.90x; the transfer verifies every byte)"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
