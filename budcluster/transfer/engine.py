"""Copy a model into a destination directory: parallel, hashed while copying, resumable.

Per file: a finished file already in place is re-hashed and kept when its sha256 is the
expected one; otherwise bytes go to ``<name>.part`` (resumed from its current length when
the journal shows it was started from the same source version), are hashed as they are
written, checked, and renamed into place. The manifest is written last, so a destination
without ``.budcluster-manifest.json`` is incomplete.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budcluster.transfer.durable import fsync_file, fsync_tree
from budcluster.transfer.errors import (
    DestinationFull,
    ManifestMismatch,
    SourceNotFound,
    TransferError,
)
from budcluster.transfer.journal import Journal, JournalKey
from budcluster.transfer.lock import destination_lock
from budcluster.transfer.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    hash_file,
    read_manifest,
    write_manifest,
)
from budcluster.transfer.paths import (
    PART_SUFFIX,
    dest_path,
    open_no_follow,
    prepare_dest_root,
)
from budcluster.transfer.progress import (
    ProgressCallback,
    ProgressMeter,
    Throttle,
    human_bytes,
)
from budcluster.transfer.source import ModelSource, SourceFile
from budcluster.transfer.staged import StagedModel

COPY_BUFFER_BYTES = 256 << 10
"""Small enough to stay in the CPU cache between the read, the hash and the write
(measured: 256 KiB copies+hashes 1.5x faster here than 8 MiB)."""
THROTTLED_CHUNK_BYTES = 64 << 10


class _Cancelled(Exception):
    """Another worker failed; this one stops at its next chunk."""


@dataclass(frozen=True)
class TransferResult:
    source_uri: str
    dest: Path
    files: int
    bytes_total: int
    bytes_copied: int
    """Bytes actually moved by this run (less than ``bytes_total`` after a resume)."""
    files_copied: int
    files_skipped: int
    """Files already in place whose sha256 verified."""
    seconds: float
    manifest: Manifest
    changed: bool
    """False when the destination already held exactly this model (nothing was written)."""

    @property
    def throughput_bytes_per_s(self) -> float:
        """Bytes copied per second of wall time (verification included)."""
        return self.bytes_copied / self.seconds if self.seconds > 0 else 0.0

    @property
    def throughput(self) -> float:
        """Alias of ``throughput_bytes_per_s``."""
        return self.throughput_bytes_per_s

    def to_staged_model(self, model_name: str, nodes: Sequence[str]) -> StagedModel:
        """The ``StagedModel`` a target reports after this transfer ran on ``nodes``."""
        return StagedModel(
            model_name=model_name,
            path=str(self.dest),
            nodes=list(nodes),
            files=self.files,
            bytes=self.bytes_total,
            bytes_copied=self.bytes_copied,
            seconds=self.seconds,
            manifest_sha256=self.manifest.sha256(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source_uri,
            "dest": str(self.dest),
            "files": self.files,
            "bytes_total": self.bytes_total,
            "bytes_copied": self.bytes_copied,
            "files_copied": self.files_copied,
            "files_skipped": self.files_skipped,
            "seconds": round(self.seconds, 3),
            "throughput_bytes_per_s": round(self.throughput_bytes_per_s, 1),
            "manifest_sha256": self.manifest.sha256(),
            "changed": self.changed,
        }


@dataclass(frozen=True)
class _FileOutcome:
    entry: ManifestEntry
    key: JournalKey
    bytes_copied: int
    copied: bool


class _Run:
    """The state one ``transfer_model`` call shares between its worker threads."""

    def __init__(
        self,
        source: ModelSource,
        dest: Path,
        expected: dict[str, str],
        meter: ProgressMeter,
        throttle: Throttle | None,
    ) -> None:
        self.source = source
        self.dest = dest
        self.expected = expected
        self.meter = meter
        self.throttle = throttle
        self.journal = Journal(dest)
        self.cancel = threading.Event()
        self._invalidated = False
        self._invalidate_lock = threading.Lock()

    def invalidate_destination(self) -> None:
        """Remove the old manifest before the first write: the directory is changing."""
        with self._invalidate_lock:
            if not self._invalidated:
                (self.dest / MANIFEST_NAME).unlink(missing_ok=True)
                self._invalidated = True

    @property
    def invalidated(self) -> bool:
        return self._invalidated

    def handle(self, file: SourceFile) -> _FileOutcome:
        target = dest_path(self.dest, file.path)
        key = JournalKey(file.path, file.size, file.version)
        known = self.expected.get(file.path) or file.sha256 or self.journal.finished.get(key)
        if known is not None and target.is_file() and target.stat().st_size == file.size:
            digest, _ = hash_file(target)
            if digest == known:
                # A previous run may have renamed it into place and died before syncing.
                fsync_file(target)
                self.meter.add_bytes(file.size)
                self.meter.file_done()
                return _FileOutcome(ManifestEntry(file.path, file.size, digest), key, 0, False)
        self.invalidate_destination()
        digest, copied = self._copy(file, target, key)
        self.meter.file_done()
        return _FileOutcome(ManifestEntry(file.path, file.size, digest), key, copied, True)

    def _copy(
        self, file: SourceFile, target: Path, key: JournalKey, *, may_resume: bool = True
    ) -> tuple[str, int]:
        part = target.with_name(target.name + PART_SUFFIX)
        hasher = hashlib.sha256()
        offset = 0
        resumable = key in self.journal.started and part.is_file()
        if may_resume and resumable and part.stat().st_size <= file.size:
            # Resume: hash what is already there (a read, not a copy), then append.
            offset = _hash_prefix(part, hasher)
            self.meter.add_bytes(offset)
        else:
            part.unlink(missing_ok=True)
            self.journal.record_start(key)
        # Throttled copies move in small steps so a file is seen growing (tests kill it midway).
        chunk_bytes = COPY_BUFFER_BYTES if self.throttle is None else THROTTLED_CHUNK_BYTES
        buffer = memoryview(bytearray(chunk_bytes))
        written = offset
        reader = self.source.open_range(file, offset)
        try:
            with os.fdopen(
                open_no_follow(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab", buffering=0
            ) as out:
                while count := reader.readinto(buffer):
                    if self.cancel.is_set():
                        raise _Cancelled
                    chunk = buffer[:count]
                    hasher.update(chunk)
                    _write_all(out, chunk)
                    written += count
                    if written > file.size:
                        break
                    self.meter.add_bytes(count)
                    if self.throttle is not None:
                        self.throttle.consume(count)
                # Durable before the rename below, and so before the manifest.
                os.fsync(out.fileno())
        finally:
            reader.close()
        if written != file.size:
            part.unlink(missing_ok=True)
            raise ManifestMismatch(
                f"{self.source.uri}: {file.path} was listed with {file.size} bytes but "
                f"{'more' if written > file.size else written} came; the source changed "
                "during the transfer. Rerun once it is stable"
            )
        digest = hasher.hexdigest()
        wanted = self.expected.get(file.path) or file.sha256
        if wanted is not None and digest != wanted:
            part.unlink(missing_ok=True)
            if offset:
                # The kept prefix may be what was wrong (a torn write): one clean retry.
                self.meter.add_bytes(-written)
                digest, copied = self._copy(file, target, key, may_resume=False)
                return digest, copied + written - offset
            raise ManifestMismatch(
                f"{self.source.uri}: {file.path} has sha256 {digest}, the source's manifest "
                f"says {wanted}; the copy was discarded. Check the source file or its manifest"
            )
        self.journal.record_done(key, digest)
        part.replace(target)
        return digest, written - offset


def _hash_prefix(part: Path, hasher: Any) -> int:
    buffer = memoryview(bytearray(COPY_BUFFER_BYTES))
    length = 0
    with part.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            hasher.update(buffer[:count])
            length += count
    return length


def _write_all(out: Any, chunk: memoryview) -> None:
    done = 0
    while done < len(chunk):
        done += out.write(chunk[done:])


def _first_real_error(futures: list[Future[_FileOutcome]]) -> BaseException:
    """The error that stopped the run, not the cancellations it caused."""
    errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception()]
    real = [e for e in errors if e is not None and not isinstance(e, _Cancelled)]
    if real:
        return real[0]
    return TransferError("transfer cancelled without a recorded cause")


def _check_listing(source: ModelSource, files: list[SourceFile], expected: Manifest) -> None:
    listed = {f.path: f.size for f in files}
    promised = {e.path: e.size for e in expected.files}
    missing = sorted(set(promised) - set(listed))
    extra = sorted(set(listed) - set(promised))
    resized = sorted(p for p in set(listed) & set(promised) if listed[p] != promised[p])
    if missing or extra or resized:
        raise ManifestMismatch(
            f"{source.uri}: the files do not match the source's {MANIFEST_NAME}: "
            f"missing {missing or 'none'}, not in the manifest {extra or 'none'}, "
            f"different size {resized or 'none'}. Regenerate it with `budcluster model manifest`"
        )


def transfer_model(
    source: ModelSource,
    dest: Path,
    *,
    workers: int = 4,
    progress: ProgressCallback | None = None,
    throttle_bytes_per_s: float | None = None,
) -> TransferResult:
    """Copy ``source`` into ``dest`` with ``workers`` files in flight; verify everything.

    ``throttle_bytes_per_s`` caps the combined rate; it exists so tests can interrupt a
    copy reliably and is not meant for production use.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    started = time.monotonic()
    files = source.list_files()
    if not files:
        raise SourceNotFound(f"{source.uri} holds no files; check the path or prefix")
    shipped = source.expected_manifest()
    if shipped is not None:
        _check_listing(source, files, shipped)
    expected = {e.path: e.sha256 for e in shipped.files} if shipped else {}
    meter = ProgressMeter(
        files_total=len(files), bytes_total=sum(f.size for f in files), callback=progress
    )
    throttle = Throttle(throttle_bytes_per_s) if throttle_bytes_per_s else None
    try:
        prepare_dest_root(dest)
        with destination_lock(dest):
            return _transfer_locked(
                _Run(source, dest, expected, meter, throttle), files, shipped, workers, started
            )
    except (OSError, TransferError) as exc:
        full = _disk_full_cause(exc)
        if full is None:
            raise
        raise _destination_full(dest, files, full) from exc


def _transfer_locked(
    run: _Run, files: list[SourceFile], shipped: Manifest | None, workers: int, started: float
) -> TransferResult:
    source, dest, meter = run.source, run.dest, run.meter
    previous = read_manifest(dest) if (dest / MANIFEST_NAME).is_file() else None
    # Largest first: the long copies start early and the small ones fill the gaps.
    ordered = sorted(files, key=lambda f: (-f.size, f.path))
    outcomes: list[_FileOutcome] = []
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transfer") as pool:
            futures: list[Future[_FileOutcome]] = [pool.submit(run.handle, f) for f in ordered]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                run.cancel.set()
                for future in pending:
                    future.cancel()
                wait(pending)
                raise _first_real_error(futures)
            outcomes = [f.result() for f in futures]
    finally:
        run.journal.close()
    manifest = Manifest.of(o.entry for o in outcomes)
    if shipped is not None and manifest.sha256() != shipped.sha256():
        raise ManifestMismatch(
            f"{source.uri}: the copied files' manifest {manifest.sha256()} differs from the "
            f"shipped one {shipped.sha256()}"
        )
    changed = run.invalidated or previous != manifest
    if changed:
        run.journal.compact({o.key: o.entry.sha256 for o in outcomes})
        # The renames into place, and the directories this run created, are durable only
        # once their directories are synced; the manifest vouches for them, so it is last.
        fsync_tree(dest, (o.entry.path for o in outcomes))
        write_manifest(dest, manifest)
    meter.emit()
    return TransferResult(
        source_uri=source.uri,
        dest=dest,
        files=len(outcomes),
        bytes_total=manifest.total_bytes,
        bytes_copied=sum(o.bytes_copied for o in outcomes),
        files_copied=sum(1 for o in outcomes if o.copied),
        files_skipped=sum(1 for o in outcomes if not o.copied),
        seconds=time.monotonic() - started,
        manifest=manifest,
        changed=changed,
    )


def _disk_full_cause(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT behind ``exc``: raised as is, or chained by a path check."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, OSError) and candidate.errno in (errno.ENOSPC, errno.EDQUOT):
            return candidate
    return None


def _mount_point(path: Path) -> Path:
    current = path.resolve()
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def _bytes_in_place(dest: Path, files: list[SourceFile]) -> int:
    """What a rerun keeps: finished files at their size, and the ``.part`` files' bytes."""
    kept = 0
    for file in files:
        target = dest / file.path
        for path, whole in ((target, True), (target.with_name(target.name + PART_SUFFIX), False)):
            try:
                size = os.lstat(path).st_size
            except OSError:
                continue
            if not whole or size == file.size:
                kept += min(size, file.size)
                break
    return kept


def _destination_full(dest: Path, files: list[SourceFile], cause: OSError) -> DestinationFull:
    """Where the disk filled, how much the model needs, how much is there and free."""
    total = sum(f.size for f in files)
    in_place = _bytes_in_place(dest, files)
    missing = total - in_place
    try:
        stats = os.statvfs(dest)
        free = f"{human_bytes(stats.f_bavail * stats.f_frsize)} is free"
    except OSError:
        free = "the free space could not be read"
    what = "over quota" if cause.errno == errno.EDQUOT else "full"
    return DestinationFull(
        f"destination {dest} is {what} ({cause.strerror}) on the filesystem mounted at "
        f"{_mount_point(dest)}: the model needs {human_bytes(total)} ({total} bytes), "
        f"{human_bytes(in_place)} ({in_place} bytes) of it is in place, so "
        f"{human_bytes(missing)} ({missing} bytes) more must fit and {free}. Free that much "
        "space there (or stage to a destination with room) and rerun: the rerun keeps what "
        "was copied (finished files and .part files) and copies only the rest"
    )


def verify_destination(dest: Path, *, workers: int = 4) -> Manifest:
    """Re-hash a finished destination and check it against its manifest."""
    from budcluster.transfer.manifest import build_manifest

    recorded = read_manifest(dest)
    if recorded is None:
        raise ManifestMismatch(
            f"{dest} has no {MANIFEST_NAME}: the transfer into it did not finish; rerun it"
        )
    actual = build_manifest(dest, workers=workers)
    if actual != recorded:
        wrong = sorted(
            {e.path for e in actual.files} ^ {e.path for e in recorded.files}
            | {
                p
                for p, e in actual.by_path().items()
                if p in recorded.by_path() and recorded.by_path()[p] != e
            }
        )
        raise ManifestMismatch(f"{dest}: files differ from its manifest: {wrong}")
    return recorded
