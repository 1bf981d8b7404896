"""List chunking (``limit`` and ``continue``), as the API server pages a list.

The real server sorts a list by its storage key (namespace, then name), answers at most
``limit`` items and, when more remain, a ``metadata.continue`` token: base64 of JSON
``{"v": "meta.k8s.io/v1", "rv": <list resourceVersion>, "start": "<last key>\\u0000"}``.
The next request passes the token back and gets the items after that key. A token whose
resourceVersion the storage has compacted away answers 410 ``Expired``; a token that does
not decode answers 400.

Simplification: the real server reads every page at the first page's resourceVersion
(an etcd snapshot), so the pages are one consistent list. The emulator keeps no
snapshots: later pages are read from the current state after the key. The resourceVersion
each page reports is the first page's, as on the real server.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.k8s_emulator.errors import ApiError, bad_request

Obj = dict[str, Any]

_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You "
    "can start a new list without the continue parameter, or use the continue token in "
    "this response to retrieve the remainder of the results. Continuing with the provided "
    "token results in an inconsistent list - objects that were created, modified, or "
    "deleted between the time the first chunk was returned and now may show up in the list."
)


@dataclass(frozen=True)
class Page:
    items: list[Obj]
    resource_version: int
    continue_token: str
    """Empty on the last page."""


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _decode(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.b64decode(token, validate=True))
        rv, start = int(data["rv"]), str(data["start"])
        if data.get("v") != "meta.k8s.io/v1" or rv <= 0:
            raise ValueError
    except (binascii.Error, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from exc
    return rv, start


def _encode(rv: int, last_key: str) -> str:
    body = {"v": "meta.k8s.io/v1", "rv": rv, "start": last_key + "\x00"}
    return base64.b64encode(json.dumps(body).encode()).decode()


def page(
    items: Sequence[Obj],
    query: Mapping[str, str],
    current_rv: int,
    check_rv: Callable[[int], None],
) -> Page:
    """The page of ``items`` (already selected) that ``limit`` and ``continue`` ask for.

    ``check_rv`` raises 410 when the storage no longer reaches back to a resourceVersion.
    """
    limit_text = query.get("limit") or ""
    token = query.get("continue") or ""
    try:
        limit = int(limit_text) if limit_text else 0
    except ValueError as exc:
        raise bad_request(f"invalid limit {limit_text!r}") from exc
    rv = current_rv
    ordered = sorted(items, key=_key)
    if token:
        rv, start = _decode(token)
        try:
            check_rv(rv)
        except ApiError as exc:
            raise ApiError(410, "Expired", _EXPIRED) from exc
        ordered = [o for o in ordered if _key(o) >= start]
    if limit <= 0 or len(ordered) <= limit:
        return Page(list(ordered), rv, "")
    chunk = list(ordered[:limit])
    return Page(chunk, rv, _encode(rv, _key(chunk[-1])))
