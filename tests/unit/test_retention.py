"""The raw lane and retention: order kept, oldest raw segments deleted, verify explains gaps."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from osha.errors import EXIT_FAILED, EXIT_OK
from osha.ledger import LedgerOptions, LedgerReader, LedgerWriter, RetentionPolicy, verify
from osha.ledger.retention import expired_segments
from osha.ledger.segment import (
    FLAG_RAW,
    SegmentInfo,
    list_raw_segments,
    raw_segment_name,
    read_segment_flags,
)
from osha.ledger.testing import header, sample_batch
from osha.messages import RunStopped, StateChange
from osha.record import frame_record
from osha.wire import encode


def _options(**policy: object) -> LedgerOptions:
    return LedgerOptions(
        segment_size_bytes=4096,
        flush_interval_s=0.05,
        flush_records=50,
        retention=RetentionPolicy(segment_size_bytes=4096, **policy),  # type: ignore[arg-type]
    )


def _state(sender: str, seq: int) -> bytes:
    msg = StateChange(sender, seq, float(seq), 1_700_000_000.0 + seq, "t", "down", "up", None, 1.0)
    return frame_record(encode(msg))


def _write_mixed(
    run: Path, plan: list[tuple[str, int]], options: LedgerOptions, *, close: bool = True
) -> tuple[LedgerWriter, list[tuple[str, int, str]]]:
    """Each step: ("raw", n) sends n samples, ("keep", 1) one state change, from sender "m"."""
    writer = LedgerWriter.create(run, header(), options=options)
    seq = 0
    expected: list[tuple[str, int, str]] = []
    for kind, n in plan:
        if kind == "raw":
            writer.append_raw(sample_batch("m", seq + 1, n), n, "m")
            expected.extend(("m", s, "monitor.sample") for s in range(seq + 1, seq + 1 + n))
        else:
            writer.append_framed(_state("m", seq + 1), 1)
            expected.append(("m", seq + 1, "monitor.state"))
        seq += n
    if close:
        writer.append(RunStopped("supervisor", 2, time.monotonic(), time.time(), "t", "end", 0))
        writer.close()
    return writer, expected


plans = st.lists(
    st.one_of(st.tuples(st.just("raw"), st.integers(1, 40)), st.just(("keep", 1))),
    min_size=1,
    max_size=30,
)


@settings(max_examples=25, deadline=None)
@given(plans)
def test_raw_lane_keeps_the_record_order_without_retention_limits(
    plan: list[tuple[str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "r.osha"
        _, expected = _write_mixed(run, plan, _options())
        reader = LedgerReader(run, chunk_bytes=512)
        got = [(m.sender, m.seq, m.TAG) for m in reader.messages() if m.sender == "m"]
        assert got == expected
        report = verify(run)
        assert report.exit_code(strict=True) == EXIT_OK, report.render()
        assert report.retained_records == 0


@settings(max_examples=20, deadline=None)
@given(plans, st.integers(0, 2))
def test_retention_deletes_only_raw_and_verify_explains_the_gaps(
    plan: list[tuple[str, int]], keep: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "r.osha"
        writer, expected = _write_mixed(run, plan, _options(keep_segments=keep))
        states = [e for e in expected if e[2] == "monitor.state"]
        got = [(m.sender, m.seq, m.TAG) for m in LedgerReader(run).messages() if m.sender == "m"]
        assert [g for g in got if g[2] == "monitor.state"] == states  # always kept
        assert len(list_raw_segments(run)) <= keep + 1
        report = verify(run)
        assert report.exit_code(strict=True) == EXIT_OK, report.render()
        assert report.retained_records == writer.retained_records
        assert len(got) + report.retained_records == len(expected)
        if report.retained_records:
            assert "NOTE retention" in report.render()


def test_raw_segments_are_flagged_and_deleted_oldest_first(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    plan = [("raw", 30), ("keep", 1)] * 20
    writer, _ = _write_mixed(run, plan, _options(keep_segments=2))
    raws = list_raw_segments(run)
    assert writer.retained_segments > 0
    assert len(raws) == 3  # two closed plus the last one
    assert raws[0].number == writer.retained_segments + 1
    assert all(read_segment_flags(s.path) == FLAG_RAW for s in raws)


def test_a_raw_segment_deleted_by_hand_is_an_error(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    _write_mixed(run, [("raw", 30), ("keep", 1)] * 10, _options())
    (run / raw_segment_name(1)).unlink()
    report = verify(run)
    assert report.exit_code() == EXIT_FAILED
    assert "no ledger.retained record explains it" in report.render()


def test_without_a_policy_raw_batches_stay_in_the_main_lane(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    writer = LedgerWriter.create(run, header(), options=LedgerOptions())
    writer.append_raw(sample_batch("m", 1, 5), 5, "m")
    writer.close()
    assert list_raw_segments(run) == []
    assert [m.TAG for m in LedgerReader(run).messages()][1:] == ["monitor.sample"] * 5


def test_expired_segments_rules(tmp_path: Path) -> None:
    segs = [SegmentInfo(n, tmp_path / f"{n}", 1000) for n in range(1, 6)]
    now = 10_000.0
    mtimes = {n: now - 100 * (6 - n) for n in range(1, 6)}  # 1 is oldest (500 s)
    count = expired_segments(segs, RetentionPolicy(keep_segments=3), mtimes_s=mtimes)
    assert [(s.number, r) for s, r in count] == [(1, "segments"), (2, "segments")]
    size = expired_segments(segs, RetentionPolicy(keep_bytes=2500), mtimes_s=mtimes, now_wall_s=now)
    assert [s.number for s, _ in size] == [1, 2, 3]
    age = expired_segments(segs, RetentionPolicy(keep_age_s=250), mtimes_s=mtimes, now_wall_s=now)
    assert [(s.number, r) for s, r in age] == [(1, "age"), (2, "age"), (3, "age")]
    assert expired_segments(segs, RetentionPolicy(), mtimes_s=mtimes) == []


def test_resume_appends_after_a_torn_tail_and_verify_passes(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    writer, _ = _write_mixed(run, [("raw", 20), ("keep", 1)] * 5, _options(), close=False)
    writer.sync()
    last = sorted(run.glob("0*.seg"))[-1]
    with last.open("ab") as f:  # a record cut short, as kill -9 mid-write leaves it
        f.write(frame_record(b"\x95" + b"x" * 40)[:20])
    os.close(writer._fd)  # the dead writer's descriptor; nothing else is flushed
    resumed = LedgerWriter.resume(run, options=_options(), reason="test")
    resumed.append_raw(sample_batch("m", 1, 3), 3, "m")  # a new incarnation
    resumed.append(RunStopped("supervisor", 1, time.monotonic(), time.time(), "t", "end", 0))
    resumed.close()
    report = verify(run)
    text = report.render(strict=True)
    assert report.exit_code(strict=True) == EXIT_OK, text
    assert len(report.resumes) == 1
    assert "resumed after a crash" in text
    assert "[before a resume]" in text


def test_a_report_replayed_from_a_raw_lane_ledger_is_identical(tmp_path: Path) -> None:
    from osha.analysis import analyze
    from osha.ledger import RAW_TAGS
    from osha.report.json import to_dict
    from osha.testing import SyntheticLedger
    from osha.wire import peek_tag

    led = SyntheticLedger(tmp_path / "plain.osha")
    led.phase("chaos", 50.0, 150.0)
    led.target("host-services", "nova-api@ctl-1", end_s=200, down=[(100.0, 112.5)])
    led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-api")
    plain = led.write(stop_s=200.0)
    lane = tmp_path / "lane.osha"
    reader = LedgerReader(plain)
    payloads = list(reader.payloads())
    head = reader.header()
    assert head is not None
    writer = LedgerWriter.create(lane, head, options=_options())
    for payload in payloads[1:]:
        if peek_tag(payload) in RAW_TAGS:
            writer.append_raw(frame_record(payload), 1, "host-services")
        else:
            writer.append_framed(frame_record(payload), 1)
    writer.close()
    assert list_raw_segments(lane)
    a, b = to_dict(analyze(plain)), to_dict(analyze(lane))
    assert a["targets"]
    assert a["faults"]
    differ = {k for k in a if a[k] != b[k]}
    assert differ <= {"run"}, differ  # the run section names the directory and record count
    assert verify(lane).exit_code(strict=True) == EXIT_OK
