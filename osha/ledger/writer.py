"""The ledger writer: appends framed records to segment files, with group-commit fsync.

Durability, precisely:

- every batch is handed to the OS with ``os.write`` before :meth:`LedgerWriter.append_framed`
  returns, so killing *this process* loses nothing that was appended (the page cache has it);
- the segment is fsynced (group commit) when ``flush_records`` records or ``flush_interval_s``
  seconds have accumulated since the last fsync, whichever comes first, and on :meth:`sync`;
  a host crash or power loss therefore loses at most the last flush interval;
- a new segment is fsynced right after its header is written, and the directory is fsynced
  after the segment file is created, so the segment's name survives a crash too;
- :meth:`close` fsyncs the last segment, writes ``closed.json`` and fsyncs the directory.
With a :class:`~osha.ledger.retention.RetentionPolicy` (``LedgerOptions.retention``), raw
samples go to a raw lane (:meth:`append_raw`), fsynced first, its oldest segments deleted by
the policy (:mod:`osha.ledger.retention`). :meth:`resume` reopens a ledger whose writer died,
continuing in a new segment flagged ``FLAG_RESUMED``. Files are private (:mod:`osha.rundir`).
The writer is not thread-safe: one owner (the recorder actor) calls it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from osha.errors import LedgerError
from osha.ledger._rawlane import RawLaneWriter
from osha.ledger.header import new_header, write_header_copy
from osha.ledger.retention import RetentionPolicy, expired_segments
from osha.ledger.segment import (
    CLOSED_MARKER,
    FLAG_RESUMED,
    SEGMENT_HEADER_BYTES,
    ClosedMarker,
    SegmentHeader,
    fsync_directory,
    list_raw_segments,
    list_segments,
    read_closed_marker,
    require_ledger_directory,
    segment_name,
)
from osha.messages import LedgerHeader, LedgerResumed, Message, RawBatch, RawRetained, stamp
from osha.record import frame_record, frame_records
from osha.redaction import redact_message
from osha.rundir import create_private_file, make_private_dir, write_private_atomic
from osha.wire import encode

__all__ = ["LedgerOptions", "LedgerWriter", "new_header"]

MIB = 1024 * 1024
_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerOptions:
    """How a ledger is written. The defaults suit a run; tests shrink them."""

    segment_size_bytes: int = 64 * MIB
    flush_interval_s: float = 0.05
    flush_records: int = 10_000
    retention: RetentionPolicy | None = None  # None: no raw lane, raw samples stay in main

    def __post_init__(self) -> None:
        if self.segment_size_bytes < 4096:
            raise ValueError(f"segment_size_bytes={self.segment_size_bytes} is below 4096")
        if self.flush_interval_s <= 0 or self.flush_records <= 0:
            raise ValueError("flush_interval_s and flush_records must be positive")


class LedgerWriter:
    """Appends records to a new ledger directory. Create one with :meth:`create`."""

    def __init__(self, directory: Path, options: LedgerOptions) -> None:
        """Use :meth:`create`; this only sets the fields."""
        self.directory = directory
        self.options = options
        self._fd = -1
        self._segment = 0
        self._segment_bytes = 0
        self._records = 0  # appended, i.e. handed to the OS
        self._synced_records = 0  # fsynced
        self._last_sync_mono_s = time.monotonic()
        self._failed: LedgerError | None = None
        self._closed = False
        self._seq = 0  # the writer's own records (sender "ledger")
        self._raw: RawLaneWriter | None = None
        if options.retention is not None:
            self._raw = RawLaneWriter(
                directory,
                segment_size_bytes=options.retention.segment_size_bytes,
                first_number=1,
                on_error=self._fail,
            )
        self.retained_segments = 0
        self.retained_records = 0

    # -- life cycle ------------------------------------------------------------------------

    @classmethod
    def create(
        cls, directory: Path, header: LedgerHeader, *, options: LedgerOptions | None = None
    ) -> Self:
        """Create ``directory`` (it must not hold a ledger yet) and write the header record."""
        writer = cls(directory, options or LedgerOptions())
        try:
            make_private_dir(directory)
            if any(directory.iterdir()):
                raise LedgerError(
                    f"ledger directory is not empty: {directory}",
                    hint="each run needs a new directory; pick a new run id or remove the old one",
                )
            fsync_directory(directory.parent)
        except OSError as exc:
            if isinstance(exc, LedgerError):
                raise
            raise LedgerError(
                f"cannot create ledger directory {directory}: {exc.strerror}",
                hint="check the path, free disk space and permissions",
            ) from exc
        writer._open_segment(1)
        payload = encode(redact_message(header))
        writer.append_framed(frame_record(payload), 1)
        writer.sync()
        try:  # a second copy, so that a damaged first record does not lose the run's facts
            write_header_copy(directory, payload)
        except OSError as exc:
            raise writer._fail("write the header copy of", exc) from exc
        return writer

    @classmethod
    def resume(
        cls, directory: Path, *, options: LedgerOptions | None = None, reason: str = ""
    ) -> Self:
        """Reopen a ledger whose writer died (``kill -9``, reboot) to append to it.

        The ledger is read once (bounded memory) to count its records; writing continues in a
        new segment after the last one, flagged ``FLAG_RESUMED`` (so the torn tail the dead
        writer may have left is read as a tear, not corruption), starting with a
        ``ledger.resumed`` record that makes the gap visible. A ledger that was closed cleanly
        is refused: its run ended, there is nothing to resume.
        """
        from osha.ledger.verify import verify  # noqa: PLC0415 - verify imports the reader

        require_ledger_directory(directory)
        if read_closed_marker(directory) is not None:
            raise LedgerError(
                f"the ledger {directory} was closed cleanly: its run ended",
                hint="resume is for a run whose osha process died; start a new run instead",
            )
        report = verify(directory)
        writer = cls(directory, options or LedgerOptions())
        if writer._raw is not None:
            raws = list_raw_segments(directory)
            writer._raw = RawLaneWriter(
                directory,
                segment_size_bytes=writer._raw.segment_size_bytes,
                first_number=(raws[-1].number + 1) if raws else 1,
                on_error=writer._fail,
            )
            writer._raw.records_by_segment.update(report.raw_records_by_segment)
        previous = list_segments(directory)[-1].number
        writer._records = report.records + report.retained_records
        writer._synced_records = writer._records
        writer._open_segment(previous + 1, flags=FLAG_RESUMED)
        tear_bytes = sum(t.size_bytes for t in report.tears)
        writer.append(
            writer._own(
                LedgerResumed,
                previous_records=writer._records,
                previous_segment=previous,
                last_wall_s=report.last_wall_s or 0.0,
                tear_bytes=tear_bytes,
                reason=reason,
            )
        )
        writer.sync()
        return writer

    def close(self) -> None:
        """Fsync, close the segment, write the clean-close marker and fsync the directory."""
        if self._closed:
            return
        self.sync()
        try:
            if self._raw is not None:
                self._raw.close()
            os.close(self._fd)
            self._fd = -1
            marker = ClosedMarker(self._records, self._segment, time.time())
            write_private_atomic(self.directory / CLOSED_MARKER, marker.dump())
            fsync_directory(self.directory)
        except OSError as exc:
            raise self._fail("close", exc) from exc
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._closed and self._failed is None:
            self.close()

    # -- appending -------------------------------------------------------------------------

    def append_framed(self, blob: bytes, count: int) -> None:
        """Append ``count`` records already framed by :func:`osha.record.frame_records`.

        The blob is written as it is (no decoding, no redaction: see :mod:`osha.redaction`
        for the children's side of that contract) and never straddles two segments.
        """
        self._check()
        size = len(blob)
        if (
            self._segment_bytes > SEGMENT_HEADER_BYTES
            and self._segment_bytes + size > self.options.segment_size_bytes
        ):
            self._rotate()
        self._write(blob)
        self._segment_bytes += size
        self._records += count
        pending = self._records - self._synced_records
        if pending >= self.options.flush_records or (
            time.monotonic() - self._last_sync_mono_s >= self.options.flush_interval_s
        ):
            self.sync()

    def append_raw(self, blob: bytes, count: int, source: str) -> None:
        """Append ``count`` pre-framed raw samples of ``source`` (one child's RAW_RECORDS
        batch). Without a retention policy they go to the main lane like any batch."""
        raw = self._raw
        if raw is None:
            self.append_framed(blob, count)
            return
        self._check()
        segment, offset, rotated = raw.write(blob, count)
        self._records += count
        pointer = self._own(RawBatch, source=source, segment=segment, offset=offset, count=count)
        self.append_framed(frame_record(encode(pointer)), 1)
        if rotated:
            self._apply_retention()

    def append(self, msg: Message) -> None:
        """Redact, encode, frame and append one message (the supervisor's own records)."""
        self.append_framed(frame_record(encode(redact_message(msg))), 1)

    def append_many(self, msgs: Iterable[Message]) -> None:
        """Redact, encode, frame and append several messages as one batch."""
        payloads = [encode(redact_message(m)) for m in msgs]
        if payloads:
            self.append_framed(frame_records(payloads), len(payloads))

    def append_payloads(self, payloads: list[bytes]) -> None:
        """Frame and append encoded messages. The caller has redacted them already."""
        if payloads:
            self.append_framed(frame_records(payloads), len(payloads))

    def sync(self) -> None:
        """Group commit: fsync the current segment now."""
        self._check()
        if self._synced_records != self._records:
            if self._raw is not None:
                self._raw.fsync()  # raw data first: a durable pointer never points at nothing
            try:
                self._fsync()
            except OSError as exc:
                raise self._fail("fsync", exc) from exc
        self._synced_records = self._records
        self._last_sync_mono_s = time.monotonic()

    def sync_if_due(self) -> bool:
        """Fsync if records are pending for ``flush_interval_s`` or more. True if it did."""
        if self._closed or self._failed is not None or self._synced_records == self._records:
            return False
        if time.monotonic() - self._last_sync_mono_s < self.options.flush_interval_s:
            return False
        self.sync()
        return True

    # -- state -----------------------------------------------------------------------------

    @property
    def records(self) -> int:
        """Records appended (handed to the OS), the header included."""
        return self._records

    @property
    def synced_records(self) -> int:
        """Records known to be on disk (fsynced)."""
        return self._synced_records

    @property
    def segment(self) -> int:
        """The number of the segment being written."""
        return self._segment

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def failure(self) -> LedgerError | None:
        """The write error that broke this writer, if any."""
        return self._failed

    # -- internals -------------------------------------------------------------------------

    def _check(self) -> None:
        if self._failed is not None:
            raise LedgerError(
                f"the ledger writer for {self.directory} failed earlier: {self._failed}",
                hint=self._failed.hint,
            ) from self._failed
        if self._closed:
            raise LedgerError(
                f"the ledger {self.directory} is closed",
                hint="this is a bug in the caller: nothing may be written after close()",
            )

    def _fail(self, action: str, exc: OSError) -> LedgerError:
        name = segment_name(self._segment) if self._segment else "(no segment)"
        self._failed = LedgerError(
            f"cannot {action} ledger segment {self.directory / name}: {exc.strerror or exc}",
            hint="check free disk space and permissions; records fsynced before this are intact"
            " and `osha ledger verify` reads them",
        )
        return self._failed

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            raise self._fail("write", exc) from exc

    def _fsync(self) -> None:
        os.fsync(self._fd)

    def _own(self, cls: type[_M], /, **fields: Any) -> _M:
        """One of the writer's own bookkeeping records (sender ``"ledger"``)."""
        self._seq += 1
        return stamp(cls, "ledger", self._seq, **fields)

    def _apply_retention(self) -> None:
        """Delete the raw segments the policy expires: record, fsync, then unlink."""
        raw = self._raw
        policy = self.options.retention
        assert raw is not None
        assert policy is not None
        for seg, rule in expired_segments(raw.closed_segments(), policy):
            records = raw.records_by_segment.pop(seg.number, 0)
            self.append(
                self._own(
                    RawRetained,
                    segment=seg.number,
                    records=records,
                    size_bytes=seg.size_bytes,
                    rule=rule,
                )
            )
            self.sync()
            try:
                seg.path.unlink()
                fsync_directory(self.directory)
            except OSError as exc:
                raise self._fail("delete raw", exc) from exc
            self.retained_segments += 1
            self.retained_records += records

    def _open_segment(self, number: int, *, flags: int = 0) -> None:
        path = self.directory / segment_name(number)
        try:
            fd = create_private_file(path, os.O_WRONLY | os.O_EXCL | os.O_APPEND)
        except OSError as exc:
            self._segment = number
            raise self._fail("create", exc) from exc
        self._fd = fd
        self._segment = number
        self._write(SegmentHeader(number, flags=flags).pack())
        self._segment_bytes = SEGMENT_HEADER_BYTES
        try:
            os.fsync(fd)
            fsync_directory(self.directory)
        except OSError as exc:
            raise self._fail("create", exc) from exc

    def _rotate(self) -> None:
        self.sync()
        try:
            os.close(self._fd)
        except OSError as exc:
            raise self._fail("close", exc) from exc
        self._fd = -1
        self._open_segment(self._segment + 1)
