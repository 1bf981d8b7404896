"""Transfer progress: what is reported, thread-safe counting, a shared bandwidth throttle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TransferProgress:
    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0


ProgressCallback = Callable[[TransferProgress], None]


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover - the loop always returns


class ProgressMeter:
    """Counts bytes and files from many threads; reports at most every ``interval_s``."""

    def __init__(
        self,
        *,
        files_total: int,
        bytes_total: int,
        callback: ProgressCallback | None,
        interval_s: float = 0.2,
    ) -> None:
        self.files_total = files_total
        self.bytes_total = bytes_total
        self._callback = callback
        self._interval_s = interval_s
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()
        self._files_done = 0
        self._bytes_done = 0
        self._last_emit = 0.0

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self._bytes_done += count
        self._maybe_emit()

    def file_done(self) -> None:
        with self._lock:
            self._files_done += 1
        self._maybe_emit()

    def snapshot(self) -> TransferProgress:
        with self._lock:
            return TransferProgress(
                files_total=self.files_total,
                files_done=self._files_done,
                bytes_total=self.bytes_total,
                bytes_done=self._bytes_done,
                elapsed_s=time.monotonic() - self._started,
            )

    def emit(self) -> None:
        """Report now (the final report is always sent)."""
        if self._callback is not None:
            with self._emit_lock:
                self._callback(self.snapshot())

    def _maybe_emit(self) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if now - self._last_emit < self._interval_s:
            return
        # One thread reports; the others keep copying instead of queueing behind a slow
        # callback (a Prefect artifact update is an API call).
        if not self._emit_lock.acquire(blocking=False):
            return
        try:
            self._last_emit = now
            self._callback(self.snapshot())
        finally:
            self._emit_lock.release()


class Throttle:
    """Caps the combined copy rate of all workers (tests use it to make a copy killable)."""

    def __init__(self, bytes_per_s: float) -> None:
        if bytes_per_s <= 0:
            raise ValueError(f"throttle must be a positive bytes/s rate, got {bytes_per_s}")
        self._rate = bytes_per_s
        self._lock = threading.Lock()
        self._next_free = time.monotonic()

    def consume(self, count: int) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(self._next_free, now)
            self._next_free = start + count / self._rate
            wait = self._next_free - now
        if wait > 0:
            time.sleep(wait)
