"""Random names and uids for emulated objects (pod suffixes, Event names, container ids).

The real components draw these from a random source too; none is a secret. One
``random.Random`` seeded once from the OS is used instead of ``secrets``/``uuid4``, which
read ``/dev/urandom`` on every call: about 20,000 reads for one detection on a 1,000-node
cluster, over a second of the emulator's time.
"""

from __future__ import annotations

import os
import random
import uuid

_RNG = random.Random(os.urandom(16))


def token_hex(nbytes: int) -> str:
    return f"{_RNG.getrandbits(8 * nbytes):0{2 * nbytes}x}"


def uid() -> str:
    """A random (version 4) UUID, as the API server gives each object."""
    return str(uuid.UUID(int=_RNG.getrandbits(128), version=4))


def choice(alphabet: str, length: int) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(length))
