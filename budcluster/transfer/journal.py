"""The destination's transfer journal: what was started and what finished, per file.

It survives ``kill -9`` (each line goes to the page cache in one ``write`` as it is
recorded) and lets a rerun tell a resumable ``.part`` from a stale one, and trust a finished
file whose source publishes no checksum. A torn last line (a kill, or a full disk that took
half a line) is ignored, and the next run starts on a fresh line so it loses nothing more.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budcluster.transfer.paths import open_no_follow

JOURNAL_NAME = ".budcluster-journal.jsonl"


@dataclass(frozen=True)
class JournalKey:
    path: str
    size: int
    version: str


class Journal:
    def __init__(self, directory: Path) -> None:
        self.path = directory / JOURNAL_NAME
        self.started: set[JournalKey] = set()
        self.finished: dict[JournalKey, str] = {}
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._torn_tail = False
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        text = self.path.read_text(errors="replace")
        self._torn_tail = bool(text) and not text.endswith("\n")
        for line in text.splitlines():
            try:
                record = json.loads(line)
                key = JournalKey(str(record["path"]), int(record["size"]), str(record["version"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill; the rest are still good
            if record.get("event") == "start":
                self.started.add(key)
            elif record.get("event") == "done" and isinstance(record.get("sha256"), str):
                self.finished[key] = record["sha256"]

    def record_start(self, key: JournalKey) -> None:
        self._write({"event": "start", **key.__dict__})

    def record_done(self, key: JournalKey, sha256: str) -> None:
        self._write({"event": "done", **key.__dict__, "sha256": sha256})

    def _write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self._fd = open_no_follow(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            if self._torn_tail:
                # Appended to a torn line, this record would be unreadable too.
                line = b"\n" + line
            # Unbuffered: a failed write (ENOSPC) raises here and leaves nothing queued
            # that a later flush would write after newer lines.
            written = os.write(self._fd, line)
            self._torn_tail = written < len(line)
            if self._torn_tail:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    def compact(self, done: dict[JournalKey, str]) -> None:
        """Rewrite the journal with only the files of the finished transfer."""
        self.close()
        temporary = self.path.with_name(JOURNAL_NAME + ".tmp")
        lines = [
            json.dumps({"event": "done", **key.__dict__, "sha256": digest})
            for key, digest in sorted(done.items(), key=lambda item: item[0].path)
        ]
        fd = open_no_follow(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(line + "\n" for line in lines))
        temporary.replace(self.path)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
