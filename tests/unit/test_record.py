"""The record framing's one reading loop, :func:`osha.record.scan_records`: it stops at the
first damaged record and names the damage, at a record cut short, and after ``count``
records; the envelope stamp, :func:`osha.messages.stamp`, reads the clocks now."""

from __future__ import annotations

import time

from osha.messages import Sample, stamp
from osha.record import HEADER, MAGIC, MAX_RECORD_BYTES, frame_record, frame_records, scan_records

PAYLOADS = [b"one", b"", b"three" * 10]


def test_scan_reads_every_whole_record_and_their_offsets() -> None:
    blob = frame_records(PAYLOADS)
    offsets: list[int] = []
    payloads, end, problem = scan_records(blob, offsets=offsets, base=100)
    assert (payloads, end, problem) == (PAYLOADS, len(blob), "")
    assert offsets == [100, 100 + HEADER.size + 3, 100 + 2 * HEADER.size + 3]


def test_scan_stops_after_count_and_resumes_where_it_stopped() -> None:
    blob = frame_records(PAYLOADS)
    first, end, problem = scan_records(blob, count=2)
    assert (first, problem) == (PAYLOADS[:2], "")
    rest, end, problem = scan_records(blob, end)
    assert (rest, end, problem) == (PAYLOADS[2:], len(blob), "")


def test_scan_stops_quietly_at_a_record_cut_short() -> None:
    blob = frame_records(PAYLOADS)
    whole = len(frame_records(PAYLOADS[:2]))
    assert scan_records(blob[:-1]) == (PAYLOADS[:2], whole, "")
    assert scan_records(blob[: whole + 3]) == (PAYLOADS[:2], whole, "")  # half a header


def test_scan_names_the_damage_where_it_stops() -> None:
    good = frame_record(b"good")
    bad_crc = bytearray(frame_record(b"payload"))
    bad_crc[-1] ^= 0xFF
    bad_magic = HEADER.pack(0x1234, 1, 0) + b"x"
    too_long = HEADER.pack(MAGIC, MAX_RECORD_BYTES + 1, 0)
    for damage, why in [
        (bytes(bad_crc), "CRC mismatch"),
        (bad_magic, "bad magic 0x1234"),
        (too_long, f"impossible length {MAX_RECORD_BYTES + 1}"),
    ]:
        assert scan_records(good + damage + good) == ([b"good"], len(good), why)
    # without the CRC check (a batch framed in this run) a CRC mismatch is read as a record
    payloads, _end, problem = scan_records(good + bytes(bad_crc), check_crc=False)
    assert (payloads, problem) == ([b"good", b"payloa" + bytes([ord("d") ^ 0xFF])], "")


def test_scan_of_a_memoryview_slices_without_copying() -> None:
    blob = frame_records(PAYLOADS)
    payloads, _end, _problem = scan_records(memoryview(blob))
    assert all(isinstance(p, memoryview) for p in payloads)
    assert [bytes(p) for p in payloads] == PAYLOADS


def test_stamp_fills_the_envelope_now() -> None:
    before_mono, before_wall = time.monotonic(), time.time()
    msg = stamp(Sample, "m1", 7, target="api", count=3, failures=1)
    assert (msg.sender, msg.seq, msg.target) == ("m1", 7, "api")
    assert before_mono <= msg.mono_s <= time.monotonic()
    assert before_wall <= msg.wall_s <= time.time()
