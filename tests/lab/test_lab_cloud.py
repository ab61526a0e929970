"""The lab is a real, healthy OpenStack: services, agents, a server boot, Rally."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.lab.conftest import Lab

pytestmark = pytest.mark.lab

TASK_UUID = re.compile(r"Task .*?([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}): started")

EXPECTED_SERVICES = {
    ("nova-scheduler", "ctl-1"),
    ("nova-scheduler", "ctl-2"),
    ("nova-conductor", "ctl-1"),
    ("nova-conductor", "ctl-2"),
    ("nova-compute", "cmp-1"),
    ("nova-compute", "cmp-2"),
}


@pytest.mark.timeout(60)
def test_every_nova_service_is_up_and_every_agent_alive(healthy_lab: Lab) -> None:
    c = healthy_lab.cloud()
    states = {(s.binary, s.host): s.state for s in c.compute.services()}
    assert {k: v for k, v in states.items() if k in EXPECTED_SERVICES} == dict.fromkeys(
        EXPECTED_SERVICES, "up"
    )
    agents = {(a.binary, a.host): a.is_alive for a in c.network.agents()}
    assert agents == {
        ("neutron-dhcp-agent", "ctl-1"): True,
        ("neutron-metadata-agent", "ctl-1"): True,
    }


@pytest.mark.timeout(300)  # a hang guard above the sum of its bounds
def test_a_server_boots_active_and_deletes(healthy_lab: Lab, server_cleanup: list[object]) -> None:
    server = healthy_lab.boot_server("lab-test-boot")
    server_cleanup.append(server)
    assert server.status == "ACTIVE"
    assert server.compute_host in {"cmp-1", "cmp-2"}
    healthy_lab.delete_server(server)
    assert healthy_lab.cloud().compute.find_server(server.id) is None


@pytest.mark.timeout(600)  # a hang guard above the sum of its bounds
def test_rally_boot_and_delete_server_passes_3_iterations(healthy_lab: Lab) -> None:
    """The lab's Rally environment runs its task. The environment and the task are named
    explicitly: Rally's "default" environment and task live in ~/.rally/globals, which every
    Rally on the machine shares (another lab instance, osha's runner tests)."""
    rally = healthy_lab.desc["rally"]
    times = 3
    rally_s = healthy_lab.bounds.command_s  # Rally's own start, context setup and cleanup
    base = [rally["bin"], "--config-file", rally["config_file"]]
    started = subprocess.run(
        [
            *base,
            "task",
            "start",
            rally["task_boot_and_delete"],
            "--task-args",
            json.dumps({"times": times, "concurrency": 1}),
            "--env",
            rally["env"],
            "--tag",
            "lab-test",
            "--no-use",
        ],
        capture_output=True,
        text=True,
        timeout=rally_s + times * healthy_lab.bounds.server_boot_s,
        check=False,
    )
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    found = TASK_UUID.search(started.stdout)
    assert found, started.stdout[-3000:]
    report = subprocess.run(
        [*base, "task", "results", found.group(1)],
        capture_output=True,
        text=True,
        timeout=rally_s,
        check=True,
    )
    (workload,) = json.loads(report.stdout)
    assert len(workload["result"]) == times
    assert [r["error"] for r in workload["result"]] == [[]] * times
    assert workload["sla"]
    assert all(s["success"] for s in workload["sla"])
