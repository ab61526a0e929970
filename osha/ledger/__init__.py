"""The ledger: an append-only, segmented, CRC-checked log of every message of a run.

- :class:`LedgerWriter` appends (group-commit fsync, rotation by size);
- :class:`LedgerReader` streams records back in bounded memory, tolerating a torn tail and
  reporting (and optionally skipping) corrupt records;
- :func:`verify` checks CRCs, segment headers, the header record, per-sender sequence numbers
  and whether the run closed cleanly;
- :class:`RetentionPolicy` keeps raw samples in a raw lane and deletes its oldest segments
  (:mod:`osha.ledger.retention`); :meth:`LedgerWriter.resume` reopens a killed run's ledger.

On-disk format: see :mod:`osha.ledger.segment` (files) and :mod:`osha.record` (records).
"""

from __future__ import annotations

from osha.ledger.reader import (
    MAX_RECORD_BYTES,
    Corruption,
    LedgerReader,
    Position,
    RawRecord,
    Tear,
)
from osha.ledger.retention import RAW_TAGS, RetentionPolicy
from osha.ledger.segment import FORMAT_VERSION, SegmentInfo, list_segments, segment_name
from osha.ledger.verify import SeqGap, VerifyReport, verify
from osha.ledger.writer import LedgerOptions, LedgerWriter, new_header

__all__ = [
    "FORMAT_VERSION",
    "MAX_RECORD_BYTES",
    "RAW_TAGS",
    "Corruption",
    "LedgerOptions",
    "LedgerReader",
    "LedgerWriter",
    "Position",
    "RawRecord",
    "RetentionPolicy",
    "SegmentInfo",
    "SeqGap",
    "Tear",
    "VerifyReport",
    "list_segments",
    "new_header",
    "segment_name",
    "verify",
]
