"""Per-sender sequence numbers: the rule both ``verify`` and the analysis judge a ledger by.

For each sender, ``seq`` is the previous one plus 1, or 1 again, which starts a new
incarnation (the sender was restarted). The first record of a sender must have seq 1.
Anything else is a **gap**: records of that sender are missing or out of order.

Retention deletes raw samples on purpose: the ``ledger.raw`` pointers of a deleted raw segment
say how many records of which sender went with it (:meth:`SeqTracker.retained`); a jump in
``seq`` that those records cover is a *retained gap*: counted, not an error (a new
incarnation whose first records were retained away is recognised the same way).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from osha.ledger.reader import Position

__all__ = ["MAX_LISTED", "SeqGap", "SeqTracker"]

MAX_LISTED = 10  # gaps listed in full; the rest are counted


@dataclass(frozen=True, slots=True)
class SeqGap:
    """A sender's sequence number jumped: ``expected`` was due, ``got`` arrived."""

    sender: str
    expected: int
    got: int
    position: Position

    @property
    def missing(self) -> int:
        """Records of this sender known to be missing (0 when the number went backwards)."""
        return max(0, self.got - self.expected)

    def __str__(self) -> str:
        return (
            f"sequence gap for {self.sender!r} at {self.position}: expected {self.expected}, "
            f"got {self.got}"
        )


@dataclass(slots=True)
class SeqTracker:
    """Feed every record's sender and seq in ledger order; read the gaps afterwards."""

    gaps: list[SeqGap] = field(default_factory=list)
    gap_count: int = 0
    missing_records: int = 0  # the sum of the gaps' jumps: records known to be missing
    restarts: Counter[str] = field(default_factory=Counter)
    retained_gaps: int = 0
    last: dict[str, int] = field(default_factory=dict)  # sender → its last seq
    _budget: dict[str, int] = field(default_factory=dict)

    def retained(self, sender: str, count: int) -> None:
        """``count`` records of ``sender`` were deleted by retention: jumps they cover are fine."""
        self._budget[sender] = self._budget.get(sender, 0) + count

    def feed(self, sender: str, seq: int, segment: int, offset: int) -> None:
        previous = self.last.get(sender, 0)
        self.last[sender] = seq
        if seq == previous + 1:
            return
        retained = self._budget.get(sender, 0)
        if seq == 1:
            self.restarts[sender] += 1
        elif seq > previous + 1 and seq - previous - 1 <= retained:
            self._budget[sender] = retained - (seq - previous - 1)
            self.retained_gaps += 1
        elif seq <= previous and seq - 1 <= retained:  # a new incarnation, head retained away
            self._budget[sender] = retained - (seq - 1)
            self.restarts[sender] += 1
            self.retained_gaps += 1
        else:
            gap = SeqGap(sender, previous + 1, seq, Position(segment, offset))
            self.gap_count += 1
            self.missing_records += gap.missing
            if len(self.gaps) < MAX_LISTED:
                self.gaps.append(gap)
