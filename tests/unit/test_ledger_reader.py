"""Ledger round trips, rotation, torn tails and corruption (writer + reader)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osha.errors import LedgerError
from osha.ledger import (
    Corruption,
    LedgerOptions,
    LedgerReader,
    LedgerWriter,
    Position,
    Tear,
    segment_name,
)
from osha.ledger.segment import SEGMENT_HEADER_BYTES
from osha.ledger.testing import header, sample, write_ledger
from osha.messages import LedgerHeader, Sample
from osha.record import HEADER_BYTES

SMALL = LedgerOptions(segment_size_bytes=4096, flush_interval_s=0.05, flush_records=50)
batches = st.lists(st.integers(1, 40), min_size=1, max_size=12)


def _write(directory: Path, sizes: list[int], **kw: object) -> list[tuple[str, int]]:
    """Write batches of samples alternately from two senders; return (sender, seq) expected."""
    plan: list[tuple[str, int, int]] = []
    next_seq = {"a": 1, "b": 1}
    for i, size in enumerate(sizes):
        sender = "ab"[i % 2]
        plan.append((sender, next_seq[sender], size))
        next_seq[sender] += size
    write_ledger(directory, plan, options=SMALL, **kw)  # type: ignore[arg-type]
    return [(s, q) for s, first, n in plan for q in range(first, first + n)]


@settings(max_examples=25, deadline=None)
@given(batches, st.sampled_from([64, 1000, 1 << 20]))
def test_round_trip_with_rotation(sizes: list[int], chunk_bytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "r.osha"
        expected = _write(run, sizes)
        reader = LedgerReader(run, chunk_bytes=chunk_bytes)
        msgs = list(reader.messages())
        assert isinstance(msgs[0], LedgerHeader)
        assert msgs[-1].TAG == "run.stopped"
        assert [(m.sender, m.seq) for m in msgs[1:-1]] == expected
        assert reader.corruptions == []
        assert reader.tear is None
        assert reader.closed_cleanly
        for seg in reader.segments[:-1]:  # a batch never straddles, and segments stay bounded
            assert seg.size_bytes <= SMALL.segment_size_bytes or seg.number == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=batches, cut=st.floats(0, 1))
def test_torn_tail_at_any_byte_reads_a_prefix(sizes: list[int], cut: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "r.osha"
        expected = _write(run, sizes, close=False)
        reader = LedgerReader(run)
        last = _segments(run)[-1]
        size = last.stat().st_size
        keep = int(cut * size)
        os.truncate(last, keep)
        got = [(m.sender, m.seq) for m in reader.messages() if isinstance(m, Sample)]
        assert got == expected[: len(got)]  # a prefix
        assert reader.corruptions == []
        offsets = [r.offset for r in reader.records() if r.segment == int(last.stem)]
        end = reader.end.offset
        if reader.tear is not None:
            assert reader.tear.segment == int(last.stem)
            assert reader.tear.offset == end
            assert reader.tear.offset + reader.tear.size_bytes == keep
        else:  # cut on a record boundary
            assert keep in (end, *offsets) or keep < SEGMENT_HEADER_BYTES


def _segments(run: Path) -> list[Path]:
    return sorted(run.glob("*.seg"))


def test_corrupt_byte_in_the_middle_is_reported_and_skipped(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 30)], options=SMALL)
    seg = run / segment_name(1)
    records = list(LedgerReader(run).records())
    victim = records[10]
    data = bytearray(seg.read_bytes())
    data[victim.offset + HEADER_BYTES + 3] ^= 0xFF  # inside the payload: CRC mismatch
    seg.write_bytes(bytes(data))

    reader = LedgerReader(run, resync=True)
    seqs = [m.seq for m in reader.messages() if isinstance(m, Sample)]
    assert len(reader.corruptions) == 1
    bad = reader.corruptions[0]
    assert (bad.segment, bad.offset, bad.reason) == (1, victim.offset, "CRC mismatch")
    assert bad.skipped_bytes == records[11].offset - victim.offset
    assert f"byte {victim.offset}" in str(bad)
    assert seqs == [s for s in range(1, 31) if s != 10]  # record 10 is sample seq 10
    assert reader.tear is None

    stop = LedgerReader(run, resync=False)
    assert [m.seq for m in stop.messages() if isinstance(m, Sample)] == list(range(1, 10))
    assert stop.stopped_early
    assert stop.corruptions[0].offset == victim.offset


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 255))
def test_any_corrupt_byte_is_found_and_reading_resumes(where: int, flip: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "r.osha"
        write_ledger(run, [("a", 1, 60)], options=LedgerOptions(segment_size_bytes=1 << 20))
        seg = run / segment_name(1)
        data = bytearray(seg.read_bytes())
        at = SEGMENT_HEADER_BYTES + where % (len(data) - SEGMENT_HEADER_BYTES)
        data[at] ^= flip
        seg.write_bytes(bytes(data))
        reader = LedgerReader(run, resync=True)
        good = list(reader.records())
        problems: list[Corruption | Tear] = [*reader.corruptions]
        if reader.tear is not None:
            problems.append(reader.tear)
        assert problems, "a flipped byte must be noticed"
        assert all(p.offset <= at for p in problems)
        assert len(good) >= 60 + 2 - 3  # resync loses at most the damaged record's neighbours


def test_zero_filled_tail_is_a_tear(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 5)], close=False)
    seg = run / segment_name(1)
    size = seg.stat().st_size
    with seg.open("ab") as f:
        f.write(b"\0" * 5000)
    reader = LedgerReader(run)
    assert len(list(reader.payloads())) == 6
    assert reader.tear is not None
    assert reader.tear.offset == size
    assert reader.tear.size_bytes == 5000
    assert reader.corruptions == []


def test_missing_segment_is_corruption(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 100), ("a", 101, 100), ("a", 201, 100)], options=SMALL)
    assert len(_segments(run)) >= 3
    (run / segment_name(2)).unlink()
    reader = LedgerReader(run)
    list(reader.payloads())
    assert [(c.segment, c.reason) for c in reader.corruptions] == [(2, "segment file is missing")]


def test_records_from_a_position_follow_new_writes(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    writer = LedgerWriter.create(run, header(), options=SMALL)
    reader = LedgerReader(run)
    assert len(list(reader.records())) == 1
    position = reader.end
    for seq in range(1, 200):
        writer.append(sample("a", seq))
    got = [r.payload for r in reader.records(position)]
    assert len(got) == 199
    assert reader.end.segment == writer.segment
    assert list(reader.records(reader.end)) == []
    writer.close()
    assert reader.end != Position(1, SEGMENT_HEADER_BYTES)


def test_writer_refuses_a_used_directory_and_reader_a_non_ledger(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 1)])
    with pytest.raises(LedgerError, match="not empty") as exc:
        LedgerWriter.create(run, header())
    assert "new directory" in exc.value.hint
    with pytest.raises(LedgerError, match="not an osha ledger directory") as exc:
        LedgerReader(tmp_path)
    assert "runs/<id>.osha" in exc.value.hint


def test_group_commit_by_record_count_and_by_time(tmp_path: Path) -> None:
    options = LedgerOptions(flush_records=10, flush_interval_s=3600)
    writer = LedgerWriter.create(tmp_path / "r.osha", header(), options=options)
    writer.append_framed(b"".join([]), 0)
    for seq in range(1, 10):
        writer.append(sample("a", seq))
    assert writer.synced_records == 1  # the header, fsynced at create
    writer.append(sample("a", 10))
    assert writer.synced_records == 11
    writer.append(sample("a", 11))
    assert not writer.sync_if_due()  # interval not yet reached
    writer.close()
    assert writer.synced_records == 12
