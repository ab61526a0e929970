"""The ``network`` disruptor's ``link-down`` against the lab: cmp-1's cable pulled at either
end (issue 15).

1. **Node side**, ``kill -9`` of osha mid-fault: ``ip link set eth0 down`` inside cmp-1 cuts
   osha off from it (its SSH goes through eth0), so only the node's own dead-man switch can
   bring the link back: at the lease's ``revert_by``, with the static route the kernel dropped
   with the link put back, and no ``faults recover``.
2. **Switch side**, normal revert: the bridge-side veth of cmp-1 (the inventory's
   ``osha_switch_port``, on this machine) goes down: cmp-1 sees NO-CARRIER and keeps its
   routes (every one, the kernel's and a planted static one: ``ip route`` the same but for the
   kernel's ``linkdown`` mark, and byte for byte after); osha keeps its switch, so the port
   is up again at ``down_s``, at once.
3. **Switch side**, ``kill -9`` of osha mid-fault: this machine's own dead-man switch (a
   detached watchdog osha's death does not reach) sets the port up at ``revert_by``.

Ground truth is read from outside osha: the link states with ``ip`` (cmp-1 is a network
namespace of this machine, so no SSH, which the node side cuts) and a ping from this machine
to cmp-1's address.

Timing: ``down_s`` 6 + ``revert_timeout_s`` 6: ``revert_by`` is 12 s after the inject, the
renew cadence 4 s (see ``osha.faults._switch``); the bounds are ``test_disruptors_deadman``'s
(whole again within ``revert_by`` + 2 s, never more than 0.5 s early), on the monotonic clock:
the deadman keeps ``/proc/uptime`` (the nodes share this machine's kernel) and this machine's
wall clock steps (+21 s in 8 min, stop 30), so ``revert_by`` and the inject's time are
converted with the two clocks of the record that carried them, and the probes are stamped with
``time.monotonic()``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from osha.messages import (
    FaultDeadmanCollected,
    FaultDeadmanRenewFailed,
    FaultInjected,
    FaultLease,
    FaultReverted,
    Lease,
)
from tests.lab.client import Lab, wait_for
from tests.lab.test_disruptors_deadman import EARLY_S, WHOLE_AGAIN_S, revert_by_mono_s
from tests.lab.test_disruptors_support import Harness, faults_cli, header

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300, func_only=True)]

NODE = "cmp-1"
DOWN_S, REVERT_S = 6, 6
#: a route the kernel drops with the link (not ``proto kernel``): TEST-NET-1 via the lab's
#: gateway, planted for the test and removed after it
ROUTE = "192.0.2.0/24"
#: one ping from this machine: its reply within 1 s (0.05 ms on the idle bridge)
PING_S = 1


def profile(lab: Lab, side: str) -> str:
    interface = 'interface = "eth0"\n' if side == "node" else ""
    return (
        header(lab)
        + f"""
[[disruptors]]
id = "pull"
plugin = "network"
action = "link-down"
side = "{side}"
{interface}revert_timeout_s = {REVERT_S}
command_timeout_s = 10
target = {{ group = "compute", pick = "node:{NODE}" }}
schedule = {{ start_s = 1, times = 1, down_s = {DOWN_S} }}
"""
    )


def ip(lab: Lab, *args: str, node: bool = True) -> str:
    """``ip`` in cmp-1's namespace (or on this machine): its output; raises if it fails."""
    where = ["-n", f"{lab.desc['network']['netns_prefix']}{NODE}"] if node else []
    done = subprocess.run(["ip", *where, *args], capture_output=True, text=True, timeout=30,
                          check=True)  # fmt: skip
    return done.stdout


def admin_up(lab: Lab, *, switch: bool) -> bool:
    """Is the link (cmp-1's eth0, or its switch port here) administratively up?"""
    dev = lab.nodes[NODE]["switch_port"] if switch else "eth0"
    flags = ip(lab, "-o", "link", "show", "dev", dev, node=not switch).split("<")[1].split(">")[0]
    return "UP" in flags.split(",")


def pings(lab: Lab) -> bool:
    address = lab.nodes[NODE]["address"]
    cmd = ["ping", "-c", "1", "-W", str(PING_S), address]
    return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0


def has_route(lab: Lab) -> bool:
    return ROUTE in ip(lab, "-4", "route", "show", "dev", "eth0")


def routes(lab: Lab) -> str:
    """cmp-1's IPv4 routes, as ``ip route`` lists them."""
    return ip(lab, "-4", "route", "show")


def lease_of(run: Harness) -> Lease:
    [lease] = [m.lease for m in run.messages(FaultLease)]
    return lease


@pytest.fixture
def planted(healthy_lab: Lab) -> Iterator[Lab]:
    """cmp-1 with a static route through eth0 (the kernel drops it with the link)."""
    lab = healthy_lab
    gateway = lab.desc["network"]["gateway"]
    ip(lab, "route", "replace", ROUTE, "via", gateway, "dev", "eth0", "proto", "static")
    assert pings(lab), f"{NODE} does not answer a ping before the test"
    yield lab
    if has_route(lab):  # put back by the revert (the tests assert it); gone if one failed
        ip(lab, "route", "del", ROUTE)


def _kill_mid_fault_then_whole_again(lab: Lab, run: Harness, *, switch: bool) -> float:
    """Kill osha once the link is down, before its planned end; wait until the node (or this
    machine) sets it up again by itself. Returns when, relative to ``revert_by``, on the
    monotonic clock (the deadman's; this machine's wall clock steps)."""
    try:
        run.wait_started()
        [injected] = run.wait_tag("fault.injected", lab.bounds.fault_s())
        wait_for(lambda: not admin_up(lab, switch=switch), lab.bounds.command_s, 0.1,
                 "the link down")  # fmt: skip
        run.kill_all()  # returns once its actors are gone too: nothing of osha is left
        killed_s = time.monotonic()
    finally:
        run.close()  # after kill_all: nothing left to stop
    lease = lease_of(run)
    # each record's wall time converted with its own two clocks
    injected_s = injected.actual_wall_s - (injected.wall_s - injected.mono_s)
    revert_by_s = revert_by_mono_s(run)
    assert killed_s < injected_s + DOWN_S, "killed too late to tell"
    assert not admin_up(lab, switch=switch), "up again as osha died, long before revert_by"
    assert not pings(lab), f"{NODE} answers with its link down"
    probes: list[tuple[float, float, bool]] = []  # (start, end, the link is up)

    def up() -> bool:
        began = time.monotonic()
        is_up = admin_up(lab, switch=switch)
        probes.append((began, time.monotonic(), is_up))
        return is_up

    bound_s = revert_by_s + WHOLE_AGAIN_S
    wait_for(up, bound_s - time.monotonic() + lab.bounds.command_s, 0.1, "the own revert")
    down = [start for start, _, is_up in probes if not is_up]
    assert down, f"up at the first probe, {probes[0][0] - revert_by_s:+.2f} s from revert_by"
    back = min(end for _, end, is_up in probes if is_up)
    assert max(down) <= bound_s, "still down after revert_by + 2 s"
    assert back >= revert_by_s - EARLY_S, "up again before the deadline"
    wait_for(lambda: pings(lab), lab.bounds.command_s, 0.2, f"{NODE} answering again")
    result = faults_cli("recover", str(run.run_dir))  # collects what the node did
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"REVERTED {lease.what}" in result.stdout
    assert "reverted it by itself at its deadline (exit 0)" in result.stdout
    return back - revert_by_s


def test_node_side_kill_9_the_node_sets_its_link_up_with_its_routes_at_revert_by(
    planted: Lab, tmp_path: Path
) -> None:
    lab = planted
    run = Harness(tmp_path, profile(lab, "node"))
    back_s = _kill_mid_fault_then_whole_again(lab, run, switch=False)
    [injected] = run.messages(FaultInjected)
    assert "link eth0 of cmp-1 down, 1 route(s) recorded" in injected.detail
    assert "osha cut off" in injected.detail  # its SSH goes through eth0
    assert lease_of(run).revert["routes4"] == [
        f"{ROUTE} via {lab.desc['network']['gateway']} proto static"
    ]
    assert has_route(lab), "the static route was not put back"
    print(f"\nnode side: link up {back_s:+.2f} s from revert_by")  # noqa: T201 - the figure


def test_switch_side_the_node_sees_no_carrier_keeps_its_routes_and_is_back_at_down_s(
    planted: Lab, tmp_path: Path
) -> None:
    lab = planted
    before = routes(lab)
    run = Harness(tmp_path, profile(lab, "switch"))
    try:
        run.wait_started()
        [injected] = run.wait_tag("fault.injected", lab.bounds.fault_s())
        assert not admin_up(lab, switch=True)
        assert "NO-CARRIER" in ip(lab, "link", "show", "dev", "eth0")  # as a pulled cable
        assert admin_up(lab, switch=False)  # the node's own side stays up...
        assert has_route(lab)  # ...with its routes: every one (the kernel marks them linkdown)
        held = routes(lab)
        assert "linkdown" in held
        assert held.replace(" linkdown", "") == before
        assert not pings(lab)
        [reverted] = run.wait_tag("fault.reverted", lab.bounds.fault_s(DOWN_S))
        reverted_s = time.monotonic()  # at most one ledger poll (0.1 s) late
        [collected] = run.wait_tag("fault.deadman_collected", lab.bounds.command_s)
    finally:
        run.close()
    assert run.proc.returncode == 0, run.output()[-3000:]
    port = lab.nodes[NODE]["switch_port"]
    assert reverted.detail == f"switch port {port} up on {NODE}"
    assert admin_up(lab, switch=True)
    wait_for(lambda: pings(lab), lab.bounds.command_s, 0.2, f"{NODE} answering again")
    assert routes(lab) == before  # byte for byte
    assert isinstance(collected, FaultDeadmanCollected)
    assert collected.state == "absent"  # osha reverted and disarmed it; it never fired
    assert run.messages(FaultDeadmanRenewFailed) == []  # the switch stayed in reach
    # on the monotonic clock: the inject's wall time converted with its record's two clocks
    late_s = reverted_s - (injected.actual_wall_s - (injected.wall_s - injected.mono_s) + DOWN_S)
    assert late_s <= lab.bounds.command_s, "the revert came long after down_s"
    assert len(run.messages(FaultReverted)) == 1
    print(f"\nswitch side: reverted {late_s:+.2f} s from the planned end")  # noqa: T201


def test_switch_side_kill_9_this_machine_sets_the_port_up_at_revert_by(
    planted: Lab, tmp_path: Path
) -> None:
    lab = planted
    run = Harness(tmp_path, profile(lab, "switch"))
    back_s = _kill_mid_fault_then_whole_again(lab, run, switch=True)
    assert has_route(lab)  # the node kept it throughout
    print(f"\nswitch side: port up {back_s:+.2f} s from revert_by")  # noqa: T201 - the figure
