"""The framing of one ledger record, shared by the ledger and by children that pre-frame records.

    record = magic:u16 (0x05A5) | length:u32 | crc32(payload):u32 | payload     (little endian)

The payload is one encoded message (see :mod:`osha.wire`). The magic lets a reader find the next
record after a corrupt one; the CRC tells a good record from garbage.

Children frame their own records, so the recorder writes their batches as they are: the
supervisor process does no per-record work on the hot path.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

__all__ = ["HEADER", "HEADER_BYTES", "MAGIC", "frame_record", "frame_records"]

MAGIC = 0x05A5
HEADER = struct.Struct("<HII")
HEADER_BYTES = HEADER.size

_pack = HEADER.pack
_crc = zlib.crc32


def frame_record(payload: bytes) -> bytes:
    """One framed record."""
    return _pack(MAGIC, len(payload), _crc(payload)) + payload


def frame_records(payloads: Iterable[bytes]) -> bytes:
    """Many framed records, concatenated."""
    parts: list[bytes] = []
    append = parts.append
    for payload in payloads:
        append(_pack(MAGIC, len(payload), _crc(payload)))
        append(payload)
    return b"".join(parts)
