"""The wire codec: messages to msgpack and back, and the frames that carry them.

A message encodes as one msgpack array: ``[tag, sender, seq, mono_s, wall_s, *fields]``, the
fields in declaration order (a nested record's fields inline, where the record is; a ``StrEnum``
as its value). ``MessageSpec.at(name)`` says where a field is. Trailing fields that have
defaults may be left out. Decoding checks the tag, the count and the exact type of every field,
and raises :class:`WireError` with the tag and field named, so that a bad frame never crashes an
actor deep inside.

Between a child process and its handle, the stream is a sequence of frames::

    frame   = length:u32 big-endian | msgpack [kind, body]
    RECORDS   body = count:u32 big-endian | ledger-framed records (see osha.record),
              written to the ledger as they are
    CONTROL   body = one encoded message for the peer, never recorded
    RAW_RECORDS  body as RECORDS, holding only raw samples (osha.messages.RAW_TAGS),
              so that the ledger can route them to its raw lane without reading them

Batching: a child sends many records in one RECORDS frame, so the parent pays one read,
one decode and one ledger write per batch, not per message.

No pickle, ever: msgpack with ``strict_map_key`` and no extension types.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

import msgpack

from osha.errors import WireError
from osha.messages import Message, registry, spec_of

__all__ = [
    "MAX_FRAME_BYTES",
    "SCHEMA_VERSION",
    "FrameDecoder",
    "FrameKind",
    "decode",
    "encode",
    "pack_frame",
    "pack_records",
    "peek_tag",
    "unpack_records",
]

SCHEMA_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024

_LEN = struct.Struct(">I")
_COUNT = struct.Struct(">I")  # a RECORDS body's record count
_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
_unpackb = msgpack.unpackb
_registry = registry()  # the live tag → spec dict; later imports add to it


class FrameKind(IntEnum):
    RECORDS = 1
    CONTROL = 2
    RAW_RECORDS = 3


def encode(msg: Message) -> bytes:
    """Encode a registered message as one msgpack array."""
    spec = spec_of(type(msg))
    values = spec.getter(msg)
    return _packb([spec.tag, *values])


def decode(data: bytes | memoryview) -> Message:
    """Decode one message, checking tag, field count and every field's type."""
    try:
        items = _unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise WireError(
            f"undecodable message ({len(data)} bytes): {exc}",
            hint="the sender and receiver may run different osha versions",
        ) from exc
    if type(items) is list and items and type(items[0]) is str:
        spec = _registry.get(items[0])
        if spec is not None:
            builders = spec.builders
            n = len(items)
            if n < len(builders):
                build = builders[n]
                if build is not None:
                    msg = build(items)
                    if msg is not None:
                        return msg
    raise _explain(items)


def _explain(items: Any) -> WireError:
    """The error for a decoded value that is not a valid message (the slow path)."""
    schema_hint = "sender and receiver disagree on the schema"
    if not isinstance(items, list) or not items or not isinstance(items[0], str):
        return WireError(
            f"not a message: expected [tag, ...], got {type(items).__name__}",
            hint="only osha's own codec may write to an osha pipe or ledger",
        )
    tag = items[0]
    spec = _registry.get(tag)
    if spec is None:
        return WireError(
            f"unknown message tag {tag!r}",
            hint="the message may come from a newer osha or an uninstalled plugin",
        )
    values = items[1:]
    if len(values) < spec.required or len(values) > len(spec.fields):
        missing = [f.name for f in spec.fields[len(values) : spec.required]]
        detail = f"missing field(s) {', '.join(missing)}" if missing else "too many fields"
        return WireError(f"{tag}: {detail}", hint=schema_hint)
    for field, value in zip(spec.fields, values, strict=False):
        if type(value) not in field.types:
            expected = "|".join(t.__name__ for t in field.types)
            return WireError(
                f"{tag}.{field.name}: expected {expected}, got {type(value).__name__} "
                f"{value!r:.60}",
                hint=schema_hint,
            )
        if field.choices is not None and value is not None and value not in field.choices:
            return WireError(
                f"{tag}.{field.name}: {value!r} is not one of {sorted(field.choices)}",
                hint=schema_hint,
            )
    return WireError(f"{tag}: does not decode", hint=schema_hint)  # unreachable in practice


def peek_tag(data: bytes | memoryview) -> str:
    """The tag of an encoded message, without decoding the rest. Fast path for routing."""
    try:
        head = data[0]
        if 0x90 <= head <= 0x9F:  # fixarray
            pos = 1
        elif head == 0xDC:  # array 16
            pos = 3
        else:
            raise WireError(f"not a message: first byte 0x{head:02x} is not an array")
        size = data[pos]
        if 0xA0 <= size <= 0xBF:  # fixstr: every tag is ≤ 31 bytes
            length = size - 0xA0
            return bytes(data[pos + 1 : pos + 1 + length]).decode()
    except (IndexError, UnicodeDecodeError) as exc:
        raise WireError(f"truncated or garbled message: {exc}") from exc
    raise WireError("not a message: the tag is not a short string")


def pack_frame(kind: FrameKind, body: bytes) -> bytes:
    """One length-prefixed frame."""
    payload = _packb([int(kind), body])
    return _LEN.pack(len(payload)) + payload


def pack_records(records: list[bytes], *, raw: bool = False) -> bytes:
    """One RECORDS (or RAW_RECORDS) frame holding already ledger-framed records."""
    kind = FrameKind.RAW_RECORDS if raw else FrameKind.RECORDS
    return pack_frame(kind, b"".join([_COUNT.pack(len(records)), *records]))


def unpack_records(body: bytes) -> tuple[bytes, int]:
    """The framed-records blob and its record count, from a RECORDS frame body."""
    if len(body) < _COUNT.size:
        raise WireError(f"RECORDS frame of {len(body)} bytes has no record count")
    (count,) = _COUNT.unpack_from(body)
    return body[_COUNT.size :], count


class FrameDecoder:
    """Turns a byte stream into ``(kind, body)`` frames. Feed it whatever ``recv`` returned."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[FrameKind, bytes]]:
        """Add bytes; return every frame now complete (a list, so nothing is seen twice)."""
        self._buf += data
        buf = self._buf
        pos = 0
        end = len(buf)
        frames: list[tuple[FrameKind, bytes]] = []
        try:
            while end - pos >= 4:
                (length,) = _LEN.unpack_from(buf, pos)
                if length > MAX_FRAME_BYTES:
                    raise WireError(
                        f"frame of {length} bytes exceeds the {MAX_FRAME_BYTES}-byte limit",
                        hint="the stream is out of step; the peer will be restarted",
                    )
                if end - pos - 4 < length:
                    break
                frames.append(_split(bytes(buf[pos + 4 : pos + 4 + length])))
                pos += 4 + length
        finally:
            del buf[:pos]
        return frames

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)


def _split(payload: bytes) -> tuple[FrameKind, bytes]:
    try:
        kind, body = msgpack.unpackb(payload, raw=False, use_list=False)
        return FrameKind(kind), body
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise WireError(f"bad frame: {exc}", hint="the stream is out of step") from exc


def plain(value: Any) -> Any:
    """Convert a value to plain msgpack-able data (tuples to lists, Paths to str)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return value
    return str(value)
