"""A campaign outlives its console: a console that does not read never blocks a write
(ConsoleSink), a console that went away is only a quiet console, and SIGHUP does not end an
unattended campaign. No cloud needed: the built-in test plugins and real pipes."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from osha.campaign.console import ConsoleSink
from osha.ledger import LedgerReader
from osha.messages.campaign import CampaignStop, CampaignVerdict
from osha.testing import wait_for
from tests.unit.test_campaign import NEVER_ESCALATES, _profile

PIPE_BYTES = 4096  # the smallest pipe Linux makes (one page)
LINE = "x" * 99 + "\n"  # 100 bytes


@pytest.fixture
def full_pipe() -> Iterator[tuple[int, int]]:
    """A one-page pipe whose write end is already full: any blocking write to it blocks
    until someone reads, which nobody does unless the test says so."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    os.set_blocking(w, False)
    filled = 0
    for _ in range(PIPE_BYTES):  # bounded: a page fills in one or two writes
        try:
            filled += os.write(w, b"." * PIPE_BYTES)
        except BlockingIOError:
            break
    os.set_blocking(w, True)
    assert filled >= PIPE_BYTES
    try:
        yield r, w
    finally:
        for fd in (r, w):
            with contextlib.suppress(OSError):  # a test may have closed it already
                os.close(fd)


def _read_until(fd: int, needle: bytes, *, timeout_s: float) -> bytes:
    got = bytearray()

    def more() -> bool:
        got.extend(os.read(fd, 65536))
        return needle in got

    os.set_blocking(fd, True)
    wait_for(more, timeout_s=timeout_s, what=f"{needle!r} on the console")
    return bytes(got)


def _in_thread(fn: object) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


@pytest.mark.timeout(60)
def test_a_console_that_does_not_read_never_blocks_a_write(full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    sink = ConsoleSink(os.fdopen(os.dup(w), "w"), limit_bytes=16 * 1024)
    lines = 2000  # 200 kB: fifty times the pipe, twelve times the queue

    def write_all() -> None:
        for _ in range(lines):
            sink.write(LINE)

    writer = _in_thread(write_all)
    # a blocking write would hold the writer for ever; 20 s is a loaded machine's worst
    wait_for(lambda: not writer.is_alive(), timeout_s=20.0, what="every write to return")
    assert sink.dropped_lines > 0  # the queue was full: the rest was dropped, not waited for
    # the console reads again: the queued lines come, after them a notice of what it missed
    sink.write("the next line\n")
    out = _read_until(r, b"the next line\n", timeout_s=20.0)
    assert b"line(s) not shown: the console was not reading" in out
    sink.close(timeout_s=5.0)


@pytest.mark.timeout(60)
def test_closing_waits_at_most_its_timeout_for_a_console_that_never_reads(
    full_pipe: tuple[int, int],
) -> None:
    _r, w = full_pipe
    sink = ConsoleSink(os.fdopen(os.dup(w), "w"))
    sink.write(LINE * 10)
    closer = _in_thread(lambda: sink.close(timeout_s=0.5))
    # the bound is the drain timeout plus a join of at most 0.5 s, with room for a loaded
    # machine; a close that waited for the console would never end
    wait_for(lambda: not closer.is_alive(), timeout_s=15.0, what="close() to give up")
    assert sink.dropped_lines >= 10


@pytest.mark.timeout(60)
def test_a_console_whose_reader_left_is_gone_not_an_error(full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    sink = ConsoleSink(os.fdopen(os.dup(w), "w"))
    os.close(r)  # the reader left: the next write fails with EPIPE
    sink.write(LINE)
    wait_for(lambda: sink.gone, timeout_s=20.0, what="the sink to see its console gone")
    assert "Broken pipe" in sink.gone
    assert sink.write(LINE) == len(LINE)  # later writes are dropped quietly, never raised
    sink.close(timeout_s=1.0)


def _start(tmp_path: Path, chaos_s: float, stdout: int) -> subprocess.Popen[bytes]:
    """test_campaign's profile (the built-in test plugins), its restarts never escalating."""
    profile = _profile(tmp_path, NEVER_ESCALATES, chaos_s=chaos_s)
    with (tmp_path / "stderr").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "osha", "campaign", "start", str(profile), "--plain",
             "--ledger-dir", str(tmp_path / "runs")],
            stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip


def _run_dir(tmp_path: Path) -> Path:
    [run_dir] = list((tmp_path / "runs").glob("*.osha"))
    return run_dir


@pytest.mark.timeout(120)
def test_a_campaign_whose_console_never_reads_runs_to_its_verdict(
    tmp_path: Path, full_pipe: tuple[int, int]
) -> None:
    """The stop-25 hang: osha's stdout a pipe that nobody reads. Before the sink, the first
    line blocked the main thread for ever, with the recorder open."""
    _r, w = full_pipe
    proc = _start(tmp_path, chaos_s=0.5, stdout=w)
    try:
        # the campaign's own length (~2 s), the console's drain timeout (10 s) and a loaded
        # machine's start-up (python, the actors) with a wide margin
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir = _run_dir(tmp_path)
    verdicts = [m for m in LedgerReader(run_dir).messages() if isinstance(m, CampaignVerdict)]
    assert [v.exit_code for v in verdicts] == [0]
    # the last lines (the verdict table) waited for the console, then osha said so and exited
    stderr = (tmp_path / "stderr").read_text()
    assert "line(s) not shown: the console did not read them" in stderr, stderr[-2000:]


@pytest.mark.timeout(120)
def test_sighup_does_not_end_a_campaign_it_only_quiets_its_console(tmp_path: Path) -> None:
    proc = _start(tmp_path, chaos_s=8.0, stdout=subprocess.DEVNULL)
    try:

        def in_chaos() -> Path | None:
            for run in (tmp_path / "runs").glob("*.osha"):
                status = run / "status.json"
                if status.exists() and json.loads(status.read_text())["phase"] == "chaos":
                    return run
            return None

        run_dir = wait_for(in_chaos, timeout_s=60, what="the campaign in its chaos phase")
        os.kill(proc.pid, signal.SIGHUP)  # the terminal closed
        assert proc.wait(timeout=60) == 0  # the verdict, not a death by SIGHUP (-1)
    finally:
        if proc.poll() is None:
            proc.kill()
    records = list(LedgerReader(run_dir).messages())
    assert [m for m in records if isinstance(m, CampaignStop)] == []
    assert [m.exit_code for m in records if isinstance(m, CampaignVerdict)] == [0]
    assert (
        "SIGHUP: the terminal is gone; the campaign goes on"
        in (run_dir / "campaign.log").read_text()
    )
