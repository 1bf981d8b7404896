"""A deep copy of a JSON-shaped object (what the emulator stores and serves).

The store copies objects on every read, write and watch event, and the kubelet copies
each pod it steps on every tick; ``copy.deepcopy`` (memo table, reduce protocol) was most
of the emulator's time on a 1,000-node cluster. Dicts, lists and scalars are copied
directly; anything else falls back to ``copy.deepcopy``. Unlike deepcopy, an object shared
twice inside the input becomes two copies: a JSON document cannot share anyway.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

T = TypeVar("T")
_ATOMIC = (str, int, float, bool, type(None))


def clone(obj: T) -> T:
    return _clone(obj)  # type: ignore[no-any-return]


def _clone(obj: Any) -> Any:
    kind = type(obj)
    if kind is dict:
        return {key: _clone(value) for key, value in obj.items()}
    if kind is list:
        return [_clone(value) for value in obj]
    if kind in _ATOMIC:
        return obj
    return copy.deepcopy(obj)
