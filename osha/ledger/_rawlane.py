"""The raw lane's file handling: the writer's side (append, rotate) and the reader's side
(read the ``count`` records a ``ledger.raw`` pointer names). Design: :mod:`osha.ledger.retention`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from osha.errors import WireError
from osha.ledger.segment import (
    FLAG_RAW,
    SEGMENT_HEADER_BYTES,
    SegmentHeader,
    SegmentInfo,
    fsync_directory,
    list_raw_segments,
    raw_segment_name,
)
from osha.messages import RawBatch
from osha.record import HEADER, HEADER_BYTES, MAGIC, MAX_RECORD_BYTES, scan_records
from osha.rundir import create_private_file
from osha.wire import decode, encode

__all__ = ["RawLaneReader", "RawLaneWriter", "RawProblem"]

_unpack_from = HEADER.unpack_from
# Every encoded ledger.raw pointer starts with these bytes (array header and tag).
_RAW_PREFIX = encode(RawBatch("ledger", 1, 0.0, 0.0, "x", 1, 0, 0))[: 2 + len(RawBatch.TAG)]


class RawLaneWriter:
    """Appends raw batches to ``raw-NNNNNN.seg`` files. ``on_error(action, exc)`` turns an
    ``OSError`` into the writer's :class:`~osha.errors.LedgerError` (it is raised)."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_size_bytes: int,
        first_number: int,
        on_error: Callable[[str, OSError], Exception],
    ) -> None:
        self.directory = directory
        self.segment_size_bytes = segment_size_bytes
        self._next_number = first_number
        self._on_error = on_error
        self._fd = -1
        self.segment = 0  # 0: no raw segment open yet
        self._bytes = 0
        self._dirty = False
        self.records_by_segment: dict[int, int] = {}

    def write(self, blob: bytes, count: int) -> tuple[int, int, bool]:
        """Append one batch; returns (segment, offset, rotated). Opens or rotates as needed."""
        rotated = False
        if self._fd < 0:
            self._open()
        elif (
            self._bytes > SEGMENT_HEADER_BYTES
            and self._bytes + len(blob) > self.segment_size_bytes
        ):
            self.fsync()
            self._close_fd()
            self._open()
            rotated = True
        offset = self._bytes
        view = memoryview(blob)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise self._on_error("write raw", exc) from exc
        self._bytes += len(blob)
        self._dirty = True
        self.records_by_segment[self.segment] = (
            self.records_by_segment.get(self.segment, 0) + count
        )
        return self.segment, offset, rotated

    def fsync(self) -> None:
        if self._fd >= 0 and self._dirty:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise self._on_error("fsync raw", exc) from exc
            self._dirty = False

    def close(self) -> None:
        self.fsync()
        self._close_fd()

    def closed_segments(self) -> list[SegmentInfo]:
        """Every raw segment on disk except the open one, oldest first."""
        return [s for s in list_raw_segments(self.directory) if s.number != self.segment]

    def _open(self) -> None:
        number = self._next_number
        path = self.directory / raw_segment_name(number)
        try:
            self._fd = create_private_file(path, os.O_WRONLY | os.O_EXCL | os.O_APPEND)
            os.write(self._fd, SegmentHeader(number, flags=FLAG_RAW).pack())
            os.fsync(self._fd)
            fsync_directory(self.directory)
        except OSError as exc:
            raise self._on_error("create raw", exc) from exc
        self.segment = number
        self._next_number = number + 1
        self._bytes = SEGMENT_HEADER_BYTES
        self._dirty = False

    def _close_fd(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError as exc:
                raise self._on_error("close raw", exc) from exc
            self._fd = -1


@dataclass(frozen=True, slots=True)
class RawProblem:
    """A pointer whose raw records could not all be read from a raw segment that exists."""

    segment: int
    offset: int
    reason: str

    def __str__(self) -> str:
        name = raw_segment_name(self.segment)
        return f"raw records missing in {name} at byte {self.offset}: {self.reason}"


class RawLaneReader:
    """Reads raw batches for the main-lane reader. Sequential pointers read sequentially:
    one open file and one buffered position, reused while the next pointer continues there."""

    def __init__(self, directory: Path, chunk_bytes: int) -> None:
        self.segments = {s.number: s for s in list_raw_segments(directory)}
        self.chunk_bytes = chunk_bytes
        self.retained_records = 0
        self.problems: list[RawProblem] = []
        self._file: BinaryIO | None = None
        self._number = 0
        self._buf = b""
        self._base = 0  # file offset of _buf[0]
        self._i = 0

    def splice(
        self, item: tuple[int, list[int], list[bytes]], want_offsets: bool
    ) -> tuple[int, list[int], list[bytes]]:
        """Insert after each ``ledger.raw`` pointer of a batch the raw records it names (a
        pointer that does not decode is left alone: the reader's caller counts it damaged)."""
        number, offsets, batch = item
        out: list[bytes] | None = None
        out_offsets: list[int] = []
        for k, payload in enumerate(batch):
            if payload.startswith(_RAW_PREFIX):
                if out is None:
                    out = batch[:k]
                    out_offsets = offsets[:k] if want_offsets else []
                try:
                    pointer = decode(payload)
                except WireError:
                    pointer = None
                out.append(payload)
                if want_offsets:
                    out_offsets.append(offsets[k])
                if isinstance(pointer, RawBatch):
                    records = self.read(pointer.segment, pointer.offset, pointer.count)
                    out.extend(records)
                    if want_offsets:
                        out_offsets.extend([offsets[k]] * len(records))
            elif out is not None:
                out.append(payload)
                if want_offsets:
                    out_offsets.append(offsets[k])
        if out is None:
            return item
        return number, out_offsets, out

    def read(self, segment: int, offset: int, count: int) -> list[bytes]:
        """The ``count`` payloads at ``offset`` of raw segment ``segment`` ([] if retained)."""
        if segment not in self.segments:
            self.retained_records += count
            return []
        if segment != self._number or self._base + self._i != offset:
            self._seek(segment, offset)
        out: list[bytes] = []
        while len(out) < count:
            if not self._fill(HEADER_BYTES):
                return self._missing(segment, "segment ends early", out)
            magic, length, _crc = _unpack_from(self._buf, self._i)
            if magic == MAGIC and not self._fill(HEADER_BYTES + min(length, MAX_RECORD_BYTES)):
                return self._missing(segment, "bad record header", out)
            got, self._i, bad = scan_records(self._buf, self._i, count=count - len(out))
            out += got
            if bad:  # the damage, named as the main lane's reader names it
                return self._missing(segment, bad, out)
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._number = 0

    def _missing(self, segment: int, why: str, out: list[bytes]) -> list[bytes]:
        self.problems.append(RawProblem(segment, self._base + self._i, why))
        self._number = 0  # force a fresh seek next time
        return out

    def _seek(self, segment: int, offset: int) -> None:
        if segment != self._number or self._file is None:
            self.close()
            self._file = self.segments[segment].path.open("rb", buffering=0)
            self._number = segment
        self._file.seek(offset)
        self._buf = b""
        self._base = offset
        self._i = 0

    def _fill(self, need: int) -> bool:
        assert self._file is not None
        while len(self._buf) - self._i < need:
            more = self._file.read(max(self.chunk_bytes, need))
            if not more:
                return False
            self._buf = self._buf[self._i :] + more
            self._base += self._i
            self._i = 0
        return True
