"""The recorder actor: clean stop flushes everything, timer commits, failures surface, and a
``kill -9`` of a real writing process leaves a ledger that verifies."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from osha.errors import LedgerError
from osha.ledger import LedgerOptions, LedgerWriter, verify
from osha.ledger.testing import header, sample, sample_batch
from osha.recorder import RecorderFailed, RecorderHandle
from osha.testing import wait_for


def test_clean_close_writes_everything_told_before_it(tmp_path: Path) -> None:
    run = tmp_path / "r.osha"
    writer = LedgerWriter.create(run, header(), options=LedgerOptions(flush_interval_s=3600))
    recorder = RecorderHandle.start(writer)
    for first in range(1, 5001, 500):
        recorder.write_framed(sample_batch("a", first, 500), 500)
    recorder.write(sample("b", 1))
    assert recorder.close(timeout_s=10) == 5002
    report = verify(run)
    assert report.records == 5002
    assert report.closed_marker
    assert report.problems == 0
    with pytest.raises(LedgerError, match="recorder is stopped"):
        recorder.write(sample("b", 2))


def test_timer_commits_without_new_records(tmp_path: Path) -> None:
    options = LedgerOptions(flush_interval_s=0.02, flush_records=1_000_000)
    writer = LedgerWriter.create(tmp_path / "r.osha", header(), options=options)
    with RecorderHandle.start(writer) as recorder:
        recorder.write_framed(sample_batch("a", 1, 10), 10)
        wait_for(lambda: writer.synced_records == 11, timeout_s=5, what="the timer's commit")
        assert recorder.sync(timeout_s=5) == 11


def test_disk_error_surfaces_to_the_supervisor(tmp_path: Path) -> None:
    writer = LedgerWriter.create(tmp_path / "r.osha", header())
    told: list[RecorderFailed] = []
    recorder = RecorderHandle.start(writer, on_error=told.append)
    os.close(writer._fd)  # simulate the disk going away under the writer
    recorder.write_framed(sample_batch("a", 1, 10), 10)
    wait_for(lambda: told, timeout_s=5, what="on_error")
    assert isinstance(told[0].error, LedgerError)
    assert "cannot write ledger segment" in str(told[0].error)
    assert "free disk space" in told[0].error.hint
    with pytest.raises(LedgerError, match="cannot write"):
        recorder.write(sample("a", 11))
    with pytest.raises(LedgerError, match="cannot write"):
        recorder.sync(timeout_s=5)
    assert recorder.failure is told[0].error


_CHILD = """
import sys, time
from pathlib import Path
from osha.ledger import LedgerOptions, LedgerWriter
from osha.ledger.testing import header, sample_batch
from osha.recorder import RecorderHandle
options = LedgerOptions(flush_interval_s=0.02, flush_records=2000, segment_size_bytes=256 * 1024)
writer = LedgerWriter.create(Path(sys.argv[1]), header(), options=options)
recorder = RecorderHandle.start(writer)
seq = 1
while True:
    for _ in range(5):
        recorder.write_framed(sample_batch("child", seq, 200), 200)
        seq += 200
    print(recorder.sync(timeout_s=10), flush=True)
"""


def test_kill_9_leaves_a_ledger_that_verifies(tmp_path: Path) -> None:
    run = tmp_path / "killed.osha"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(run)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    synced = 0
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    try:
        while synced < 20_000 and time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                line = proc.stdout.readline()
                assert line, f"writer exited early with {proc.poll()}"
                synced = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert synced >= 20_000, "the writer did not sync enough records in time"
    assert proc.returncode == -signal.SIGKILL

    report = verify(run)
    assert report.problems == 0, report.render()
    assert not report.closed_cleanly
    assert report.exit_code() == 0
    assert report.records >= synced  # every acknowledged (fsynced) record is there
    assert report.segments >= 2  # rotated while being written
    assert _verify_cli(run) == 0


def _verify_cli(run: Path) -> int:
    """``osha ledger verify RUN``; the sub-app in-process until the ``osha`` entry is stable."""
    from typer.testing import CliRunner

    from osha.cli.ledger import app

    return CliRunner().invoke(app, ["verify", str(run)]).exit_code
