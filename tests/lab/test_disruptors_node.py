"""The ``node`` disruptor against the lab: soft reboot, power-off (and Ctrl-C during it),
power-cycle through the emulated IPMI BMCs."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.common.power import BmcConfig, PowerConfig, PowerDriver, power_driver
from osha.messages import FaultReleased, FaultReverted
from osha.schema import FilePath
from tests.lab.client import LAB_DIR, Lab, wait_for
from tests.lab.test_disruptors_support import Harness, header, power_table

pytestmark = [pytest.mark.lab, pytest.mark.timeout(400, func_only=True)]

NODE = "cmp-1"
RETURN_TIMEOUT_S = 120  # the profile's: how long the revert waits for the node to come back


def profile(lab: Lab, action: str, down_s: float) -> str:
    return (
        header(lab)
        + f"""
[[disruptors]]
id = "node"
plugin = "node"
action = "{action}"
shutdown_s = 90
return_timeout_s = {RETURN_TIMEOUT_S}
target = {{ group = "compute", pick = "node:{NODE}" }}
schedule = {{ start_s = 1, times = 1, down_s = {down_s} }}
{power_table(lab, NODE)}
"""
    )


@pytest.fixture
def bmc(lab: Lab) -> Iterator[PowerDriver]:
    """osha's own IPMI driver for the node's BMC: one long-lived session (a new pyghmi
    Command per call trips over pyghmi's session cache)."""
    desc = lab.nodes[NODE]["bmc"]
    config = PowerConfig(
        user=desc["user"],
        password_file=FilePath(str(LAB_DIR / "bmc-password")),
        bmcs={NODE: BmcConfig(desc["host"], desc["port"])},
    )
    driver = power_driver(config, NODE)
    yield driver
    driver.close()


def power(driver: PowerDriver) -> str:
    return driver.state().value


def test_reboot_gives_a_new_boot_id(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    before = lab.boot_id(NODE)
    run = Harness(tmp_path, profile(lab, "reboot", 0))
    try:
        run.wait_started()
        [reverted] = run.wait_tag("fault.reverted", lab.bounds.fault_s(RETURN_TIMEOUT_S))
        assert "new boot id" in reverted.detail
        assert lab.boot_id(NODE) != before
    finally:
        run.close()
    assert run.proc.returncode == 0, run.output()[-3000:]


def test_power_cycle_comes_back_with_a_new_boot_id(
    healthy_lab: Lab, tmp_path: Path, bmc: PowerDriver
) -> None:
    lab = healthy_lab
    before = lab.boot_id(NODE)
    run = Harness(tmp_path, profile(lab, "power-cycle", 0))
    try:
        run.wait_started()
        run.wait_tag("fault.reverted", lab.bounds.fault_s(RETURN_TIMEOUT_S))
        assert lab.boot_id(NODE) != before
        assert power(bmc) == "on"
    finally:
        run.close()


def test_ctrl_c_during_power_off_powers_the_node_on_before_exit(
    healthy_lab: Lab, tmp_path: Path, bmc: PowerDriver
) -> None:
    lab = healthy_lab
    before = lab.boot_id(NODE)
    run = Harness(tmp_path, profile(lab, "power-off", 300))
    try:
        run.wait_started()
        run.wait_tag("fault.injected", lab.bounds.fault_s())
        wait_for(lambda: power(bmc) == "off", lab.bounds.command_s, 0.5, "the BMC to report off")
        with pytest.raises((ConnectionRefusedError, TimeoutError)):  # off: no SSH
            # a probe: an unplugged link never answers, any timeout proves it
            socket.create_connection((lab.nodes[NODE]["address"], 22), timeout=3).close()
        run.signal(signal.SIGINT)
        assert run.wait(lab.bounds.fault_s(RETURN_TIMEOUT_S)) == 0, run.output()[-3000:]
        # osha has exited: the node must be on already, and the ledger must say so.
        assert power(bmc) == "on"
        assert lab.boot_id(NODE) != before
        [reverted] = run.messages(FaultReverted)
        assert "powered on" in reverted.detail
        assert run.messages(FaultReleased)[-1].reverted
    finally:
        run.close()
