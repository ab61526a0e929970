"""Cloud-side steps of `scripts/lab`, run with the services venv's python.

usage: cloud.py CLOUDS_YAML catalog|resources|wait-healthy [TIMEOUT_S]|rehash-passwords|boot-check
       cloud.py CLOUDS_YAML tenant-network NAME CIDR HOST_ADDRESS

- catalog: service projects, users, roles, services and endpoints (idempotent).
- resources: the image, flavor and shared network that tests and Rally use (idempotent).
- wait-healthy: wait until every expected nova service is up, every neutron agent alive
  (with $LAB_NODES_DIR: each with a heartbeat after the start of its current process, from
  the nodes' events files), every compute node has a hypervisor, and the image and
  placement APIs answer; prints what is missing while waiting.
- rehash-passwords: set the lab's passwords again (keystone hashes them with its rounds).
- boot-check: boot one server to ACTIVE and delete it.
- tenant-network: the data plane's network and subnet (idempotent; lib/dataplane.sh).
"""

from __future__ import annotations

import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

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


def rehash_passwords() -> None:
    """Set the lab's passwords again, so that keystone hashes them with its configured
    (cheap) bcrypt rounds; keystone checks a password with the rounds it was hashed with."""
    c = connect()
    for name, password in [("admin", "admin"), *((n, n) for n, _, _ in ENDPOINTS)]:
        user = c.identity.find_user(name, domain_id="default")
        if user is not None:
            c.identity.update_user(user, password=password)


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


def tenant_network(name: str, cidr: str, host_address: str) -> None:
    """The data plane's network (lib/dataplane.sh): flat on its own physical network, in the
    admin project and not shared, so Rally's users and servers booted without a network see
    only shared-net. Its gateway is osha's address on the machine's tenant bridge."""
    c = connect()
    net = c.network.find_network(name)
    if net is None:
        net = c.network.create_network(
            name=name, shared=False, provider_network_type="flat",
            provider_physical_network="tenant",
        )  # fmt: skip
    if not any(s.cidr == cidr for s in c.network.subnets(network_id=net.id)):
        base = cidr.rsplit(".", 1)[0]
        c.network.create_subnet(
            network_id=net.id, name=f"{name}-subnet", ip_version=4, cidr=cidr,
            gateway_ip=host_address, enable_dhcp=False,
            allocation_pools=[{"start": f"{base}.10", "end": f"{base}.250"}],
        )  # fmt: skip


EVENTS_TAIL_BYTES = 1 << 20  # the starts that matter are recent; the file grows for days


def started_at(nodes_dir: str) -> dict[tuple[str, str], float]:
    """(service, node) -> wall time of the latest start of its process, from the nodes'
    events files (``$LAB_DIR/nodes/NODE/events.log``); empty without a directory."""
    starts: dict[tuple[str, str], float] = {}
    if not nodes_dir:
        return starts
    for events in sorted(Path(nodes_dir).glob("*/events.log")):
        try:
            with events.open("rb") as f:
                f.seek(max(0, events.stat().st_size - EVENTS_TAIL_BYTES))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "start":
                try:
                    starts[(parts[2], events.parent.name)] = float(parts[0])
                except ValueError:
                    continue
    return starts


def _epoch_s(text: str | None) -> float | None:
    """nova's ``updated_at`` / neutron's ``last_heartbeat_at`` (UTC, whole seconds) as epoch."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC).timestamp()


def _stale(heartbeat: str | None, start_s: float | None) -> bool:
    """True when the last heartbeat may be older than the start of the current process.

    The database keeps whole seconds, so only a heartbeat in a later second than the start
    is surely the new process's own.
    """
    beat_s = _epoch_s(heartbeat)
    return start_s is not None and (beat_s is None or beat_s <= math.floor(start_s))


def missing(nodes_dir: str = "") -> list[str]:
    """What keeps the cloud from being healthy, as short phrases (empty when healthy).

    With ``nodes_dir``, a service or agent counts only once it sent a heartbeat after the
    start of its current process: right after a restart, nova still shows the old
    process's heartbeat as "up" for up to service_down_time.
    """
    c = connect()
    starts = started_at(nodes_dir)
    problems = []
    services = {(s.binary, s.host): s for s in c.compute.services()}
    for binary, host in sorted(EXPECTED_SERVICES):
        service = services.get((binary, host))
        if service is None or service.state != "up":
            problems.append(f"{binary}@{host} {service.state if service else 'absent'}")
        elif _stale(service.updated_at, starts.get((binary, host))):
            problems.append(f"{binary}@{host} no heartbeat since its start")
    agents = {(a.binary, a.host): a for a in c.network.agents()}
    for binary, host in sorted(EXPECTED_AGENTS):
        agent = agents.get((binary, host))
        if agent is None or not agent.is_alive:
            problems.append(f"{binary}@{host} {'dead' if agent else 'absent'}")
        elif _stale(agent.last_heartbeat_at, starts.get((binary, host))):
            problems.append(f"{binary}@{host} no heartbeat since its start")
    hypervisors = {h.name for h in c.compute.hypervisors()}
    for _, host in sorted(k for k in EXPECTED_SERVICES if k[0] == "nova-compute"):
        if not any(name == host or name.startswith(host + ".") for name in hypervisors):
            problems.append(f"hypervisor {host} absent")
    next(iter(c.image.images(limit=1)), None)  # glance answers (raises otherwise)
    if c.placement.get("/").status_code != 200:
        problems.append("placement API not answering")
    return problems


def wait_healthy(timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    last = ""
    for _ in range(int(timeout_s) + 1):
        try:
            problems = missing(os.environ.get("LAB_NODES_DIR", ""))
        except Exception as exc:  # noqa: BLE001 - any API failure means "not healthy yet"; it is printed
            problems = [f"API not ready ({type(exc).__name__}: {str(exc)[:120]})"]
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
    elif command == "rehash-passwords":
        rehash_passwords()
    elif command == "tenant-network":
        tenant_network(argv[3], argv[4], argv[5])
    elif command == "boot-check":
        boot_check()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
