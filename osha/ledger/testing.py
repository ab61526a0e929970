"""Helpers for tests that write and read ledgers (osha's own and plugin authors')."""

from __future__ import annotations

from pathlib import Path

from osha.ledger.writer import LedgerOptions, LedgerWriter, new_header
from osha.messages import LedgerHeader, RunStopped, Sample, stamp
from osha.record import frame_records
from osha.wire import encode

__all__ = ["header", "sample", "sample_batch", "write_ledger"]


def header(run_id: str = "test-run", *, profile: dict[str, object] | None = None) -> LedgerHeader:
    """A ledger header record from the ``supervisor``, seq 1."""
    return new_header(run_id, seed=42, profile=profile, sender="supervisor")


def sample(sender: str, seq: int, target: str = "nova-api@ctl-1") -> Sample:
    """A ``monitor.sample`` record."""
    return Sample(sender, seq, float(seq), 1_700_000_000.0 + seq, target, 10, seq % 3, 0.001)


def sample_batch(sender: str, first_seq: int, count: int) -> bytes:
    """``count`` framed samples with consecutive seqs, as a child would send them."""
    return frame_records(encode(sample(sender, s)) for s in range(first_seq, first_seq + count))


def write_ledger(
    directory: Path,
    batches: list[tuple[str, int, int]],
    *,
    options: LedgerOptions | None = None,
    close: bool = True,
) -> int:
    """Write a ledger of ``(sender, first_seq, count)`` sample batches; returns records written.

    With ``close`` it ends with ``run.stopped`` and a clean close, like a real run.
    """
    writer = LedgerWriter.create(directory, header(), options=options)
    for sender, first_seq, count in batches:
        writer.append_framed(sample_batch(sender, first_seq, count), count)
    if close:
        writer.append(stamp(RunStopped, "supervisor", 2, run_id="t", reason="end", exit_code=0))
        writer.close()
    else:
        writer.sync()
    return writer.records
