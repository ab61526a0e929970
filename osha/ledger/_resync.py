"""Finding the next good record after a damaged one, in time linear in the segment's size.

A candidate is an offset holding the record magic, a length of at most
:data:`MAX_RECORD_BYTES` that ends inside the file, and a payload whose CRC matches. The
scan for magics moves forward only; a candidate's CRC is found from prefix CRCs
(:class:`~osha.ledger._crc.SpanCrc`), built once per segment as far as the scan needs them,
never by reading the candidate's claimed payload again. So a segment seeded with thousands
of fake headers claiming 15 MiB each costs one pass over the file plus a few microseconds
per fake header, where checking each claim by reading it would cost thousands x 15 MiB.

Segment files are opened without following symbolic links: osha never writes one, and a
link could point a reader anywhere on the machine.
"""

from __future__ import annotations

import mmap
import os
import zlib
from typing import BinaryIO

from osha.errors import LedgerError
from osha.ledger._crc import CHECKPOINT_BYTES, SpanCrc
from osha.record import HEADER, HEADER_BYTES, MAGIC, MAX_RECORD_BYTES

__all__ = ["MAX_RECORD_BYTES", "Resyncer", "open_segment_file"]

_MAGIC_BYTES = MAGIC.to_bytes(2, "little")
_unpack_from = HEADER.unpack_from
_ZERO_CHUNK = 1024 * 1024


def open_segment_file(path: os.PathLike[str] | str) -> BinaryIO:
    """Open a segment for reading; a symbolic link is refused with a :class:`LedgerError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(path):
            raise LedgerError(
                f"{path} is a symbolic link: osha never writes one, so it is not followed",
                hint="copy the segment it points to into the run directory in its place",
            ) from exc
        raise LedgerError(
            f"cannot open ledger segment {path}: {exc.strerror or exc}",
            hint="check the path and its permissions",
        ) from exc
    return os.fdopen(fd, "rb", buffering=0)


class Resyncer:
    """Resynchronisation within one open segment file (mapped read-only on first use)."""

    __slots__ = ("_crc", "_map", "_zero_start", "size")

    def __init__(self, file: BinaryIO) -> None:
        self.size = os.fstat(file.fileno()).st_size
        self._map: mmap.mmap | bytes = (
            mmap.mmap(file.fileno(), self.size, access=mmap.ACCESS_READ) if self.size else b""
        )
        self._crc = SpanCrc(self._map)
        self._zero_start: int | None = None

    def check(self, offset: int) -> bool | None:
        """Whether a whole, valid record starts at ``offset``; None if its header is good but
        it runs past the end of the file."""
        if offset + HEADER_BYTES > self.size:
            return None
        magic: int
        length: int
        crc: int
        magic, length, crc = _unpack_from(self._map, offset)
        if magic != MAGIC or length > MAX_RECORD_BYTES:
            return False
        end = offset + HEADER_BYTES + length
        if end > self.size:
            return None
        if length <= 4 * CHECKPOINT_BYTES:
            return zlib.crc32(self._map[offset + HEADER_BYTES : end]) == crc
        return self._crc.span(offset + HEADER_BYTES, end) == crc

    def next_record(self, start: int) -> int | None:
        """The offset of the first whole, valid record at or after ``start``, or None."""
        find = self._map.find
        check = self.check
        pos = start
        while True:
            k = find(_MAGIC_BYTES, pos)
            if k < 0:
                return None
            if check(k):
                return k
            pos = k + 1

    def zeros_from(self, offset: int) -> int | None:
        """How many bytes follow ``offset`` if they are all zero (space the file system
        allocated but never wrote), else None. The zero tail is found once per segment."""
        if self._zero_start is None:
            self._zero_start = self._find_zero_start()
        return self.size - offset if offset >= self._zero_start else None

    def _find_zero_start(self) -> int:
        data = self._map
        end = self.size
        while end > 0:
            begin = max(0, end - _ZERO_CHUNK)
            kept = bytes(data[begin:end]).rstrip(b"\0")
            if kept:
                return begin + len(kept)
            end = begin
        return 0

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._crc.release()
            self._map.close()
