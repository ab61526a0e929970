"""Retention of raw samples: the raw lane, and the policy that deletes its oldest segments.

Design
------
A soak writes millions of ``monitor.sample``/``monitor.metric`` records (per-interval
summaries: :data:`RAW_TAGS`). Everything else — state changes, faults and their leases,
crashes, phases, verdicts — is small and must be kept forever. So a ledger with a
:class:`RetentionPolicy` has two lanes in its directory::

    000001.seg 000002.seg ...        main lane: every record except raw samples, in order
    raw-000001.seg raw-000002.seg    raw lane: raw samples only (segment flag FLAG_RAW)

**Routing happens in the child**, not in the recorder: the child's outbox already knows each
record's class when it encodes it, so it sends raw records in RAW_RECORDS frames and the rest in
RECORDS frames, splitting a batch only where the kind changes (so each frame's records are
consecutive in the sender's ``seq``). The parent still writes every batch as one blob without
looking inside it: the hot path gains one frozenset lookup per record in the child and nothing
per record in the main process.

**Order is kept exactly.** For each raw batch the writer appends the blob to the raw lane and
then a small pointer record, ``ledger.raw`` (source, raw segment, offset, count), to the main
lane. The reader splices the raw records back in at the pointer, so a replay sees the same
record order as without a raw lane (the report's figures do not change). Raw data is fsynced
before the main lane, so a durable pointer never points at lost data.

**Retention** runs when the raw lane rotates: closed raw segments beyond ``keep_segments``,
beyond ``keep_bytes`` in total, or older than ``keep_age_s`` (by modification time, i.e. when
the segment was last written) are deleted, oldest first. Before a segment is deleted, a
``ledger.retained`` record naming it is written *and fsynced*; only then is the file unlinked.

**Reading a retained ledger.** A pointer whose raw segment is gone yields nothing: the reader
counts those records (``retained_records``). ``osha ledger verify`` reports them as retained,
not as errors: a sender's sequence gap is *expected* when it is covered by that sender's
retained-away records (the pointers say whose they were), and a missing raw segment is
expected when a ``ledger.retained`` record names it. A missing raw segment that no
``ledger.retained`` explains is an error, as is a gap that retention does not cover.

Without a policy there is no raw lane: the ledger format is exactly what it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from osha.ledger.segment import SegmentInfo
from osha.messages import RAW_TAGS

__all__ = ["RAW_TAGS", "RetentionPolicy", "expired_segments"]

# RAW_TAGS (the only records retention may delete) is declared with the messages, where the
# child's outbox, which routes them, can import it without importing the ledger.


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """Which closed raw segments to keep. ``None`` means no limit of that kind; a segment is
    deleted as soon as any one limit is exceeded. The open raw segment is always kept."""

    keep_segments: int | None = None
    keep_bytes: int | None = None
    keep_age_s: float | None = None
    segment_size_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.keep_segments is not None and self.keep_segments < 0:
            raise ValueError(f"keep_segments={self.keep_segments} is negative")
        if self.keep_bytes is not None and self.keep_bytes < 0:
            raise ValueError(f"keep_bytes={self.keep_bytes} is negative")
        if self.keep_age_s is not None and self.keep_age_s < 0:
            raise ValueError(f"keep_age_s={self.keep_age_s} is negative")
        if self.segment_size_bytes < 4096:
            raise ValueError(f"segment_size_bytes={self.segment_size_bytes} is below 4096")


def expired_segments(
    closed: list[SegmentInfo],
    policy: RetentionPolicy,
    *,
    now_wall_s: float | None = None,
    mtimes_s: dict[int, float] | None = None,
) -> list[tuple[SegmentInfo, str]]:
    """The closed raw segments to delete, oldest first, each with the rule that expired it.

    ``closed`` must be sorted by number (oldest first). ``mtimes_s`` (segment number to
    modification time) is read from the files when not given.
    """
    now = time.time() if now_wall_s is None else now_wall_s
    doomed: dict[int, str] = {}
    if policy.keep_segments is not None and len(closed) > policy.keep_segments:
        for seg in closed[: len(closed) - policy.keep_segments]:
            doomed.setdefault(seg.number, "segments")
    if policy.keep_bytes is not None:
        total = 0
        for seg in reversed(closed):
            total += seg.size_bytes
            if total > policy.keep_bytes:
                doomed.setdefault(seg.number, "bytes")
    if policy.keep_age_s is not None:
        for seg in closed:
            mtime = mtimes_s[seg.number] if mtimes_s is not None else seg.path.stat().st_mtime
            if now - mtime > policy.keep_age_s:
                doomed.setdefault(seg.number, "age")
    return [(seg, doomed[seg.number]) for seg in closed if seg.number in doomed]
