"""The ``process`` disruptor against the lab: kill, stop, freeze; each observed, then reverted."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha.messages import FaultInjected, FaultLease, FaultReleased, FaultReverted
from tests.lab.conftest import Lab, wait_for
from tests.lab.test_disruptors_support import Harness, header

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300, func_only=True)]

NODE, SERVICE = "ctl-2", "nova-scheduler"


def profile(lab: Lab, action: str, down_s: float, extra: str = "") -> str:
    return (
        header(lab)
        + f"""
[[disruptors]]
id = "proc"
plugin = "process"
action = "{action}"
service = "{SERVICE}"
target = {{ group = "controller", pick = "node:{NODE}" }}
schedule = {{ start_s = 1, times = 1, down_s = {down_s} }}
{extra}
"""
    )


def stat(lab: Lab, pid: int) -> str:
    return lab.run(NODE, f"ps -o stat= -p {pid}")[1].strip()


def finish(run: Harness) -> None:
    run.close()
    assert run.proc.returncode == 0, run.output()[-3000:]
    [lease] = run.messages(FaultLease)
    [reverted] = run.messages(FaultReverted)
    assert reverted.lease_id == lease.lease_id
    assert run.messages(FaultReleased)[-1].reverted


def test_kill_sigkill_is_restarted_by_runit(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    before = lab.service_pid(NODE, SERVICE)
    assert before is not None
    run = Harness(tmp_path, profile(lab, "kill", 0, 'signal = "SIGKILL"'))
    try:
        run.wait_started()
        [injected] = run.wait_tag("fault.injected", 60)
        assert "kill -s KILL" in injected.detail
        [reverted] = run.wait_tag("fault.reverted", 60)
        assert "restarted by its supervisor" in reverted.detail
        after = lab.service_pid(NODE, SERVICE)
        assert after is not None
        assert after != before
        exits = [e for e in lab.events(NODE) if e.kind == "exit" and e.name == SERVICE]
        assert exits
        assert exits[-1].time_s >= injected.actual_wall_s - 1
    finally:
        finish(run)


def test_stop_holds_the_service_down_then_starts_it(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    run = Harness(tmp_path, profile(lab, "stop", 6))
    try:
        run.wait_started()
        run.wait_tag("fault.injected", 60)
        assert lab.service_pid(NODE, SERVICE) is None  # down during the hold
        run.wait_tag("fault.reverted", 60)
        wait_for(lambda: lab.service_pid(NODE, SERVICE), 30, 0.5, "the service back")
        [injected] = run.messages(FaultInjected)
        [reverted] = run.messages(FaultReverted)
        assert reverted.wall_s - injected.wall_s >= 5.5
    finally:
        finish(run)


def test_freeze_stops_then_continues_the_process(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    pid = lab.service_pid(NODE, SERVICE)
    assert pid is not None
    run = Harness(tmp_path, profile(lab, "freeze", 5))
    try:
        run.wait_started()
        run.wait_tag("fault.injected", 60)
        assert stat(lab, pid).startswith("T")  # stopped (frozen), not dead
        run.wait_tag("fault.reverted", 60)
        assert not stat(lab, pid).startswith("T")
        assert lab.service_pid(NODE, SERVICE) == pid  # the same process lives on
    finally:
        finish(run)
