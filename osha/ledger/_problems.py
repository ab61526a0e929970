"""Where a record is, and what can be wrong where it should be: the reader's small values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from osha.ledger.segment import segment_name

__all__ = ["Corruption", "Position", "RawRecord", "Tear"]


class Position(NamedTuple):
    """Where a record starts: segment number and byte offset in that segment file."""

    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{segment_name(self.segment)} byte {self.offset}"


class RawRecord(NamedTuple):
    """One record's payload (an encoded message) and where it was found."""

    segment: int
    offset: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Tear:
    """The last segment ends inside a record: expected after ``kill -9``, tolerated."""

    segment: int
    offset: int
    size_bytes: int

    def __str__(self) -> str:
        return (
            f"torn tail in {segment_name(self.segment)} at byte {self.offset}: "
            f"{self.size_bytes} bytes of an incomplete last record (the run was killed or "
            "crashed; at most the last flush interval is missing)"
        )


@dataclass(frozen=True, slots=True)
class Corruption:
    """A damaged stretch of a segment. ``skipped_bytes`` were passed over by resync."""

    segment: int
    offset: int
    reason: str
    skipped_bytes: int = 0

    def __str__(self) -> str:
        skipped = f"; skipped {self.skipped_bytes} bytes" if self.skipped_bytes else ""
        return f"corrupt record in {segment_name(self.segment)} at byte {self.offset}: " + (
            f"{self.reason}{skipped}"
        )
