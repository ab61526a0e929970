"""The framing of one ledger record, shared by the ledger and by children that pre-frame records.

    record = magic:u16 (0x05A5) | length:u32 | crc32(payload):u32 | payload     (little endian)

The payload is one encoded message (see :mod:`osha.wire`). The magic lets a reader find the next
record after a corrupt one; the CRC tells a good record from garbage.

Children frame their own records, so the recorder writes their batches as they are: the
supervisor process does no per-record work on the hot path.

:func:`scan_records` is the one loop that reads framed records back: the ledger reader, the
raw lane, the live campaign state's tap and the test sinks all use it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import TypeVar

__all__ = [
    "HEADER",
    "HEADER_BYTES",
    "MAGIC",
    "MAX_RECORD_BYTES",
    "frame_record",
    "frame_records",
    "scan_records",
]

MAGIC = 0x05A5
HEADER = struct.Struct("<HII")
HEADER_BYTES = HEADER.size
MAX_RECORD_BYTES = 16 * 1024 * 1024
"""No record is longer: a longer length in a header is damage, not a record."""

_pack = HEADER.pack
_unpack_from = HEADER.unpack_from
_crc = zlib.crc32
_NO_LIMIT = 1 << 62

Buf = TypeVar("Buf", bytes, memoryview)


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


def scan_records(
    buf: Buf,
    pos: int = 0,
    *,
    count: int | None = None,
    check_crc: bool = True,
    offsets: list[int] | None = None,
    base: int = 0,
) -> tuple[list[Buf], int, str]:
    """The payloads of the whole framed records in ``buf`` from ``pos``, up to ``count`` of
    them (all if None).

    Returns ``(payloads, end, problem)``: ``end`` is the offset just after the last payload
    returned; ``problem`` says why the scan stopped at a damaged record (``bad magic 0x....``,
    ``impossible length N``, ``CRC mismatch``), or is ``""`` when it stopped at the end of
    ``buf``, at a record that runs past it, or after ``count`` records. With ``check_crc``
    false the CRC is not computed (the batch was framed in this run and is checked where it is
    read back). ``offsets``, when given, receives ``base + `` the offset of each record.
    Payloads are slices of ``buf`` (memoryviews for a memoryview).
    """
    payloads: list[Buf] = []
    append = payloads.append
    n = len(buf)
    i = pos
    left = _NO_LIMIT if count is None else count
    while left and n - i >= HEADER_BYTES:
        magic, length, crc = _unpack_from(buf, i)
        if magic != MAGIC:
            return payloads, i, f"bad magic 0x{magic:04x}"
        if length > MAX_RECORD_BYTES:
            return payloads, i, f"impossible length {length}"
        end = i + HEADER_BYTES + length
        if end > n:
            break
        payload = buf[i + HEADER_BYTES : end]
        if check_crc and _crc(payload) != crc:
            return payloads, i, "CRC mismatch"
        append(payload)
        if offsets is not None:
            offsets.append(base + i)
        i = end
        left -= 1
    return payloads, i, ""
