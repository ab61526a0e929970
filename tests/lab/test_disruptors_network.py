"""The ``network`` disruptor against the lab: cmp-1 partitioned from the controllers.

1. Held for its ``down_s``: nova marks ``nova-compute@cmp-1`` down (osha's API monitor, and
   nova's own service list as ground truth), then up after the revert; osha's own SSH to cmp-1
   (the management path, accepted first) works throughout; nova-compute itself never stops.
2. ``kill -9`` of osha while the partition is held (with the management path protected, and
   without it: then the partition also cuts osha off from cmp-1): the node deletes its table
   by itself within ``revert_by`` + 2 s, with no ``faults recover``, and traffic flows again.

Ground truth is read from outside the node: the lab's nodes are network namespaces of this
machine, so ``ip netns exec <node> nft list table ...`` and ``ping`` there need no SSH (which
the second variant cuts).

Timing (osha's side, from the profile): as in ``test_disruptors_deadman``: ``down_s`` 30 +
``revert_timeout_s`` 10 gives a heartbeat every 10 s; the node's deadline is the lease's
``revert_by``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.disruptors import _nft
from actors.monitors.openstack_api import OpenStackApiMonitor
from osha.faults import _switch as switch
from osha.messages import (
    FaultDeadmanArmed,
    FaultDeadmanRenewFailed,
    FaultLease,
    FaultReverted,
    Lease,
)
from osha.testing import FakeContext
from tests.lab.client import REPO, Lab, wait_for
from tests.lab.test_disruptors_deadman import (
    EARLY_S,
    RENEW_EVERY_S,
    WHOLE_AGAIN_S,
    revert_by_mono_s,
)
from tests.lab.test_disruptors_support import (
    Harness,
    faults_cli,
    header,
    in_netns,
    nft_table_present,
)
from tests.lab.test_monitors_openstack_api import INTERVAL_S, PROBE_TIMEOUT_S, config, running
from tests.lab.test_monitors_openstack_api import first_change as change

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600, func_only=True)]

NODE, PEER = "cmp-1", "ctl-1"  # ctl-1 runs RabbitMQ and the database
TARGET = f"nova-compute@{NODE}"
REVERT_S = 10


def down_s(lab: Lab) -> float:
    """Long enough for nova to mark the compute down while the partition holds: its last
    heartbeat is at most one report interval old at the cut, nova says down service_down_time
    after it, and the monitor sees that at its next poll (one interval, two slow polls: the one
    in flight and the one that sees it); at least the issue's 30 s."""
    s = lab.settings
    seen_s = s["service_down_time_s"] + s["report_interval_s"] + INTERVAL_S + 2 * PROBE_TIMEOUT_S
    return max(30.0, seen_s + 5.0)  # + 5 s: the inject itself, one SSH command loaded


def profile(lab: Lab, hold_s: float, *, protect: bool = True) -> str:
    cut_osha = "" if protect else f', cidrs = ["{lab.desc["network"]["gateway"]}"]'
    return header(lab) + f"""
[[disruptors]]
id = "cut"
plugin = "network"
action = "partition"
peers = {{ group = "controller"{cut_osha} }}
protect_management = {"true" if protect else "false"}
revert_timeout_s = {REVERT_S}
target = {{ group = "compute", pick = "node:{NODE}" }}
schedule = {{ start_s = 1, times = 1, down_s = {hold_s:g} }}
"""


def in_node(lab: Lab, command: list[str]) -> subprocess.CompletedProcess[str]:
    return in_netns(lab, NODE, command)


def table_present(lab: Lab, table: str) -> bool:
    return nft_table_present(lab, NODE, table)


def reaches_peer(lab: Lab) -> bool:
    peer = lab.nodes[PEER]["address"]
    return in_node(lab, ["ping", "-c", "1", "-W", "1", peer]).returncode == 0


def lease_of(run: Harness) -> tuple[Lease, str]:
    [lease] = [m.lease for m in run.messages(FaultLease)]
    return lease, _nft.table_name(str(lease.revert[switch.KEY]))


def test_partition_from_the_controllers_nova_sees_compute_down_then_up(
    healthy_lab: Lab, tmp_path: Path
) -> None:
    lab = healthy_lab
    bounds = lab.bounds
    pid = lab.service_pid(NODE, "nova-compute")
    ctx = FakeContext("api")
    hold_s = down_s(lab)
    with running(OpenStackApiMonitor(config(lab), ctx)) as mon:
        wait_for(lambda: mon.tracker.state(TARGET) == "up", bounds.service_seen_up_s, 0.5,
                 f"{TARGET} up")  # fmt: skip
        run = Harness(tmp_path, profile(lab, hold_s))
        try:
            run.wait_started()
            [injected] = run.wait_tag("fault.injected", bounds.fault_s())
            injected_mono_s = time.monotonic()  # at most one ledger poll (0.1 s) late
            assert f"management {lab.desc['network']['gateway']}:22 kept" in injected.detail
            lease, table = lease_of(run)
            # the group's addresses in inventory order: ctl-1 and ctl-2, and ctl-3 on the HA lab
            controllers = [d["address"] for d in lab.nodes.values() if "controller" in d["groups"]]
            assert len(controllers) >= 2, lab.nodes
            assert lease.revert["peers"] == controllers
            assert table_present(lab, table)
            assert not reaches_peer(lab)
            ssh_ok: list[bool] = []  # osha's SSH path to the node, probed while it is cut off

            def down_seen() -> object:
                ssh_ok.append(lab.run(NODE, "true", timeout_s=bounds.command_s)[0] == 0)
                return change(ctx, TARGET, "down", 0)

            down = wait_for(down_seen, bounds.service_seen_down_s, 1.0, f"{TARGET} down")
            assert lab.service_state("nova-compute", NODE) == "down"  # nova's own word
            assert run.messages(FaultReverted) == [], "down only after the revert"
            [reverted] = run.wait_tag("fault.reverted", bounds.fault_s(hold_s))
            reverted_mono_s = time.monotonic()
            assert reverted.detail.startswith(f"deleted table inet {table}")
            assert not table_present(lab, table)
            assert reaches_peer(lab)
            up = wait_for(lambda: change(ctx, TARGET, "up", 1), bounds.service_seen_up_s, 0.5,
                          f"{TARGET} up again")  # fmt: skip
        finally:
            run.close()
    assert run.proc.returncode == 0, run.output()[-3000:]
    assert ssh_ok
    assert all(ssh_ok), f"osha's SSH to {NODE} failed during the partition: {ssh_ok}"
    assert lab.service_pid(NODE, "nova-compute") == pid  # the network was cut, not the process
    assert run.messages(FaultDeadmanRenewFailed) == []  # osha's SSH renewed through the cut
    print(  # noqa: T201 - the measured figures are part of the report
        f"\n{TARGET}: down seen {down.first_bad_mono_s - injected_mono_s:.1f} s after the "
        f"inject (service_down_time {lab.settings['service_down_time_s']} s), up again "
        f"{up.first_bad_mono_s - reverted_mono_s:.1f} s after the revert; {len(ssh_ok)} SSH "
        "probes during the hold, all answered"
    )


@pytest.mark.parametrize("protect", [True, False], ids=["management-kept", "osha-cut-off"])
def test_kill_9_while_partitioned_the_node_deletes_its_table_at_revert_by(
    healthy_lab: Lab, tmp_path: Path, protect: bool
) -> None:
    lab = healthy_lab
    bounds = lab.bounds
    run = Harness(tmp_path, profile(lab, 30, protect=protect))
    try:
        run.wait_started()
        [injected] = run.wait_tag("fault.injected", bounds.fault_s())
        [armed] = run.messages(FaultDeadmanArmed)
        lease, table = lease_of(run)
        # without the management path kept, the table goes in a second after the inject's
        # SSH command returned (it would cut that command too): one more command's time
        assert ("NOT kept" in injected.detail) is not protect
        wait_for(lambda: table_present(lab, table), bounds.command_s, 0.2, "the table")
        assert not reaches_peer(lab)
        if protect:  # the node saw a renew (osha's SSH works): osha dies holding a live lease
            directory = f"/run/osha/deadman/{_unit(armed.key)}"
            wait_for(lambda: _renewed(lab, directory, armed.wall_s), RENEW_EVERY_S
                     + 2 * bounds.command_s, 1.0, "a renew on the node")  # fmt: skip
        run.kill_all()
        killed_s = time.monotonic()
    finally:
        run.close()  # after kill_all: nothing left to stop
    revert_by_s = revert_by_mono_s(run)  # the node's clock, not this machine's stepping wall
    assert killed_s < revert_by_s - RENEW_EVERY_S, "killed too late to tell"
    probes: list[tuple[float, float, bool]] = []  # (start, end, the table is there)
    probe = _prober(lab, table, probes)
    assert probe(), "the table was gone before the deadline"
    bound_s = revert_by_s + WHOLE_AGAIN_S
    wait_for(lambda: not probe(), bound_s - time.monotonic() + bounds.command_s, 0.2,
             "the node's own revert")  # fmt: skip
    last_present = max(start for start, _, present in probes if present)
    gone = min(end for _, end, present in probes if not present)
    print(  # noqa: T201 - the measured figure is part of the report
        f"\ntable gone between {last_present - revert_by_s:+.2f} s and "
        f"{gone - revert_by_s:+.2f} s of revert_by (protect_management={protect})"
    )
    assert last_present <= bound_s, "still partitioned after revert_by + 2 s"
    assert gone >= revert_by_s - EARLY_S, "reverted before the deadline"
    assert reaches_peer(lab)
    assert lab.run(NODE, "true", timeout_s=bounds.command_s)[0] == 0  # osha can log in again
    result = faults_cli("recover", str(run.run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"REVERTED {lease.what}" in result.stdout
    assert "the node had reverted it by itself at its deadline (exit 0)" in result.stdout


def _unit(key: str) -> str:
    from osha.faults.deadman import unit_name

    return unit_name(key)


def _renewed(lab: Lab, directory: str, armed_wall_s: float) -> bool:
    rc, out = lab.run(NODE, f"stat -c %Y {directory}/deadline")
    return rc == 0 and float(out) >= armed_wall_s + RENEW_EVERY_S / 2


def _prober(lab: Lab, table: str, probes: list[tuple[float, float, bool]]
            ) -> Callable[[], bool]:  # fmt: skip
    def probe() -> bool:
        began = time.monotonic()
        present = table_present(lab, table)
        probes.append((began, time.monotonic(), present))
        return present

    return probe


def test_the_shipped_lab_partition_profile_passes_its_preflight_on_the_lab(lab: Lab) -> None:
    """``profiles/lab-partition.toml`` as shipped (its paths from ``OSHA_LAB_DIR``): both of
    its network faults pass ``osha faults check`` against this lab (nft on cmp-1, the peers
    resolved, osha's SSH path known); the check only reads."""
    result = faults_cli("check", str(REPO / "profiles" / "lab-partition.toml"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for disruptor in ("cut-cmp1", "lossy-cmp1"):
        assert f"ok   {disruptor}" in out, out
