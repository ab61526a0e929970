"""The ``container`` disruptor against the lab's dockerd on cmp-2 (``nova_compute``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha.messages import FaultReverted
from tests.lab.conftest import Lab
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
    c = lab.docker(NODE).containers.get(CONTAINER)
    return c.status, c.attrs["State"]["StartedAt"]


@pytest.mark.parametrize(("action", "during"), [("stop", "exited"), ("kill", "exited"),
                                                 ("pause", "paused")])  # fmt: skip
def test_action_is_seen_then_the_container_runs_again(
    healthy_lab: Lab, tmp_path: Path, action: str, during: str
) -> None:
    lab = healthy_lab
    assert state(lab)[0] == "running"
    run = Harness(tmp_path, profile(lab, action, 5))
    try:
        run.wait_started()
        run.wait_tag("fault.injected", 60)
        assert state(lab)[0] == during
        [reverted] = run.wait_tag("fault.reverted", 60)
        assert state(lab)[0] == "running"
        assert reverted.by == "holder"
    finally:
        run.close()
    assert run.proc.returncode == 0, run.output()[-3000:]


def test_restart_restarts_it(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    _, started_before = state(lab)
    run = Harness(tmp_path, profile(lab, "restart", 1))
    try:
        run.wait_started()
        run.wait_tag("fault.reverted", 90)
        status, started_after = state(lab)
        assert status == "running"
        assert started_after != started_before
    finally:
        run.close()
    assert len(run.messages(FaultReverted)) == 1
