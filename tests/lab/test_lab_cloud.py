"""The lab is a real, healthy OpenStack: services, agents, a server boot, Rally."""

from __future__ import annotations

from pathlib import Path

import pytest

from osha import inventory
from tests.lab.client import Lab
from tests.lab.rally_run import passed, run_task

pytestmark = pytest.mark.lab

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


def test_the_inventory_has_a_group_per_service_of_the_nodes_that_run_it(lab: Lab) -> None:
    """kolla-ansible's layout (``[nova-scheduler]``...), which the shipped profiles target so
    that they fit both topologies: the HA lab's ctl-3 is a controller that runs none of nova's
    services. The role groups stay as they were."""
    hosts = inventory.load(lab.desc["inventory"]).hosts
    assert set(hosts) == set(lab.nodes)
    services = {s for d in lab.nodes.values() for s in d["services"]}
    assert {"nova-scheduler", "nova-conductor", "nova-api", "keystone"} <= services
    for service in sorted(services):
        in_group = [n for n, h in hosts.items() if service in h.groups]
        assert in_group == lab.nodes_running(service), service
    for node, desc in lab.nodes.items():
        assert set(desc["groups"]) <= set(hosts[node].groups), node


@pytest.mark.timeout(300)  # a hang guard above the sum of its bounds
def test_a_server_boots_active_and_deletes(healthy_lab: Lab, server_cleanup: list[object]) -> None:
    server = healthy_lab.boot_server("lab-test-boot")
    server_cleanup.append(server)
    assert server.status == "ACTIVE"
    assert server.compute_host in {"cmp-1", "cmp-2"}
    healthy_lab.delete_server(server)
    assert healthy_lab.cloud().compute.find_server(server.id) is None


@pytest.mark.timeout(600)  # a hang guard above the sum of its bounds
def test_rally_boot_and_delete_server_passes_3_iterations(healthy_lab: Lab, tmp_path: Path) -> None:
    """The lab's Rally environment runs the lab's own task (lab.json ``rally``)."""
    times = 3
    run = run_task(healthy_lab, healthy_lab.desc["rally"]["task_boot_and_delete"],
                   {"times": times, "concurrency": 1},
                   bound_s=healthy_lab.bounds.command_s + times * healthy_lab.bounds.server_boot_s,
                   tmp_path=tmp_path)  # fmt: skip
    passed(run.workload, times)
