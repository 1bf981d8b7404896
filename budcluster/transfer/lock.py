"""One transfer at a time per destination: an exclusive ``flock`` on ``.budcluster-lock``.

Two transfers appending to the same ``.part`` would interleave their bytes, and each would
still rename the file into place and vouch for it with the digest of what it alone wrote.
That happens for real: a controller killed with ``kill -9`` leaves the host's transfer
running (ansible-playbook and its command run in a session of their own), and a rerun of
the staging starts a second one into the same directory.

The kernel drops a ``flock`` when its holder dies, however it dies, so a killed transfer
never leaves a stale lock behind. Nothing is written into the lock file (a rerun that finds
the model in place changes nothing on disk); the holder's pid is read from ``/proc/locks``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from budcluster.transfer.errors import DestinationBusy
from budcluster.transfer.paths import RESERVED_PREFIX, open_no_follow

LOCK_NAME = RESERVED_PREFIX + "lock"


@contextlib.contextmanager
def destination_lock(dest: Path) -> Iterator[None]:
    """Hold ``dest``'s transfer lock, or raise DestinationBusy naming the holder's pid."""
    path = dest / LOCK_NAME
    fd = open_no_follow(path, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DestinationBusy(
                f"{dest}: another transfer (pid {_holder(fd)} on this host) is writing "
                f"into it and holds {path}. Wait for it to end, or stop it, then rerun: the "
                "rerun resumes from what is there"
            ) from None
        yield
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """The pid holding the flock on ``fd``'s file, from ``/proc/locks``; or ``unknown``."""
    info = os.fstat(fd)
    # /proc/locks names a file as MAJOR:MINOR:INODE, the device numbers in hex.
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "unknown"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 28083 00:2f:2221559 0 EOF"; waiters carry a "->".
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            return fields[4]
    return "unknown"
