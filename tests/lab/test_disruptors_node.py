"""The ``node`` disruptor against the lab: soft reboot, power-off (and Ctrl-C during it),
power-cycle through the emulated IPMI BMCs."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import Lab, wait_for
from test_disruptors_support import Harness, header, power_table

from osha.messages import FaultReleased, FaultReverted

pytestmark = [pytest.mark.lab, pytest.mark.timeout(400, func_only=True)]

NODE = "cmp-1"


def profile(lab: Lab, action: str, down_s: float) -> str:
    return (
        header(lab)
        + f"""
[[disruptors]]
id = "node"
plugin = "node"
action = "{action}"
shutdown_s = 90
return_timeout_s = 120
target = {{ group = "compute", pick = "node:{NODE}" }}
schedule = {{ start_s = 1, times = 1, down_s = {down_s} }}
{power_table(lab, NODE)}
"""
    )


def power(lab: Lab) -> str:
    return str(lab.bmc(NODE).get_power()["powerstate"])


def test_reboot_gives_a_new_boot_id(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    before = lab.boot_id(NODE)
    run = Harness(tmp_path, profile(lab, "reboot", 0))
    try:
        run.wait_started()
        [reverted] = run.wait_tag("fault.reverted", 180)
        assert "new boot id" in reverted.detail
        assert lab.boot_id(NODE) != before
    finally:
        run.close()
    assert run.proc.returncode == 0, run.output()[-3000:]


def test_power_cycle_comes_back_with_a_new_boot_id(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    before = lab.boot_id(NODE)
    run = Harness(tmp_path, profile(lab, "power-cycle", 0))
    try:
        run.wait_started()
        run.wait_tag("fault.reverted", 180)
        assert lab.boot_id(NODE) != before
        assert power(lab) == "on"
    finally:
        run.close()


def test_ctrl_c_during_power_off_powers_the_node_on_before_exit(
    healthy_lab: Lab, tmp_path: Path
) -> None:
    lab = healthy_lab
    before = lab.boot_id(NODE)
    run = Harness(tmp_path, profile(lab, "power-off", 300))
    try:
        run.wait_started()
        run.wait_tag("fault.injected", 60)
        wait_for(lambda: power(lab) == "off", 30, 0.5, "the BMC to report off")
        with pytest.raises(Exception):  # noqa: B017, PT011 - off: no SSH at all
            lab.boot_id(NODE)
        run.signal(signal.SIGINT)
        assert run.wait(180) == 0, run.output()[-3000:]
        # osha has exited: the node must be on already, and the ledger must say so.
        assert power(lab) == "on"
        assert lab.boot_id(NODE) != before
        [reverted] = run.messages(FaultReverted)
        assert "powered on" in reverted.detail
        assert run.messages(FaultReleased)[-1].reverted
    finally:
        run.close()
