"""``verify``: sequence gaps, restarts, header record, clean close, exit codes."""

from __future__ import annotations

from pathlib import Path

from osha.ledger import LedgerWriter, verify
from osha.ledger.testing import header, sample, sample_batch, write_ledger
from osha.messages import RunStopped


def test_clean_ledger(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 10), ("b", 1, 5), ("a", 11, 10)])
    report = verify(run)
    assert report.exit_code() == 0
    assert report.exit_code(strict=True) == 0
    assert report.closed_cleanly
    assert report.records == 27
    assert report.by_sender == {"a": 20, "b": 5, "supervisor": 2}
    assert report.by_tag["monitor.sample"] == 25
    assert "OK" in report.render()


def test_restart_is_counted_and_a_gap_fails(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 10), ("a", 1, 3), ("b", 1, 3), ("b", 5, 2)])
    report = verify(run)
    assert report.restarts == {"a": 1}
    assert report.gap_count == 1
    gap = report.gaps[0]
    assert (gap.sender, gap.expected, gap.got) == ("b", 4, 5)
    assert report.exit_code() == 1
    assert "sequence gap for 'b'" in report.render()


def test_unclean_close_is_a_warning_unless_strict(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    write_ledger(run, [("a", 1, 10)], close=False)
    report = verify(run)
    assert not report.closed_cleanly
    assert report.exit_code() == 0
    assert report.exit_code(strict=True) == 1
    assert "crashed or was killed" in report.render()


def test_missing_header_record_fails(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    writer = LedgerWriter.create(run, header())
    writer.append_framed(sample_batch("a", 1, 3), 3)
    writer.close()
    seg = run / "000001.seg"
    # Drop the header record: keep the segment header, then the samples.
    from osha.ledger import LedgerReader

    records = list(LedgerReader(run).records())
    data = seg.read_bytes()
    seg.write_bytes(data[:16] + data[records[1].offset :])
    report = verify(run)
    assert "not 'ledger.header'" in report.header_problem
    assert report.exit_code() == 1


def test_run_stopped_is_found(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    writer = LedgerWriter.create(run, header())
    writer.append(sample("a", 1))
    writer.append(RunStopped("supervisor", 2, 0.0, 0.0, "test-run", "duration", 0))
    writer.close()
    report = verify(run)
    assert report.run_stopped is not None
    assert report.run_stopped.reason == "duration"
