"""The ledger reader: streams records across segments in bounded memory.

Reading is chunked (``chunk_bytes``, 1 MiB by default): memory stays below about
``chunk_bytes + MAX_RECORD_BYTES`` whatever the ledger's size.

What can go wrong, and what the reader does:

- **Torn tail** (:class:`Tear`): the last segment ends inside a record, as after ``kill -9`` or a
  power loss: fewer bytes than a record header, a good header whose length runs past the end
  of the file, or only zero bytes (space the file system allocated but never wrote). Tolerated;
  reported in :attr:`LedgerReader.tear`. Everything before it is read.
- **Corruption** (:class:`Corruption`): a bad magic, an impossible length or a CRC mismatch
  anywhere else. Reported with segment and byte offset in :attr:`LedgerReader.corruptions`.
  With ``resync=True`` the reader scans forward for the next record whose magic, length and
  CRC are all valid and continues from there; with ``resync=False`` it stops.

Issues are reset at the start of each iteration and are complete when the iteration ends.

A ledger that was **resumed** (:meth:`~osha.ledger.LedgerWriter.resume`) has a segment flagged
``FLAG_RESUMED``: the segment before it may end torn, like a last segment; such tears are in
:attr:`LedgerReader.tears` (with the final one, which is also :attr:`LedgerReader.tear`).

A ledger with a **raw lane** (see :mod:`osha.ledger.retention`): each ``ledger.raw`` pointer is
followed, in every iteration, by the raw records it names, read from the raw lane, so the order
is the writer's. Raw records report the pointer's position (they have no main-lane position).
Records whose raw segment was retained away are counted in :attr:`LedgerReader.retained_records`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from osha.errors import WireError
from osha.ledger._problems import Corruption, Position, RawRecord, Tear
from osha.ledger._rawlane import RawLaneReader, RawProblem
from osha.ledger._resync import MAX_RECORD_BYTES, Resyncer, open_segment_file
from osha.ledger.header import read_header_copy
from osha.ledger.segment import (
    FLAG_RESUMED,
    SEGMENT_HEADER_BYTES,
    SegmentHeader,
    SegmentInfo,
    list_raw_segments,
    list_segments,
    read_closed_marker,
    read_segment_flags,
    require_ledger_directory,
)
from osha.messages import LedgerHeader, Message
from osha.record import HEADER, HEADER_BYTES, scan_records
from osha.wire import decode

__all__ = [
    "MAX_RECORD_BYTES",
    "Corruption",
    "LedgerReader",
    "Position",
    "RawRecord",
    "Tear",
]

_unpack_from = HEADER.unpack_from


class _Window:
    """A sliding window over one segment file: ``buf[i:]`` is unread, ``base`` is buf's offset."""

    __slots__ = ("base", "buf", "chunk_bytes", "eof", "file", "i")

    def __init__(self, file: BinaryIO, start: int, chunk_bytes: int) -> None:
        self.file = file
        self.chunk_bytes = chunk_bytes
        file.seek(start)
        self.buf = b""
        self.base = start
        self.i = 0
        self.eof = False

    def seek(self, offset: int) -> None:
        """Continue reading at ``offset`` (after a resync)."""
        self.file.seek(offset)
        self.buf = b""
        self.base = offset
        self.i = 0
        self.eof = False

    def fill(self, need: int) -> bool:
        """Make at least ``need`` unread bytes available; False if the file ends first."""
        while len(self.buf) - self.i < need:
            if self.eof:
                return False
            more = self.file.read(max(self.chunk_bytes, need - (len(self.buf) - self.i)))
            if not more:
                self.eof = True
                return False
            self.buf = self.buf[self.i :] + more
            self.base += self.i
            self.i = 0
        return True


class LedgerReader:
    """Reads a ledger directory. Iterate with :meth:`batches`, :meth:`payloads`,
    :meth:`records` or :meth:`messages`."""

    def __init__(
        self, directory: Path, *, resync: bool = True, chunk_bytes: int = 1024 * 1024
    ) -> None:
        self.directory = require_ledger_directory(Path(directory))
        self.resync = resync
        self.chunk_bytes = chunk_bytes
        self.corruptions: list[Corruption] = []
        self.tear: Tear | None = None
        self.tears: list[Tear] = []
        self.stopped_early = False
        self.end = Position(1, SEGMENT_HEADER_BYTES)
        self.segments: list[SegmentInfo] = []
        self.retained_records = 0
        self.raw_problems: list[RawProblem] = []
        self._final = 0
        self._resyncer: Resyncer | None = None

    # -- convenience -----------------------------------------------------------------------

    def payloads(self) -> Iterator[bytes]:
        """Every good record's payload, in order."""
        for batch in self.batches():
            yield from batch

    def records(self, start: Position | None = None) -> Iterator[RawRecord]:
        """Every good record with its position, from ``start`` (a record boundary) on."""
        for segment, offsets, batch in self._scan(start, want_offsets=True):
            for offset, payload in zip(offsets, batch, strict=True):
                yield RawRecord(segment, offset, payload)

    def messages(self) -> Iterator[Message]:
        """Every good record, decoded (raises :class:`~osha.errors.WireError` on a bad one)."""
        for batch in self.batches():
            for payload in batch:
                yield decode(payload)

    def batches(self) -> Iterator[list[bytes]]:
        """Payloads in lists, one list per chunk read: the fastest way through a ledger."""
        for _segment, _offsets, batch in self._scan(None, want_offsets=False):
            yield batch

    def located_batches(
        self, start: Position | None = None
    ) -> Iterator[tuple[int, list[int], list[bytes]]]:
        """``(segment, offsets, payloads)``: :meth:`batches` with where each record starts,
        from ``start`` (a record boundary) on. After the iteration, :attr:`end` is where the
        next record would start: a ledger still being written is read on from there."""
        return self._scan(start, want_offsets=True)

    def header(self) -> LedgerHeader | None:
        """The ledger header record (the first record of segment 1); if that record is
        damaged, the copy the writer kept (``header.rec``); None if neither is good."""
        for record in self.records():
            try:
                msg = decode(record.payload)
            except WireError:
                break
            if isinstance(msg, LedgerHeader) and record.segment == 1:
                return msg
            break
        return self.header_copy()

    def header_copy(self) -> LedgerHeader | None:
        """The header's second copy, ``header.rec`` (None if missing or damaged)."""
        payload = read_header_copy(self.directory)
        try:
            msg = decode(payload) if payload is not None else None
        except WireError:
            return None
        return msg if isinstance(msg, LedgerHeader) else None

    @property
    def closed_cleanly(self) -> bool:
        """Whether the writer left its clean-close marker."""
        return read_closed_marker(self.directory) is not None

    # -- scanning --------------------------------------------------------------------------

    def _scan(
        self, start: Position | None, *, want_offsets: bool
    ) -> Iterator[tuple[int, list[int], list[bytes]]]:
        self.corruptions = []
        self.tear = None
        self.tears = []
        self.stopped_early = False
        self.retained_records = 0
        self.raw_problems = []
        self.segments = list_segments(self.directory)
        self._final = self.segments[-1].number if self.segments else 0
        raw = (
            RawLaneReader(self.directory, self.chunk_bytes)
            if list_raw_segments(self.directory)
            else None
        )
        try:
            for item in self._scan_main(start, want_offsets):
                yield item if raw is None else raw.splice(item, want_offsets)
        finally:
            if raw is not None:
                raw.close()
                self.retained_records = raw.retained_records
                self.raw_problems = raw.problems

    def _scan_main(
        self, start: Position | None, want_offsets: bool
    ) -> Iterator[tuple[int, list[int], list[bytes]]]:
        first = start.segment if start else 1
        expected = 1
        for index, seg in enumerate(self.segments):
            while expected < seg.number:
                if expected >= first:
                    self.corruptions.append(Corruption(expected, 0, "segment file is missing"))
                    if not self.resync:
                        self.stopped_early = True
                        return
                expected += 1
            expected = seg.number + 1
            if seg.number < first:
                continue
            is_last = seg is self.segments[-1] or _resumed_after(self.segments, index)
            offset = start.offset if start and seg.number == start.segment else 0
            yield from self._scan_segment(seg, offset, is_last, want_offsets)
            if self.stopped_early:
                return

    def _scan_segment(
        self, seg: SegmentInfo, start: int, is_last: bool, want_offsets: bool
    ) -> Iterator[tuple[int, list[int], list[bytes]]]:
        with open_segment_file(seg.path) as file:
            try:
                yield from self._scan_open_segment(seg, file, start, is_last, want_offsets)
            finally:
                if self._resyncer is not None:
                    self._resyncer.close()
                    self._resyncer = None

    def _scan_open_segment(
        self, seg: SegmentInfo, file: BinaryIO, start: int, is_last: bool, want_offsets: bool
    ) -> Iterator[tuple[int, list[int], list[bytes]]]:
        number = seg.number
        self.end = Position(number, 0)
        if not self._check_segment_header(file, number, is_last):
            return
        win = _Window(file, max(start, SEGMENT_HEADER_BYTES), self.chunk_bytes)
        self.end = Position(number, win.base)
        while True:
            offsets: list[int] = []
            buf = win.buf
            n = len(buf)
            payloads, i, bad = scan_records(
                buf, win.i, offsets=offsets if want_offsets else None, base=win.base
            )
            win.i = i
            self.end = Position(number, win.base + i)
            if payloads:
                yield number, offsets, payloads
            if bad:
                if not self._recover(seg, win, is_last, bad):
                    return
                continue
            need = HEADER_BYTES
            if n - i >= HEADER_BYTES:
                need += _unpack_from(buf, i)[1]
                if need > self.chunk_bytes and not self._plausible(win):
                    if not self._recover(seg, win, is_last, "CRC mismatch"):
                        return
                    continue
            if not win.fill(need):
                if len(win.buf) == win.i:
                    return
                why = "record runs past the end of the segment"
                if not self._recover(seg, win, is_last, why, maybe_tear=True):
                    return

    def _plausible(self, win: _Window) -> bool:
        """Whether the long record at ``win.i`` may be whole and valid, checked without reading
        its payload (so that fake headers claiming huge lengths cost no more than a short one);
        True also when it runs past the end of the file (a tear, decided by the caller)."""
        resyncer = self._resyncer
        if resyncer is None:
            resyncer = self._resyncer = Resyncer(win.file)
        return resyncer.check(win.base + win.i) is not False

    def _check_segment_header(self, file: BinaryIO, number: int, is_last: bool) -> bool:
        """Read and check a segment's file header; False if reading this segment must stop."""
        head = file.read(SEGMENT_HEADER_BYTES)
        if len(head) < SEGMENT_HEADER_BYTES:
            self._tail(number, 0, len(head), is_last, "segment ends inside its file header")
            return False
        header = SegmentHeader.unpack(head)
        if isinstance(header, str) or header.number != number:
            why = header if isinstance(header, str) else f"header says segment {header.number}"
            self.corruptions.append(Corruption(number, 0, why))
            if not self.resync:
                self.stopped_early = True
                return False
        return True

    def _tail(self, number: int, offset: int, size: int, is_last: bool, why: str) -> None:
        """An incomplete record at the end of a segment: a tear if last, else corruption."""
        if is_last:
            self._torn(Tear(number, offset, size))
        else:
            self.corruptions.append(Corruption(number, offset, why, skipped_bytes=size))
            if not self.resync:
                self.stopped_early = True

    def _torn(self, tear: Tear) -> None:
        self.tears.append(tear)
        if tear.segment == self._final:
            self.tear = tear

    def _recover(
        self, seg: SegmentInfo, win: _Window, is_last: bool, why: str, *, maybe_tear: bool = False
    ) -> bool:
        """After a bad or incomplete record at ``win.i``: True if reading resumes at the next
        good record. With ``maybe_tear`` (the record runs past the end of the file) and no good
        record after it in the last segment, it is a torn tail rather than corruption."""
        number = seg.number
        bad_offset = win.base + win.i
        resyncer = self._resyncer
        if resyncer is None:
            resyncer = self._resyncer = Resyncer(win.file)
        if is_last and not maybe_tear:
            zeros = resyncer.zeros_from(bad_offset)
            if zeros is not None:
                self._torn(Tear(number, bad_offset, zeros))
                return False
        found = resyncer.next_record(bad_offset + 1)
        if found is None:
            size = resyncer.size - bad_offset
            if maybe_tear and is_last:
                self._torn(Tear(number, bad_offset, size))
                return False
            self.corruptions.append(Corruption(number, bad_offset, why, skipped_bytes=size))
            self.stopped_early = not self.resync
            return False
        self.corruptions.append(Corruption(number, bad_offset, why, found - bad_offset))
        if not self.resync:
            self.stopped_early = True
            return False
        win.seek(found)
        return True


def _resumed_after(segments: list[SegmentInfo], index: int) -> bool:
    """Whether the segment after ``segments[index]`` starts a resumed part of the ledger."""
    if index + 1 >= len(segments):
        return False
    flags = read_segment_flags(segments[index + 1].path)
    return flags is not None and bool(flags & FLAG_RESUMED)
