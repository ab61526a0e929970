"""Verify a ledger, and summarise it: CRCs, segment headers, the header record, per-sender
sequence numbers and clean close. ``osha ledger verify`` and ``osha ledger show`` print this.

Sequence rule: for each sender, ``seq`` is the previous one plus 1, or 1 again, which starts a
new incarnation (the sender was restarted). The first record of a sender must have seq 1.
Anything else is a gap: records of that sender are missing or out of order.

Retention (see :mod:`osha.ledger.retention`) deletes raw samples on purpose. Their
``ledger.raw`` pointers say how many records of which sender went with a deleted raw segment;
a sender's jump in ``seq`` that those records cover is a *retained gap*: counted and shown,
not an error (a new incarnation whose first records were retained away is recognised the
same way). A raw segment that is missing is expected only when a ``ledger.retained`` record
names it; otherwise it is an error. A ledger resumed after its writer died
(``ledger.resumed``) may hold a torn tail before each resumed part: a warning, like the tear
of a killed run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from osha.errors import EXIT_FAILED, EXIT_OK, WireError
from osha.ledger._rawlane import RawProblem
from osha.ledger.damage import close_problems, require_finite
from osha.ledger.header import HEADER_COPY
from osha.ledger.reader import Corruption, LedgerReader, Position, Tear
from osha.ledger.segment import list_raw_segments, raw_segment_name, read_closed_marker
from osha.ledger.sequence import MAX_LISTED, SeqGap, SeqTracker
from osha.messages import (
    LedgerHeader,
    LedgerResumed,
    Message,
    RawBatch,
    RawRetained,
    RunStopped,
)
from osha.wire import decode

__all__ = ["MAX_LISTED", "SeqGap", "VerifyReport", "verify"]


@dataclass(slots=True)
class VerifyReport:
    """Everything ``verify`` found. :meth:`exit_code` turns it into a verdict."""

    directory: Path
    segments: int = 0
    records: int = 0
    header: LedgerHeader | None = None
    header_problem: str = ""
    by_tag: Counter[str] = field(default_factory=Counter)
    by_sender: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    gaps: list[SeqGap] = field(default_factory=list)
    gap_count: int = 0
    undecodable: list[str] = field(default_factory=list)
    undecodable_count: int = 0
    corruptions: list[Corruption] = field(default_factory=list)
    stopped_early: bool = False
    tear: Tear | None = None
    first_wall_s: float | None = None
    last_wall_s: float | None = None
    closed_marker: bool = False
    marker_records: int | None = None
    run_stopped: RunStopped | None = None
    tears: list[Tear] = field(default_factory=list)
    resumes: list[LedgerResumed] = field(default_factory=list)
    retained_records: int = 0
    retained_segments: set[int] = field(default_factory=set)
    retained_gaps: int = 0
    unexplained_missing: list[int] = field(default_factory=list)
    raw_problems: list[RawProblem] = field(default_factory=list)
    raw_records_by_segment: dict[int, int] = field(default_factory=dict)
    close_problems: list[str] = field(default_factory=list)  # closed.json against the disk

    @property
    def closed_cleanly(self) -> bool:
        """The writer closed the ledger and the run recorded its end."""
        return self.closed_marker and self.run_stopped is not None

    @property
    def problems(self) -> int:
        """Corrupt records, undecodable records, sequence gaps and header problems."""
        return (
            len(self.corruptions)
            + self.undecodable_count
            + self.gap_count
            + (1 if self.header_problem else 0)
            + len(self.unexplained_missing)
            + len(self.raw_problems)
            + len(self.close_problems)
        )

    def exit_code(self, *, strict: bool = False) -> int:
        """0 when clean; 1 on any problem, and with ``strict`` also on a tear or unclean end."""
        if self.problems:
            return EXIT_FAILED
        if strict and (self.tear is not None or not self.closed_cleanly):
            return EXIT_FAILED
        return EXIT_OK

    def render(self, *, strict: bool = False, counts: bool = True) -> str:
        """One screen: verdict, problems, then counts by tag and sender."""
        lines = [f"ledger {self.directory}: {self.records} records in {self.segments} segments"]
        if self.header is not None:
            h = self.header
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.started_wall_s))
            lines.append(
                f"  run {h.run_id} on {h.host}, osha {h.osha_version}, schema "
                f"{h.schema_version}, seed {h.seed}, started {started}"
            )
        if self.first_wall_s is not None and self.last_wall_s is not None:
            lines.append(f"  time span {self.last_wall_s - self.first_wall_s:.3f} s")
        lines.append(f"  closed cleanly: {self._close_text()}")
        lines.extend(f"  ERROR {c}" for c in self.corruptions[:MAX_LISTED])
        if self.stopped_early:
            lines.append("  reading stopped at the first corruption (--resync reads past it)")
        if self.header_problem:
            lines.append(f"  ERROR {self.header_problem}")
        lines.extend(f"  ERROR {p}" for p in self.close_problems)
        lines.extend(f"  ERROR {g}" for g in self.gaps)
        if self.gap_count > len(self.gaps):
            lines.append(f"  ... {self.gap_count - len(self.gaps)} more sequence gaps")
        lines.extend(f"  ERROR {u}" for u in self.undecodable)
        if self.undecodable_count > len(self.undecodable):
            lines.append(f"  ... {self.undecodable_count - len(self.undecodable)} more")
        lines.extend(self._soak_lines())
        if counts:
            lines.append("  by tag:    " + _counts(self.by_tag))
            lines.append("  by sender: " + _counts(self.by_sender))
            if self.restarts:
                lines.append("  restarts (new incarnations): " + _counts(self.restarts))
        verdict = self.exit_code(strict=strict)
        if verdict == EXIT_OK:
            clean = self.tear is None and self.closed_cleanly
            lines.append("OK" if clean else "OK (with warnings)")
        else:
            lines.append(
                f"FAILED: {self.problems} problem(s)"
                + ("" if self.problems else " (--strict: torn tail or unclean close)")
            )
        return "\n".join(lines)

    def _soak_lines(self) -> list[str]:
        """Raw-lane problems, resumes, tears and retention: what long runs add."""
        lines: list[str] = []
        lines.extend(f"  ERROR {p}" for p in self.raw_problems[:MAX_LISTED])
        lines.extend(
            f"  ERROR raw segment {raw_segment_name(n)} is missing and no ledger.retained "
            "record explains it (deleted by hand?)"
            for n in self.unexplained_missing[:MAX_LISTED]
        )
        for resumed in self.resumes:
            gap_s = resumed.wall_s - resumed.last_wall_s
            lines.append(
                f"  NOTE resumed after a crash: gap of {gap_s:.1f} s after "
                f"{resumed.previous_records} records (segment {resumed.previous_segment} was "
                "the last of the previous part)"
            )
        lines.extend(f"  WARNING {t} [before a resume]" for t in self.tears if t != self.tear)
        if self.tear is not None and not self.close_problems:
            lines.append(f"  WARNING {self.tear}")
        if self.retained_records:
            lines.append(
                f"  NOTE retention: {self.retained_records} raw records in "
                f"{len(self.retained_segments)} raw segment(s) were deleted as configured; "
                f"{self.retained_gaps} sequence gap(s) are explained by them"
            )
        return lines

    def _close_text(self) -> str:
        if self.closed_cleanly:
            return "yes"
        if self.closed_marker:
            return "no: the ledger was closed but no run.stopped record was written"
        if self.run_stopped is not None:
            return "no: run.stopped is recorded but the writer never closed (killed while closing)"
        return "no: no clean-close marker (the run crashed or was killed)"


def _counts(counter: Counter[str], limit: int = 12) -> str:
    items = counter.most_common()
    text = ", ".join(f"{k}={v}" for k, v in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "") or "-"


def verify(directory: Path, *, resync: bool = True) -> VerifyReport:
    """Read the whole ledger once and check it. Memory is bounded by the number of senders."""
    reader = LedgerReader(directory, resync=resync)
    report = VerifyReport(directory=reader.directory)
    seqs = SeqTracker()
    raw_present = {s.number for s in list_raw_segments(reader.directory)}
    missing: set[int] = set()
    first = True
    for rec in reader.records():
        position = Position(rec.segment, rec.offset)
        try:
            msg = decode(rec.payload)
            require_finite(msg)
        except WireError as exc:
            report.undecodable_count += 1
            if len(report.undecodable) < MAX_LISTED:
                report.undecodable.append(f"undecodable record at {position}: {exc}")
            continue
        if first:
            first = False
            _check_header(report, msg, position)
        if isinstance(msg, RawBatch):
            by_seg = report.raw_records_by_segment
            by_seg[msg.segment] = by_seg.get(msg.segment, 0) + msg.count
            if msg.segment not in raw_present:
                missing.add(msg.segment)
                report.retained_records += msg.count
                seqs.retained(msg.source, msg.count)
        elif isinstance(msg, RawRetained):
            report.retained_segments.add(msg.segment)
        elif isinstance(msg, LedgerResumed):
            report.resumes.append(msg)
        _count(report, msg, position, seqs)
    if first and not reader.corruptions:
        report.header_problem = "the ledger holds no records: the header record is missing"
    elif first or report.header is None:
        report.header_problem = report.header_problem or "the header record is damaged"
    if report.header is None:
        report.header = reader.header_copy()
        if report.header is not None:
            report.header_problem += f"; its copy in {HEADER_COPY} was used"
    report.records = sum(report.by_tag.values()) + report.undecodable_count
    report.segments = len(reader.segments)
    report.corruptions = reader.corruptions
    report.stopped_early = reader.stopped_early
    report.tear = reader.tear
    report.tears = reader.tears
    report.raw_problems = reader.raw_problems
    report.unexplained_missing = sorted(missing - report.retained_segments)
    report.gaps, report.gap_count, report.restarts = seqs.gaps, seqs.gap_count, seqs.restarts
    report.retained_gaps = seqs.retained_gaps
    _check_close(report, reader)
    return report


def _check_close(report: VerifyReport, reader: LedgerReader) -> None:
    """``closed.json`` against what is on disk: a cleanly closed ledger is whole."""
    marker = read_closed_marker(reader.directory)
    report.closed_marker = marker is not None
    report.marker_records = marker.records if marker else None
    report.close_problems = close_problems(
        marker,
        reader.segments,
        report.tear,
        records_read=report.records,
        retained=report.retained_records,
    )


def _check_header(report: VerifyReport, msg: Message, position: Position) -> None:
    if isinstance(msg, LedgerHeader) and position.segment == 1:
        report.header = msg
    else:
        report.header_problem = f"the first record is {msg.TAG!r}, not 'ledger.header' ({position})"


def _count(report: VerifyReport, msg: Message, position: Position, seqs: SeqTracker) -> None:
    sender = msg.sender
    report.by_tag[msg.TAG] += 1
    report.by_sender[sender] += 1
    wall_s = msg.wall_s
    if report.first_wall_s is None or wall_s < report.first_wall_s:
        report.first_wall_s = wall_s
    if report.last_wall_s is None or wall_s > report.last_wall_s:
        report.last_wall_s = wall_s
    seqs.feed(sender, msg.seq, position.segment, position.offset)
    if isinstance(msg, RunStopped):
        report.run_stopped = msg
