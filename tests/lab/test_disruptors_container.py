"""The ``container`` disruptor against the lab's dockerd on cmp-2 (``nova_compute``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha.messages import FaultReverted
from tests.lab.client import Lab
from tests.lab.test_disruptors_support import Harness, header

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300, func_only=True)]

NODE, CONTAINER = "cmp-2", "nova_compute"


def profile(lab: Lab, action: str, down_s: float) -> str:
    return (
        header(lab)
        + f"""
[[disruptors]]
id = "ctr"
plugin = "container"
action = "{action}"
container = "{CONTAINER}"
stop_timeout_s = 5
target = {{ group = "container_hosts", pick = "node:{NODE}" }}
schedule = {{ start_s = 1, times = 1, down_s = {down_s} }}
"""
    )


def state(lab: Lab) -> tuple[str, str]:
    client = lab.docker(NODE)
    try:
        c = client.containers.get(CONTAINER)
        return c.status, c.attrs["State"]["StartedAt"]
    finally:
        client.close()


def actions(lab: Lab, since_s: float, until_s: float) -> list[str]:
    """dockerd's own record (its events) of what happened to the container: ground truth
    that does not depend on looking while the fault holds."""
    client = lab.docker(NODE)
    try:
        events = client.events(since=int(since_s), until=int(until_s) + 1, decode=True,
                               filters={"container": CONTAINER, "type": "container"})  # fmt: skip
        return [e["Action"] for e in events if float(e["timeNano"]) / 1e9 >= since_s]
    finally:
        client.close()


@pytest.mark.parametrize(("action", "seen"), [("stop", ["die", "stop", "start"]),
                                               ("kill", ["kill", "die", "start"]),
                                               ("pause", ["pause", "unpause"])])  # fmt: skip
def test_action_is_seen_then_the_container_runs_again(
    healthy_lab: Lab, tmp_path: Path, action: str, seen: list[str]
) -> None:
    lab = healthy_lab
    assert state(lab)[0] == "running"
    hold_s = 5
    run = Harness(tmp_path, profile(lab, action, hold_s))
    try:
        run.wait_started()
        [injected] = run.wait_tag("fault.injected", lab.bounds.fault_s())
        [reverted] = run.wait_tag("fault.reverted", lab.bounds.fault_s(hold_s))
        assert state(lab)[0] == "running"
        assert reverted.by == "holder"
        done = [a for a in actions(lab, injected.wall_s - 1, reverted.wall_s) if a in seen]
        assert done == seen, done  # the fault happened, and was undone, in that order
    finally:
        run.close()
    assert run.proc.returncode == 0, run.output()[-3000:]


def test_restart_restarts_it(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    _, started_before = state(lab)
    run = Harness(tmp_path, profile(lab, "restart", 1))
    try:
        run.wait_started()
        run.wait_tag("fault.reverted", lab.bounds.fault_s(1))
        status, started_after = state(lab)
        assert status == "running"
        assert started_after != started_before
    finally:
        run.close()
    assert len(run.messages(FaultReverted)) == 1
