"""Lab nodes behave like hardware: runit restarts, systemctl, reboot, out-of-band power."""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import threading

import paramiko
import pytest

from tests.lab.client import Lab, holds_for, run_lab, wait_for
from tests.lab.conftest import lock_holders

pytestmark = pytest.mark.lab


@pytest.mark.timeout(60)
def test_nodes_reach_only_the_lab_subnet(healthy_lab: Lab) -> None:
    for node in healthy_lab.nodes:
        routes = healthy_lab.check(node, "ip route show; ip -6 route show")
        assert "default" not in routes, f"{node} has a default route: {routes}"


@pytest.mark.timeout(60)
def test_no_lab_process_keeps_the_test_session_lock(healthy_lab: Lab) -> None:
    """Only this session holds the lab's test-session lock: a daemon started by `lab up` under
    `flock LOCK scripts/lab up` (scripts/test) once kept it open for its whole life, and the
    next pytest session waited for it until it gave up."""
    others = [(pid, cmd) for pid, cmd in lock_holders() if pid != os.getpid()]
    assert others == [], f"processes other than this session hold the lock: {others}"


@pytest.mark.timeout(180)  # a hang guard above the sum of its bounds
def test_systemctl_stop_start_is_active(healthy_lab: Lab) -> None:
    lab = healthy_lab
    assert lab.run("ctl-2", "systemctl is-active nova-conductor") == (0, "active\n")
    lab.check("ctl-2", "systemctl stop nova-conductor")
    assert lab.run("ctl-2", "systemctl is-active nova-conductor") == (3, "inactive\n")
    lab.check("ctl-2", "systemctl start nova-conductor.service")
    assert lab.run("ctl-2", "systemctl is-active nova-conductor") == (0, "active\n")
    assert lab.run("ctl-2", "systemctl is-active no-such-thing")[0] == 4


@pytest.mark.timeout(60)
def test_kill_9_of_a_service_is_restarted_by_runit(healthy_lab: Lab) -> None:
    lab = healthy_lab
    old_pid = lab.service_pid("ctl-2", "nova-scheduler")
    assert old_pid
    lab.check("ctl-2", f"kill -9 {old_pid}")
    new_pid = wait_for(
        lambda: (p := lab.service_pid("ctl-2", "nova-scheduler")) != old_pid and p,
        timeout_s=lab.bounds.restart_s,
        what="runit to restart nova-scheduler on ctl-2",
    )
    events = lab.events("ctl-2")
    exits = [e for e in events if e.kind == "exit" and e.name == "nova-scheduler"]
    assert exits[-1].fields == {"code": "-1", "signal": "9"}
    starts = [e for e in events if e.kind == "start" and e.name == "nova-scheduler"]
    assert starts[-1].fields["pid"] == str(new_pid)
    assert starts[-1].time_s > exits[-1].time_s


@pytest.mark.timeout(300)  # a hang guard above the sum of its bounds
def test_reboot_over_ssh_restarts_only_that_node(healthy_lab: Lab) -> None:
    lab = healthy_lab
    before = lab.boot_id("cmp-1")
    other = lab.boot_id("cmp-2")
    client = lab.ssh("cmp-1")
    transport = client.get_transport()
    try:
        _, stdout, _ = client.exec_command("reboot", timeout=lab.bounds.command_s)
        status = stdout.channel.recv_exit_status()
    except (paramiko.SSHException, EOFError, OSError):  # the node went away mid-request
        status = -1
    # -1: the session died first (no exit status), as with real hardware most of the time
    assert status in (-1, 0)
    wait_for(
        lambda: not transport.is_active(),
        timeout_s=lab.bounds.node_boot_s,  # the node's PID 1 ends: its sessions with it
        what="the SSH session to drop",
    )
    client.close()
    after = wait_for(
        lambda: lab.boot_id("cmp-1") != before and lab.boot_id("cmp-1"),
        timeout_s=lab.bounds.node_boot_s,
        what="cmp-1 to come back with a new boot id",
    )
    assert after != before
    assert lab.boot_id("cmp-2") == other
    boot_time = max(e.time_s for e in lab.events("cmp-1") if e.kind == "boot")
    wait_for(
        lambda: any(
            e.kind == "start" and e.name == "nova-compute" and e.time_s > boot_time
            for e in lab.events("cmp-1")
        ),
        timeout_s=lab.bounds.node_services_s,
        what="nova-compute to start",
    )
    wait_for(
        lambda: lab.service_state("nova-compute", "cmp-1") == "up",
        timeout_s=lab.bounds.service_seen_up_s,
        what="nova-compute@cmp-1 up after the reboot",
    )


def _ssh_port_answers(address: str) -> bool:
    """A probe, not a wait: a SYN to a node whose link is down gets no answer at all, so any
    connect timeout proves it; 1 s keeps the probe short."""
    try:
        socket.create_connection((address, 22), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.timeout(300)  # a hang guard above the sum of its bounds
def test_bmc_power_off_keeps_the_node_down_until_power_on(healthy_lab: Lab) -> None:
    lab = healthy_lab
    address = lab.nodes["cmp-2"]["address"]
    bmc = lab.bmc("cmp-2")
    assert bmc.get_power()["powerstate"] == "on"
    bmc.set_power("off")
    # the BMC reports the real state: off once the node's power supply has stopped
    wait_for(lambda: bmc.get_power()["powerstate"] == "off", timeout_s=lab.bounds.command_s,
             what="the BMC to report off")  # fmt: skip
    assert not _ssh_port_answers(address)  # off means off: the node answers nothing
    wait_for(
        lambda: lab.service_state("nova-compute", "cmp-2") == "down",
        timeout_s=lab.bounds.service_seen_down_s,
        what="nova-compute@cmp-2 down after power-off",
    )
    assert not _ssh_port_answers(address)  # the link is down: connections time out
    assert holds_for(
        lambda: lab.service_state("nova-compute", "cmp-2") == "down",
        duration_s=lab.bounds.quiet_s,  # heartbeats' worth of silence: it really stays off
    )
    bmc.set_power("on")
    wait_for(
        lambda: lab.service_state("nova-compute", "cmp-2") == "up",
        timeout_s=lab.bounds.node_services_s + lab.bounds.service_seen_up_s,
        what="nova-compute@cmp-2 (a container) up after power-on",
    )
    assert (
        lab.check("cmp-2", "docker inspect -f '{{.State.Running}}' nova_compute").strip() == "true"
    )


@pytest.mark.timeout(300)  # a hang guard above the sum of its bounds
def test_lab_power_command_uses_the_bmc(healthy_lab: Lab) -> None:
    bounds = healthy_lab.bounds
    result = run_lab("power", "cmp-1", "status", timeout_s=bounds.command_s)
    assert result.returncode == 0, result.stderr
    assert "Chassis Power is on" in result.stdout
    before = healthy_lab.boot_id("cmp-1")
    # the command's own waits: off (15 s), boot (20 s), sshd (30 s)
    result = run_lab("power", "cmp-1", "cycle", timeout_s=3 * bounds.node_boot_s)
    assert result.returncode == 0, result.stderr
    assert healthy_lab.boot_id("cmp-1") != before
    bad = run_lab("power", "no-such-node", "status", timeout_s=bounds.command_s)
    assert bad.returncode != 0
    assert "unknown node" in bad.stderr


@pytest.mark.timeout(300)  # a hang guard above the sum of its bounds
def test_osha_ssh_through_a_power_cycle_is_a_clear_error_then_a_reconnect(
    healthy_lab: Lab,
) -> None:
    """Issue 20: osha's own SSH code, used while a node is power-cycled, gives only its own
    classified errors (the node is unreachable, or a command timed out), never a paramiko
    traceback and never a host key or login error; then it reconnects to the new boot."""
    from actors.common.ssh import (
        SshCommandTimeout,
        SshCredentials,
        SshError,
        SshPool,
        SshTarget,
        SshUnreachableError,
    )

    lab = healthy_lab
    node = "cmp-1"
    target = SshTarget(node, lab.nodes[node]["address"])
    creds = SshCredentials(
        private_key=lab.desc["ssh"]["private_key"],
        known_hosts=lab.desc["ssh"]["known_hosts"],
        connect_timeout_s=2.0,
        keepalive_s=1.0,
    )
    pool = SshPool(creds, max_backoff_s=0.5)
    boot_id = "cat /proc/sys/kernel/random/boot_id"
    before = pool.exec(target, boot_id, timeout_s=lab.bounds.command_s).stdout.strip()
    cycle: list[subprocess.CompletedProcess[str]] = []
    cycling = threading.Thread(
        target=lambda: cycle.append(
            run_lab("power", node, "cycle", timeout_s=3 * lab.bounds.node_boot_s)
        )
    )
    outcomes: collections.Counter[str] = collections.Counter()
    errors: list[SshError] = []

    def probe() -> bool:
        """One command through the pool; any exception but an SshError fails the test."""
        try:
            result = pool.exec(target, boot_id, timeout_s=2.0)
            outcomes["ok" if result.exit_status == 0 else "no exit status"] += 1
        except SshError as exc:
            outcomes[type(exc).__name__] += 1
            errors.append(exc)
        return not cycling.is_alive()

    try:
        cycling.start()
        wait_for(probe, timeout_s=3 * lab.bounds.node_boot_s, interval_s=0.05,
                 what="the power cycle to end")  # fmt: skip
        assert cycle[0].returncode == 0, cycle[0].stderr

        def new_boot() -> str:
            return str(pool.exec(target, boot_id, timeout_s=2.0).stdout.strip())

        after = wait_for(
            new_boot,  # the pool backs off between attempts (an attempt may raise: retried)
            timeout_s=lab.bounds.node_boot_s,
            what="a command on the new boot through the same pool",
        )
    finally:
        pool.close()
    print(f"\nSSH through a power cycle of {node}: {dict(outcomes)}")  # noqa: T201 - report
    assert after != before
    assert errors, "no probe saw the node away: the test would prove nothing"
    assert all(isinstance(e, SshUnreachableError | SshCommandTimeout) for e in errors), errors
    assert all(node in e.message for e in errors), errors
