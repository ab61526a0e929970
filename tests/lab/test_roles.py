"""Targets by role on the HA lab (issue 14, "Topology-aware targets"): ``pick = "vip-holder"``
powers off the controller that holds the VIP when the fault is due, the lease records why,
and the vip monitor records the move; ``faults check`` fails clearly on a VIP nobody holds.

Needs an HA lab; run with ``-m ha_lab``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from osha.faults._roles import ROLE_KEY
from osha.messages import FaultInjected, FaultLease, FaultPlanned
from osha.messages.monitor import VipMoved
from tests.lab.client import LAB_DIR, Lab, wait_for
from tests.lab.test_disruptors_support import Harness, faults_cli, header
from tests.lab.test_lab_ha_cluster import events_since, ha
from tests.lab.test_monitors_cluster import (
    READY_S,
    VIP_COMMAND_TIMEOUT_S,
    monitors_profile,
    wait_state,
)

pytestmark = pytest.mark.ha_lab

START_S = 25.0  # the vip monitor reports the holder first (READY_S covers a slow start)
DOWN_S = 20.0
RETURN_TIMEOUT_S = 120


def power_tables(lab: Lab, nodes: list[str]) -> str:
    bmc = {n: lab.nodes[n]["bmc"] for n in nodes}
    bmcs = ", ".join(
        f'{n} = {{ address = "{b["host"]}", port = {b["port"]} }}' for n, b in bmc.items()
    )
    user = lab.nodes[nodes[0]]["bmc"]["user"]
    return (f'power = {{ user = "{user}", password_file = "{LAB_DIR / "bmc-password"}", '
            f"bmcs = {{ {bmcs} }} }}")  # fmt: skip


def role_disruptor(lab: Lab, vip: str) -> str:
    cfg = ha(lab)
    return f"""
[[disruptors]]
id = "power-vip"
plugin = "node"
action = "power-off"
return_timeout_s = {RETURN_TIMEOUT_S}
target = {{ group = "controller", pick = "vip-holder", role = {{ vip = "{vip}" }} }}
schedule = {{ start_s = {START_S}, times = 1, down_s = {DOWN_S} }}
{power_tables(lab, cfg["controllers"])}
"""


@pytest.mark.timeout(900)
def test_pick_vip_holder_powers_off_the_node_holding_the_vip(
    healthy_lab: Lab, tmp_path: Path
) -> None:
    lab = healthy_lab
    cfg = ha(lab)
    extra = {"vip": {"command_timeout_s": VIP_COMMAND_TIMEOUT_S}}
    text = monitors_profile(lab, "vip", **extra) + role_disruptor(lab, cfg["vip"])
    # the plan names the role, not a node
    plan = faults_cli("plan", str(write(tmp_path / "plan.toml", text)))
    assert plan.returncode == 0, plan.stderr
    assert "role:vip-holder" in plan.stdout, plan.stdout
    started = time.time()
    h = Harness(tmp_path, text)
    h.wait_started()
    try:
        up = wait_state(h, "vip:internal", "up", READY_S)
        holder = next(n for n in cfg["controllers"] if f" on {n}" in up.evidence)
        [planned] = h.wait_tag(FaultPlanned.TAG, READY_S)
        assert planned.node == "role:vip-holder"
        [granted] = h.wait_tag(FaultLease.TAG, START_S + READY_S)
        [injected] = h.wait_tag(FaultInjected.TAG, 60)
        assert granted.lease.node == injected.node == holder
        resolved = granted.lease.revert[ROLE_KEY]
        assert resolved == f"resolved {holder}: holds VIP {cfg['vip']}", resolved
        # ground truth: the holder lost power, and a peer's keepalived took the VIP
        lost = wait_for(lambda: events_since(lab, holder, "power-off", started), 30, 0.2,
                        f"{holder}'s power-off line")[0]  # fmt: skip
        [moved] = h.wait_tag(VipMoved.TAG, VIP_COMMAND_TIMEOUT_S + 30)
        assert moved.from_node == holder
        master = next(e for e in events_since(lab, moved.to_node, "vrrp", started)
                      if e.fields.get("state") == "MASTER")  # fmt: skip
        print(  # noqa: T201 - the measured figures are part of the report
            f"\npick vip-holder: {resolved}; power-off line {lost.time_s - started:.1f} s into "
            f"the run; {moved.to_node} MASTER {master.time_s - lost.time_s:.3f} s after it"
        )
    finally:
        h.close()


def test_faults_check_fails_clearly_without_the_role(healthy_lab: Lab, tmp_path: Path) -> None:
    """A VIP no controller holds: the cloud has no vip-holder, and check says so."""
    lab = healthy_lab
    cfg = ha(lab)
    nobody = cfg["vip"].rsplit(".", 1)[0] + ".250"  # in the lab's subnet, held by no node
    result = faults_cli("check", str(write(tmp_path / "p.toml", header(lab) + role_disruptor(
        lab, nobody))))  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    said = f"FAIL power-vip: power-off@role:vip-holder: no node of the group holds VIP {nobody}"
    assert said in result.stdout, result.stdout


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
