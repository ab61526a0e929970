"""The control plane is genuinely HA for nova-scheduler: one of the pair may die."""

from __future__ import annotations

import time

import pytest

from tests.lab.conftest import Lab, wait_for

pytestmark = pytest.mark.lab

HOLD_DOWN_S = 25  # RestartSec= for this test, longer than service_down_time


@pytest.mark.timeout(240)
def test_kill_9_of_nova_scheduler_on_ctl_1(healthy_lab: Lab, server_cleanup: list[object]) -> None:
    """kill -9 over paramiko: nova sees the scheduler down, servers still boot through
    ctl-2's scheduler, and runit brings it back by itself.

    runit restarts a killed service within a second, faster than nova's liveness can see,
    so the test sets a RestartSec= (the lab's restart_sec file, as `systemctl edit` would)
    to keep the outage visible. `scripts/lab reset` removes it afterwards.
    """
    lab = healthy_lab
    service_dir = lab.nodes["ctl-1"]["service_dir"]
    lab.check("ctl-1", f"echo {HOLD_DOWN_S} > {service_dir}/nova-scheduler/restart_sec")
    old_pid = lab.service_pid("ctl-1", "nova-scheduler")
    assert old_pid

    client = lab.ssh("ctl-1")
    try:
        killed_at = time.time()
        _, stdout, _ = client.exec_command(f"kill -9 {old_pid}")
        assert stdout.channel.recv_exit_status() == 0
    finally:
        client.close()

    budget_s = lab.settings["service_down_time_s"] + 8
    wait_for(
        lambda: lab.service_state("nova-scheduler", "ctl-1") == "down",
        timeout_s=budget_s,
        what="nova-scheduler@ctl-1 down in the service list",
    )
    seen_down_after_s = time.time() - killed_at
    assert seen_down_after_s <= budget_s
    assert lab.service_state("nova-scheduler", "ctl-2") == "up"

    server = lab.boot_server("lab-test-ha")  # scheduled by ctl-2's scheduler: ctl-1's is dead
    server_cleanup.append(server)
    assert server.status == "ACTIVE"
    assert lab.service_state("nova-scheduler", "ctl-1") == "down"

    new_pid = wait_for(
        lambda: (p := lab.service_pid("ctl-1", "nova-scheduler")) != old_pid and p,
        timeout_s=HOLD_DOWN_S + 15,
        what="runit to restart nova-scheduler on ctl-1",
    )
    wait_for(
        lambda: lab.service_state("nova-scheduler", "ctl-1") == "up",
        timeout_s=60,
        what="nova-scheduler@ctl-1 up again",
    )
    events = [
        e for e in lab.events("ctl-1") if e.name == "nova-scheduler" and e.time_s >= killed_at - 1
    ]
    assert [(e.kind, e.fields.get("signal")) for e in events[:2]] == [
        ("exit", "9"),
        ("start", None),
    ]
    assert events[1].fields["pid"] == str(new_pid)
