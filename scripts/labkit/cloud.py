"""Cloud-side steps of `scripts/lab`, run with the services venv's python.

usage: cloud.py CLOUDS_YAML catalog|resources|wait-healthy [TIMEOUT_S]|boot-check

- catalog: service projects, users, roles, services and endpoints (idempotent).
- resources: the image, flavor and shared network that tests and Rally use (idempotent).
- wait-healthy: wait until every expected nova service is up, every neutron agent alive
  and every compute node has a hypervisor; prints what is missing while waiting.
- boot-check: boot one server to ACTIVE and delete it.
"""

from __future__ import annotations

import os
import sys
import time

import openstack

CLOUD = "lab"
CTL = os.environ.get("LAB_CTL_IP", "10.231.0.11")
ENDPOINTS = [
    ("nova", "compute", f"http://{CTL}:8774/v2.1"),
    ("placement", "placement", f"http://{CTL}:8778"),
    ("glance", "image", f"http://{CTL}:9292"),
    ("neutron", "network", f"http://{CTL}:9696"),
]
EXPECTED_SERVICES = {
    ("nova-scheduler", "ctl-1"),
    ("nova-scheduler", "ctl-2"),
    ("nova-conductor", "ctl-1"),
    ("nova-conductor", "ctl-2"),
    ("nova-compute", "cmp-1"),
    ("nova-compute", "cmp-2"),
}
EXPECTED_AGENTS = {("neutron-dhcp-agent", "ctl-1"), ("neutron-metadata-agent", "ctl-1")}
IMAGE, FLAVOR, NETWORK = "tiny", "m1.tiny", "shared-net"


def connect() -> openstack.connection.Connection:
    return openstack.connect(cloud=CLOUD, api_timeout=15)  # a hung API must not hang `up`


def catalog() -> None:
    c = connect()
    project = c.identity.find_project("service") or c.identity.create_project(
        name="service", domain_id="default"
    )
    roles = [
        c.identity.find_role(r) or c.identity.create_role(name=r)
        for r in ("admin", "service", "member")
    ]
    for name, stype, url in ENDPOINTS:
        user = c.identity.find_user(name, domain_id="default") or c.identity.create_user(
            name=name, password=name, domain_id="default"
        )
        for role in roles[:2]:
            c.identity.assign_project_role_to_user(project, user, role)
        service = c.identity.find_service(name) or c.identity.create_service(name=name, type=stype)
        have = {e.interface for e in c.identity.endpoints(service_id=service.id)}
        for interface in ("public", "internal", "admin"):
            if interface not in have:
                c.identity.create_endpoint(
                    service_id=service.id, interface=interface, url=url, region_id="RegionOne"
                )


def resources(image_file: str) -> None:
    c = connect()
    if not c.image.find_image(IMAGE):
        c.image.create_image(
            name=IMAGE,
            filename=image_file,
            disk_format="raw",
            container_format="bare",
            visibility="public",
            wait=True,
        )
    if not c.compute.find_flavor(FLAVOR):
        c.compute.create_flavor(name=FLAVOR, ram=64, vcpus=1, disk=1, id="1")
    if not c.network.find_network(NETWORK):
        # Database rows only: nothing is plumbed, no packet is ever sent on this subnet.
        net = c.network.create_network(
            name=NETWORK,
            shared=True,
            provider_network_type="flat",
            provider_physical_network="physnet1",
        )
        c.network.create_subnet(
            network_id=net.id,
            name=f"{NETWORK}-subnet",
            ip_version=4,
            cidr="192.0.2.0/24",
            enable_dhcp=False,
        )


def missing() -> list[str]:
    """What keeps the cloud from being healthy, as short phrases (empty when healthy)."""
    c = connect()
    problems = []
    states = {(s.binary, s.host): s.state for s in c.compute.services()}
    for binary, host in sorted(EXPECTED_SERVICES):
        state = states.get((binary, host))
        if state != "up":
            problems.append(f"{binary}@{host} {state or 'absent'}")
    alive = {(a.binary, a.host): a.is_alive for a in c.network.agents()}
    for binary, host in sorted(EXPECTED_AGENTS):
        if not alive.get((binary, host)):
            problems.append(f"{binary}@{host} {'dead' if (binary, host) in alive else 'absent'}")
    hypervisors = {h.name for h in c.compute.hypervisors()}
    for _, host in sorted(k for k in EXPECTED_SERVICES if k[0] == "nova-compute"):
        if not any(name == host or name.startswith(host + ".") for name in hypervisors):
            problems.append(f"hypervisor {host} absent")
    return problems


def wait_healthy(timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    last = ""
    for _ in range(int(timeout_s) + 1):
        try:
            problems = missing()
        except Exception as exc:  # noqa: BLE001 - any API failure means "not healthy yet"; it is printed
            problems = [f"API not ready ({type(exc).__name__})"]
        if not problems:
            return 0
        text = ", ".join(problems)
        if text != last:
            print(f"  waiting: {text}", flush=True)
            last = text
        if time.monotonic() > deadline:
            print(f"lab: cloud not healthy after {timeout_s:.0f}s: {text}", file=sys.stderr)
            return 1
        time.sleep(1)
    return 1


def boot_check() -> None:
    c = connect()
    t0 = time.monotonic()
    server = c.compute.create_server(
        name="lab-boot-check",
        image_id=c.image.find_image(IMAGE).id,
        flavor_id=c.compute.find_flavor(FLAVOR).id,
        networks=[{"uuid": c.network.find_network(NETWORK).id}],
    )
    server = c.compute.wait_for_server(server, wait=120, interval=1)
    t1 = time.monotonic()
    c.compute.delete_server(server)
    c.compute.wait_for_delete(server, wait=120, interval=1)
    print(
        f"  boot-check: ACTIVE on {server.compute_host} in {t1 - t0:.1f}s, deleted in "
        f"{time.monotonic() - t1:.1f}s",
        flush=True,
    )


def main(argv: list[str]) -> int:
    os.environ["OS_CLIENT_CONFIG_FILE"] = argv[1]
    command = argv[2]
    if command == "catalog":
        catalog()
    elif command == "resources":
        resources(argv[3])
    elif command == "wait-healthy":
        return wait_healthy(float(argv[3]) if len(argv) > 3 else 300)
    elif command == "boot-check":
        boot_check()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
