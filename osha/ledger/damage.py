"""What was skipped, unreadable or missing when a ledger was read: its damage, as one value.

A verdict computed from a damaged ledger may be wrong in any direction (one flipped bit in a
``monitor.state`` record can turn a 35 s outage into 100 % availability), so the analysis
never passes a damaged ledger silently: it collects every problem here, with where it is
and what was lost, and the verdict says so (see :mod:`osha.analysis.slo`).

Kinds of damage: a corrupt stretch of a segment (bad magic, impossible length, CRC mismatch,
a missing segment file), a record whose frame is good but whose payload is not a valid
message (wrong shape, unknown tag, wrong field type, a clock reading that is not finite), a
sequence gap (records of a sender missing), raw records missing from a raw segment that
exists, a damaged header record, and a cleanly closed ledger that does not match its
``closed.json`` (records missing, extra segments, a torn tail).
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from osha.errors import WireError
from osha.ledger.reader import LedgerReader, Tear
from osha.ledger.segment import ClosedMarker, SegmentInfo
from osha.ledger.sequence import SeqTracker
from osha.messages import Message, registry

__all__ = ["DamageCollector", "LedgerDamage", "close_problems", "require_finite"]

MAX_LISTED = 10


@dataclass(frozen=True, slots=True)
class LedgerDamage:
    """The damage of one ledger; empty (``count == 0``) for an intact one."""

    problems: tuple[str, ...] = ()  # the first MAX_LISTED, each saying where and what
    count: int = 0  # problems in all
    by_kind: tuple[tuple[str, int], ...] = ()  # ("corrupt stretch", 2), ("sequence gap", 1)...
    skipped_records: int = 0  # records known lost: damaged ones and those a gap says are missing
    skipped_bytes: int = 0  # bytes passed over to find the next good record

    @property
    def damaged(self) -> bool:
        return self.count > 0

    def summary(self) -> str:
        """One line: ``3 problems: 2 corrupt stretches (96 bytes skipped), 1 sequence gap``."""
        if not self.count:
            return "intact"
        kinds = ", ".join(f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in self.by_kind)
        lost = []
        if self.skipped_records:
            lost.append(f"{self.skipped_records} record(s) lost")
        if self.skipped_bytes:
            lost.append(f"{self.skipped_bytes} bytes skipped")
        tail = f" ({', '.join(lost)})" if lost else ""
        return f"{self.count} problem{'' if self.count == 1 else 's'}: {kinds}{tail}"


@dataclass(slots=True)
class DamageCollector:
    """Collects problems while a ledger is read; :meth:`result` freezes them."""

    problems: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    skipped_records: int = 0
    skipped_bytes: int = 0

    def add(self, kind: str, text: str, *, records: int = 0, skipped_bytes: int = 0) -> None:
        """One problem of ``kind`` (a short noun), described by ``text`` (where and what)."""
        self.kinds[kind] += 1
        self.skipped_records += records
        self.skipped_bytes += skipped_bytes
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)

    @property
    def count(self) -> int:
        return sum(self.kinds.values())

    def result(self) -> LedgerDamage:
        return LedgerDamage(
            problems=tuple(self.problems),
            count=self.count,
            by_kind=tuple(self.kinds.items()),
            skipped_records=self.skipped_records,
            skipped_bytes=self.skipped_bytes,
        )

    def add_gaps(self, seqs: SeqTracker) -> None:
        """The sequence gaps a :class:`SeqTracker` found: records of a sender missing."""
        listed = 0
        for gap in seqs.gaps:
            self.add("sequence gap", str(gap), records=gap.missing)
            listed += gap.missing
        more = seqs.gap_count - len(seqs.gaps)
        if more:
            self.kinds["sequence gap"] += more
            self.skipped_records += seqs.missing_records - listed

    def add_reader(self, reader: LedgerReader) -> None:
        """What the reader itself found in its last pass: corrupt stretches, missing segment
        files, raw records missing from raw segments that exist."""
        for c in reader.corruptions:
            kind = "missing segment" if c.reason == "segment file is missing" else "corrupt stretch"
            self.add(kind, str(c), skipped_bytes=c.skipped_bytes)
        for p in reader.raw_problems:
            self.add("raw-lane problem", str(p))


def close_problems(
    marker: ClosedMarker | None,
    segments: list[SegmentInfo],
    tear: Tear | None,
    *,
    records_read: int,
    retained: int,
) -> list[str]:
    """A cleanly closed ledger (``closed.json``) against what is on disk: the records it
    says were written, the segment it ended in, and no torn tail. [] when it matches (or the
    ledger was not closed: then there is nothing to compare)."""
    if marker is None:
        return []
    problems = []
    if marker.records != records_read + retained:
        problems.append(
            f"closed.json says {marker.records} records were written, {records_read} were read"
            + (f" and {retained} retained away" if retained else "")
        )
    extra = [seg.path.name for seg in segments if seg.number > marker.segments]
    if extra:
        problems.append(
            f"closed.json says the ledger ended in segment {marker.segments}, but "
            f"{', '.join(extra[:MAX_LISTED])} {'is' if len(extra) == 1 else 'are'} on disk too"
        )
    if tear is not None:
        problems.append(f"{tear}, in a ledger that was closed cleanly")
    return problems


@cache
def _float_fields(
    tag: str,
) -> tuple[Callable[[Message], tuple[Any, ...]], tuple[Callable[[Message], Any], ...]]:
    """A getter of the float fields that are never None (summed in C), and a getter of each
    that may be None (checked one by one; a nested record's field is ``outer.inner``)."""
    fields = [f for f in registry()[tag].fields if float in f.types]
    required = [f.name for f in fields if type(None) not in f.types]
    optional = tuple(operator.attrgetter(f.name) for f in fields if type(None) in f.types)
    if not required:
        return (lambda _msg: ()), optional
    getter = operator.attrgetter(*required)
    return ((lambda msg: (getter(msg),)) if len(required) == 1 else getter), optional


def require_finite(msg: Message) -> Message:
    """``msg`` if every float field (clock readings included) is finite or None; else a
    :class:`~osha.errors.WireError` naming the field: osha never writes NaN or infinity, so
    such a record is damaged, and would poison every figure computed from it."""
    required, optional = _float_fields(msg.TAG)
    total = sum(required(msg))  # NaN or an infinity anywhere makes the sum NaN or infinite
    if total - total == 0.0 and all(
        (v := get(msg)) is None or v - v == 0.0 for get in optional
    ):
        return msg
    for f in registry()[msg.TAG].fields:
        value = operator.attrgetter(f.name)(msg)  # a nested record's field is "outer.inner"
        if float in f.types and value is not None and not math.isfinite(value):
            raise WireError(
                f"{msg.TAG} from {msg.sender!r}: {f.name} is {value!r}, not a finite number",
                hint="osha never writes these: the record is damaged",
            )
    return msg
