"""Short-lived files for tools that only take secrets from a path (ssh, kubectl, helm).

Each file lives in its own 0700 directory, is created 0600, and is removed when the
``with`` block ends, even on error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_secret_file(content: str | bytes, *, name: str = "secret") -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="budcluster-"))  # mkdtemp makes it 0700
    path = directory / name
    data = content.encode() if isinstance(content, str) else content
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
