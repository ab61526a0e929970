"""Self-monitoring: osha's own RSS/CPU per process, bounded state, and the disk-space floor."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from osha.messages import DiskFloorReached, Message, Resources
from osha.selfmon import SelfMonitor
from osha.testing import wait_for

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)  # fmt: skip
    yield proc
    proc.kill()
    proc.wait()


def test_samples_main_and_children_and_forgets_dead_pids(
    tmp_path: Path, child: subprocess.Popen[bytes]
) -> None:
    written: list[Message] = []
    kids = [("tick", child.pid), ("gone", 2**22 + 7)]  # the second pid does not exist
    mon = SelfMonitor(written.append, children=lambda: kids, interval_s=1, ledger_dir=tmp_path)
    records = mon.sample_once()
    assert [r.process for r in records] == ["main", "tick"]
    main, tick = records
    assert main.pid == os.getpid()
    assert main.rss_bytes > 10 * 2**20
    assert main.disk_free_bytes is not None
    assert main.disk_free_bytes > 0
    assert tick.pid == child.pid
    assert tick.disk_free_bytes is None
    assert written == records
    assert [m.seq for m in written] == [1, 2]
    child.kill()
    child.wait()
    assert [r.process for r in mon.sample_once()] == ["main"]
    assert set(mon._procs) == {os.getpid()}  # bounded: the dead child is forgotten


def test_thread_samples_every_interval_until_stopped(tmp_path: Path) -> None:
    written: list[Message] = []
    with SelfMonitor(written.append, interval_s=0.02) as mon:
        wait_for(lambda: mon.samples >= 3, timeout_s=5, what="three samples")
    done = mon.samples
    assert all(isinstance(m, Resources) for m in written)
    assert mon.samples == done  # stopped


def test_floor_below_free_space_stops_once(tmp_path: Path) -> None:
    written: list[Message] = []
    stops: list[int] = []
    huge = 2**62
    mon = SelfMonitor(
        written.append, interval_s=1, ledger_dir=tmp_path, disk_floor_bytes=huge,
        on_floor=stops.append,
    )  # fmt: skip
    mon.sample_once()
    mon.sample_once()
    assert len(stops) == 1
    floors = [m for m in written if isinstance(m, DiskFloorReached)]
    assert len(floors) == 1
    assert floors[0].floor_bytes == huge
    assert floors[0].free_bytes == stops[0]


def test_a_floor_needs_a_ledger_directory() -> None:
    with pytest.raises(ValueError, match="ledger_dir"):
        SelfMonitor(lambda m: None, disk_floor_bytes=1)
