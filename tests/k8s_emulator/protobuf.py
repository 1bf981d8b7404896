"""Decode the Kubernetes protobuf wire format for the kinds typed Go clients send that way.

client-go's typed clientset (Helm's release storage among its users) writes built-in kinds
as ``application/vnd.kubernetes.protobuf``: the 4-byte magic ``k8s\\0`` then a
``runtime.Unknown`` envelope (typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4)
whose ``raw`` is the object's own message. The field numbers below are those of the
``protobuf:"..."`` tags in k8s.io/api and k8s.io/apimachinery. Only kinds listed in
``MESSAGES`` are understood; the server answers 415 for any other, like a server that
does not speak protobuf for a type (client-go then has to send JSON).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.k8s_emulator.errors import ApiError, bad_request

MAGIC = b"k8s\x00"
Obj = dict[str, Any]
Fields = dict[int, list[int | bytes]]


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def fields(data: bytes) -> Fields:
    """Every field of one message by number, values in wire order (varints as int,
    length-delimited as bytes); fixed-width fields are skipped, no kind here uses them."""
    out: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            pos += 8
            continue
        elif wire == 5:
            pos += 4
            continue
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _text(values: list[int | bytes]) -> str:
    raw = values[-1]
    if not isinstance(raw, bytes):
        raise ProtobufError("expected a string")
    return raw.decode("utf-8")


def _bytes(values: list[int | bytes]) -> bytes:
    raw = values[-1]
    if not isinstance(raw, bytes):
        raise ProtobufError("expected bytes")
    return raw


def _int(values: list[int | bytes]) -> int:
    raw = values[-1]
    if not isinstance(raw, int):
        raise ProtobufError("expected a varint")
    return raw


def _map(values: list[int | bytes], as_bytes: bool = False) -> dict[str, Any]:
    # A map<string, V> is a repeated entry message with key = 1 and value = 2.
    out: dict[str, Any] = {}
    for entry in values:
        if not isinstance(entry, bytes):
            raise ProtobufError("expected a map entry")
        parts = fields(entry)
        key = _text(parts[1]) if 1 in parts else ""
        value = _bytes(parts[2]) if 2 in parts else b""
        out[key] = base64.b64encode(value).decode() if as_bytes else value.decode("utf-8")
    return out


def _time(data: bytes) -> str:
    parts = fields(data)
    seconds = _int(parts[1]) if 1 in parts else 0
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner_reference(data: bytes) -> Obj:
    parts = fields(data)
    ref: Obj = {}
    for number, name in ((5, "apiVersion"), (1, "kind"), (3, "name"), (4, "uid")):
        if number in parts:
            ref[name] = _text(parts[number])
    for number, name in ((6, "controller"), (7, "blockOwnerDeletion")):
        if number in parts:
            ref[name] = bool(_int(parts[number]))
    return ref


def object_meta(data: bytes) -> Obj:
    parts = fields(data)
    meta: Obj = {}
    for number, name in (
        (1, "name"),
        (2, "generateName"),
        (3, "namespace"),
        (5, "uid"),
        (6, "resourceVersion"),
    ):
        if number in parts and _text(parts[number]):
            meta[name] = _text(parts[number])
    if 7 in parts and _int(parts[7]):
        meta["generation"] = _int(parts[7])
    if 8 in parts:
        meta["creationTimestamp"] = _time(_bytes(parts[8]))
    if 11 in parts:
        meta["labels"] = _map(parts[11])
    if 12 in parts:
        meta["annotations"] = _map(parts[12])
    if 13 in parts:
        meta["ownerReferences"] = [_owner_reference(bytes(v)) for v in parts[13]]  # type: ignore[arg-type]
    if 14 in parts:
        meta["finalizers"] = [bytes(v).decode() for v in parts[14]]  # type: ignore[arg-type]
    # managedFields (17) are the server's to write; a client's are ignored on create.
    return meta


def secret(data: bytes) -> Obj:
    parts = fields(data)
    obj: Obj = {"metadata": object_meta(_bytes(parts[1])) if 1 in parts else {}}
    if 2 in parts:
        obj["data"] = _map(parts[2], as_bytes=True)
    if 3 in parts and _text(parts[3]):
        obj["type"] = _text(parts[3])
    if 4 in parts:
        obj["stringData"] = _map(parts[4])
    if 5 in parts:
        obj["immutable"] = bool(_int(parts[5]))
    return obj


MESSAGES: dict[tuple[str, str], Callable[[bytes], Obj]] = {
    ("v1", "Secret"): secret,
}


def decode(body: bytes, api_version: str, kind: str) -> Obj:
    """The JSON form of a protobuf request body for ``kind``; 415 for kinds not in MESSAGES,
    400 for bytes that are not the envelope, as the real server answers."""
    reader = MESSAGES.get((api_version, kind))
    if reader is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml",
        )
    if not body.startswith(MAGIC):
        raise bad_request(
            f"provided data does not appear to be a protobuf message, expected prefix {list(MAGIC)}"
        )
    try:
        envelope = fields(body[len(MAGIC) :])
        type_meta = fields(_bytes(envelope[1])) if 1 in envelope else {}
        sent_version = _text(type_meta[1]) if 1 in type_meta else api_version
        sent_kind = _text(type_meta[2]) if 2 in type_meta else kind
        obj = reader(_bytes(envelope[2]) if 2 in envelope else b"")
    except (ProtobufError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body could not be decoded: {exc}") from exc
    return {"apiVersion": sent_version, "kind": sent_kind, **obj}
