"""actors.monitors._lanes: a job per key in its own thread; a busy key's slot is skipped and
counted, never stacked; a job's exception comes back in the poll thread; close is bounded."""

from __future__ import annotations

import threading

import pytest

from actors.monitors._lanes import Lane, Lanes
from osha.testing import wait_for


def test_a_busy_lane_skips_and_counts_while_another_lane_runs() -> None:
    lanes = Lanes("t")
    release = threading.Event()
    ran: list[str] = []
    skipped_seen: list[int] = []

    def hang(lane: Lane) -> None:
        release.wait(10.0)  # the job that hangs until the test lets it go
        skipped_seen.append(lane.take_skipped())

    def quick(lane: Lane) -> None:
        ran.append(lane.key)

    try:
        assert lanes.offer("slow", hang)
        for n in range(1, 4):
            assert not lanes.offer("slow", hang)  # busy: skipped, not queued
            assert lanes.offer("fast", quick)
            wait_for(lambda n=n: len(ran) == n, timeout_s=5.0, what=f"fast job {n}")
        assert lanes.busy() == ["slow"]
        assert not lanes.wait_idle(0.05)
        release.set()
        assert lanes.wait_idle(5.0)
        assert skipped_seen == [3]  # the job read the slots skipped while it ran
        assert lanes.skipped() == {"slow": 3, "fast": 0}
        assert lanes.offer("slow", quick)  # free again
        assert lanes.wait_idle(5.0)
    finally:
        release.set()
        assert lanes.close(5.0) == []


def test_a_job_exception_is_raised_once_in_the_caller_and_close_is_bounded() -> None:
    lanes = Lanes("t")
    release = threading.Event()

    def broken(lane: Lane) -> None:
        raise ValueError("bad probe")

    lanes.offer("k", broken)
    assert lanes.wait_idle(5.0)
    with pytest.raises(ValueError, match="bad probe") as raised:
        lanes.raise_failure()
    assert "t's job for k" in "".join(raised.value.__notes__)
    lanes.raise_failure()  # once
    lanes.offer("stuck", lambda lane: release.wait(10.0) and None)
    try:
        assert lanes.close(0.1) == ["stuck"]  # still running after the bound: named
        with pytest.raises(RuntimeError, match="after close"):
            lanes.offer("k", broken)
    finally:
        release.set()
