"""The ``process`` disruptor against the lab: kill, stop, freeze; each observed, then reverted."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha.messages import FaultLease, FaultReleased, FaultReverted
from tests.lab.client import Lab, wait_for
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
    assert reverted.lease_id == lease.lease.lease_id
    assert run.messages(FaultReleased)[-1].reverted


def test_kill_sigkill_is_restarted_by_runit(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    before = lab.service_pid(NODE, SERVICE)
    assert before is not None
    run = Harness(tmp_path, profile(lab, "kill", 0, 'signal = "SIGKILL"'))
    try:
        run.wait_started()
        [injected] = run.wait_tag("fault.injected", lab.bounds.fault_s())
        assert "kill -s KILL" in injected.detail
        # the revert waits for runit's restart
        [reverted] = run.wait_tag("fault.reverted", lab.bounds.fault_s(lab.bounds.restart_s))
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
    hold_s = 6
    run = Harness(tmp_path, profile(lab, "stop", hold_s))
    try:
        run.wait_started()
        [injected] = run.wait_tag("fault.injected", lab.bounds.fault_s())
        [reverted] = run.wait_tag("fault.reverted", lab.bounds.fault_s(hold_s))
        wait_for(lambda: lab.service_pid(NODE, SERVICE), lab.bounds.restart_s, 0.5,
                 "the service back")  # fmt: skip
        assert reverted.wall_s - injected.wall_s >= hold_s - 0.5
        # ground truth: it exited as the fault went in (the stop command returned before
        # `injected` was written) and started again only at the revert
        events = [e for e in lab.events(NODE) if e.name == SERVICE]
        went_in = injected.wall_s - lab.bounds.command_s
        exits = [e for e in events if e.kind == "exit" and went_in <= e.time_s <= injected.wall_s]
        assert exits, "no exit of the service when the fault went in"
        starts = [e for e in events if e.kind == "start" and e.time_s > exits[-1].time_s]
        assert starts, "the service did not start again"
        assert starts[0].time_s >= reverted.wall_s - 1, "it ran again during the hold"
    finally:
        finish(run)


def test_freeze_stops_then_continues_the_process(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    pid = lab.service_pid(NODE, SERVICE)
    assert pid is not None
    # long enough to look at the frozen process over SSH while it holds, on a loaded machine
    hold_s = lab.bounds.command_s / 2
    run = Harness(tmp_path, profile(lab, "freeze", hold_s))
    try:
        run.wait_started()
        run.wait_tag("fault.injected", lab.bounds.fault_s())
        assert stat(lab, pid).startswith("T")  # stopped (frozen), not dead
        assert not run.messages(FaultReverted), "the hold ended before the check"
        run.wait_tag("fault.reverted", lab.bounds.fault_s(hold_s))
        assert not stat(lab, pid).startswith("T")
        assert lab.service_pid(NODE, SERVICE) == pid  # the same process lives on
    finally:
        finish(run)
