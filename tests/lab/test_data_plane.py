"""The data plane (issue 16): servers that answer pings, die with their compute node and come
back, seen by osha's own ``vm-ping`` against the compute nodes' ground truth.

Needs a lab brought up with the data plane (``OSHA_LAB_DATA_PLANE=1 scripts/lab up``; lab.json
``data_plane.enabled``), and runs with ``pytest tests/lab -m data_plane``; a lab without it
fails these tests with that hint, it never skips them. Four servers on ``tenant-net``, two
pinned to each compute node (admin's ``nova:<host>`` zone; osha's own ``spread`` of the
initial load is a follow-up), booted once for the module and deleted at its end; each test
leaves the lab healthy (``healthy_lab``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from actors.monitors.vm_ping import VmPingConfig, VmPingMonitor
from osha import schema
from osha.messages.monitor import Sample, StateChange
from osha.testing import FakeContext
from tests.lab.client import Lab, run_lab, wait_for

# Not `lab`: the lab tier (`scripts/test --lab`, `-m lab`) runs against a lab without the data
# plane and stays as it was. Run these against a data-plane lab with `-m data_plane`.
pytestmark = pytest.mark.data_plane

PREFIX = "osha-dpt-"  # vm-ping watches every server named so: none but this module's
INTERVAL_S = 0.2  # vm-ping's probe interval: sub-second, as the issue asks
TIMEOUT_S = 0.5
DOWN_AFTER_LOST = 3
#: The issue's accuracy: vm-ping's outage of a server matches the ground truth (power-off ->
#: guest resumed) within one probe interval plus 0.3 s. Each end is off by at most a probe
#: interval: the outage starts at the send time of the first probe lost (0 to INTERVAL_S after
#: the power-off) and ends at the arrival of the first reply (0 to INTERVAL_S after the guest's
#: start, plus a sub-millisecond RTT); the 0.3 s is for a probe thread that a loaded 2-core
#: machine wakes late. The second bound holds because (a) the guest announces its address when it
#: starts (gratuitous ARP, scripts/labkit/node/garp.py), as a booting OS does: after an outage of
#: several seconds the machine's ARP entry for the guest may have failed, and a silent guest
#: stayed unreachable until the machine's next once-a-second ARP request (lab 2, 2026-12-05:
#: 8.91 s seen, 8.19 s truth); and (b) vm-ping dates "up" from the reply's arrival, not from
#: the send time of a request that may have waited in that ARP queue (up to a timeout early).
OUTAGE_TOLERANCE_S = INTERVAL_S + 0.3


def data_plane(lab: Lab) -> dict[str, Any]:
    dp: dict[str, Any] = lab.desc.get("data_plane") or {}
    if not dp.get("enabled"):
        pytest.fail(
            "this lab has no data plane (lab.json data_plane.enabled); bring it up with "
            "`scripts/lab down && OSHA_LAB_DATA_PLANE=1 scripts/lab up`",
            pytrace=False,
        )
    return dp


@dataclass
class Watch:
    """osha's vm-ping, polled every INTERVAL_S by a thread (as its actor host would)."""

    lab: Lab
    network: str
    ctx: FakeContext = field(default_factory=lambda: FakeContext("vm-ping"))
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        cfg, problems = schema.build(VmPingConfig, {
            "interval_s": INTERVAL_S, "timeout_s": TIMEOUT_S, "down_after_lost": DOWN_AFTER_LOST,
            "report_interval_s": 0.0, "server_prefix": PREFIX, "cloud": self.lab.desc["cloud"],
            "clouds_yaml": self.lab.desc["clouds_yaml"], "networks": [self.network],
            "discover_interval_s": 1.0,
        }, file="test")  # fmt: skip
        assert cfg is not None, problems
        self.mon = VmPingMonitor(cfg, self.ctx)
        self.mon.setup()
        self.thread = threading.Thread(target=self._run, name="vm-ping-poll", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(INTERVAL_S):  # bounded by the stop flag
            self.mon.poll()

    def states(self) -> dict[str, str]:
        return {t: str(s) for t, s in self.mon.tracker.states().items()}

    def lost_since(self, target: str, mono_s: float) -> int:
        return sum(s.failures for s in self.ctx.of(Sample) if s.target == target and
                   s.mono_s >= mono_s)  # fmt: skip

    def edges(self, target: str, after_mono_s: float, up_after_mono_s: float = 0.0) -> tuple[
        float, float]:  # fmt: skip
        """(down, up): the first lost probe of the first outage after ``after_mono_s``, and the
        first reply after it (and after ``up_after_mono_s``)."""
        changes = [c for c in self.ctx.of(StateChange) if c.target == target]
        down = next(c.first_bad_mono_s for c in changes
                    if c.state == "down" and c.first_bad_mono_s > after_mono_s)  # fmt: skip
        after = max(down, up_after_mono_s)
        up = next(c.first_bad_mono_s for c in changes
                  if c.state == "up" and c.first_bad_mono_s > after)  # fmt: skip
        return down, up

    def outage_s(self, target: str, after_mono_s: float) -> float:
        """From the first lost probe of the outage after ``after_mono_s`` to the first reply."""
        down, up = self.edges(target, after_mono_s)
        return up - down

    def ups_between(self, target: str, start_mono_s: float, end_mono_s: float) -> int:
        return sum(1 for c in self.ctx.of(StateChange) if c.target == target and
                   c.state == "up" and start_mono_s < c.first_bad_mono_s < end_mono_s)  # fmt: skip

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.mon.teardown()


@pytest.fixture(scope="module")
def servers(lab: Lab) -> Iterator[dict[str, Any]]:
    """Four servers on the tenant network, two on each compute node: ``vm:<name>`` -> server."""
    dp = data_plane(lab)
    c = lab.cloud()
    net = c.network.find_network(dp["network"], ignore_missing=False)
    for old in c.compute.servers(name=f"^{PREFIX}"):  # an interrupted run's: vm-ping would
        lab.delete_server(old)                       # watch them too
    made = []
    try:
        for n, host in enumerate(["cmp-1", "cmp-1", "cmp-2", "cmp-2"], start=1):
            made.append(c.compute.create_server(
                name=f"{PREFIX}{n}", image_id=c.image.find_image("tiny").id,
                flavor_id=c.compute.find_flavor("m1.tiny").id, networks=[{"uuid": net.id}],
                availability_zone=f"nova:{host}",
            ))  # fmt: skip
        booted = [c.compute.wait_for_server(s, wait=int(lab.bounds.server_boot_s), interval=1)
                  for s in made]  # fmt: skip
        yield {f"vm:{s.name}": s for s in booted}
    finally:
        for s in made:
            with contextlib.suppress(Exception):  # best effort: deleted whatever happened
                lab.delete_server(s)


@pytest.fixture
def watch(lab: Lab, servers: dict[str, Any]) -> Iterator[Watch]:
    w = Watch(lab, data_plane(lab)["network"])
    try:
        # discovery (1 s) and three probes; bounded by one API poll
        wait_for(lambda: w.states() == dict.fromkeys(servers, "up"), lab.bounds.poll_s,
                 what=f"vm-ping sees all of {sorted(servers)} up")  # fmt: skip
        yield w
    finally:
        w.close()


def on_host(servers: dict[str, Any], host: str) -> set[str]:
    return {t for t, s in servers.items() if s.compute_host == host}


def hypervisor_list(dp: dict[str, Any], host: str) -> dict[str, int]:
    """The running guests of ``host``, as its hypervisor daemon says (its socket is a file
    of the lab directory, reachable from the machine)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(dp["computes"][host]["hypervisor_socket"])
        s.sendall(b'{"op": "list"}\n')
        with s.makefile("rb") as f:
            reply: dict[str, Any] = json.loads(f.readline())
    assert reply["ok"], reply
    running: dict[str, int] = reply["running"]
    return running


def guest_events(lab: Lab, node: str, uuid: str, kind: str, since_s: float) -> list[Any]:
    return [e for e in lab.events(node)
            if e.kind == kind and e.name == uuid and e.time_s >= since_s]  # fmt: skip


@pytest.mark.timeout(600)  # a hang guard above the sum of its bounds
def test_four_spread_servers_answer_vm_ping(
    healthy_lab: Lab, servers: dict[str, Any], watch: Watch
) -> None:
    lab = healthy_lab
    assert {s.compute_host for s in servers.values()} == {"cmp-1", "cmp-2"}
    for target, server in servers.items():
        started = guest_events(lab, server.compute_host, server.id, "guest-start", 0)
        assert started, f"{target}: no guest-start in {server.compute_host}'s events"
        assert started[0].fields["reason"] == "spawn"
        assert started[0].fields["ip"].split("/")[0] in str(server.addresses)
    assert all(watch.lost_since(t, 0) <= DOWN_AFTER_LOST for t in servers)


@pytest.mark.timeout(900)
def test_power_off_takes_exactly_its_servers_down_and_resume_brings_them_back(
    healthy_lab: Lab, servers: dict[str, Any], watch: Watch
) -> None:
    lab = healthy_lab
    bounds = lab.bounds
    on_cmp1, on_cmp2 = on_host(servers, "cmp-1"), on_host(servers, "cmp-2")
    off_wall_s, off_mono_s = time.time(), time.monotonic()
    result = run_lab("power", "cmp-1", "off", timeout_s=bounds.command_s)
    assert result.returncode == 0, result.stderr
    # DOWN_AFTER_LOST probes of TIMEOUT_S each, well inside one poll bound
    wait_for(lambda: all(watch.states()[t] == "down" for t in on_cmp1), bounds.poll_s,
             what=f"{sorted(on_cmp1)} down after cmp-1's power-off")  # fmt: skip
    assert {t for t, s in watch.states().items() if s == "down"} == on_cmp1
    result = run_lab("power", "cmp-1", "on", timeout_s=3 * bounds.node_boot_s)
    assert result.returncode == 0, result.stderr
    # nova-compute starts with the node, then resumes its guests in init_host
    wait_for(lambda: all(watch.states()[t] == "up" for t in on_cmp1),
             bounds.node_services_s + bounds.service_seen_up_s,
             what=f"{sorted(on_cmp1)} up again (resume_guests_state_on_host_boot)")  # fmt: skip
    lost = {t: watch.lost_since(t, off_mono_s) for t in sorted(on_cmp2)}
    assert all(n <= 1 for n in lost.values()), f"cmp-2's servers missed probes: {lost}"
    off = [e for e in lab.events("cmp-1") if e.kind == "power-off" and e.time_s >= off_wall_s - 1]
    assert len(off) == 1, off
    report = []

    def mono(wall_s: float) -> float:  # a ground-truth time on this process's monotonic clock
        return off_mono_s + (wall_s - off_wall_s)

    for target in sorted(on_cmp1):
        resumed = guest_events(lab, "cmp-1", servers[target].id, "guest-start", off[0].time_s)
        assert [e.fields["reason"] for e in resumed] == ["resume"], resumed
        truth_s = resumed[0].time_s - off[0].time_s
        down_s, up_s = watch.edges(target, off_mono_s)
        seen_s = up_s - down_s
        # each edge against its ground truth, so that a failure says which end was off
        late_down_s, late_up_s = down_s - mono(off[0].time_s), up_s - mono(resumed[0].time_s)
        report.append(f"{target} {seen_s:.2f} s (truth {truth_s:.2f} s; first lost probe "
                      f"{late_down_s:+.2f} s after the power-off, first reply "
                      f"{late_up_s:+.2f} s after the guest's start)")  # fmt: skip
        assert abs(seen_s - truth_s) <= OUTAGE_TOLERANCE_S, report[-1]
    c = lab.cloud()
    assert all(c.compute.get_server(s.id).status == "ACTIVE" for s in servers.values())
    print(f"\ndata-plane outage of cmp-1's servers: {'; '.join(report)}")  # noqa: T201 - report


@pytest.mark.timeout(300)
def test_link_down_of_a_compute_tenant_link_takes_its_servers_off_and_back(
    healthy_lab: Lab, servers: dict[str, Any], watch: Watch
) -> None:
    lab = healthy_lab
    veth = data_plane(lab)["computes"]["cmp-2"]["veth"]
    on_cmp2 = on_host(servers, "cmp-2")
    try:
        subprocess.run(["ip", "link", "set", veth, "down"], check=True, timeout=30)
        wait_for(lambda: all(watch.states()[t] == "down" for t in on_cmp2), lab.bounds.poll_s,
                 what=f"{sorted(on_cmp2)} down after link-down")  # fmt: skip
        assert {t for t, s in watch.states().items() if s == "down"} == on_cmp2
    finally:
        subprocess.run(["ip", "link", "set", veth, "up"], check=True, timeout=30)
    wait_for(lambda: set(watch.states().values()) == {"up"}, lab.bounds.poll_s,
             what="every server up after link-up")  # fmt: skip


@pytest.mark.timeout(600)
def test_stop_start_and_reboot_act_on_the_guest(
    healthy_lab: Lab, servers: dict[str, Any], watch: Watch
) -> None:
    lab = healthy_lab
    c = lab.cloud()
    target = sorted(on_host(servers, "cmp-2"))[0]
    server = servers[target]
    since_s = time.time()
    c.compute.stop_server(server)
    c.compute.wait_for_server(server, status="SHUTOFF", wait=int(lab.bounds.server_boot_s))
    wait_for(lambda: watch.states()[target] == "down", lab.bounds.poll_s, what=f"{target} down")
    assert {t for t, s in watch.states().items() if s == "down"} == {target}
    c.compute.start_server(server)
    c.compute.wait_for_server(server, status="ACTIVE", wait=int(lab.bounds.server_boot_s))
    wait_for(lambda: watch.states()[target] == "up", lab.bounds.poll_s, what=f"{target} up")
    c.compute.reboot_server(server, "HARD")
    def rebooted() -> bool:
        starts = guest_events(lab, "cmp-2", server.id, "guest-start", since_s)
        return bool(starts) and str(starts[-1].fields["reason"]) == "reboot"

    wait_for(rebooted, lab.bounds.server_boot_s, what="the guest's reboot")
    reasons = [(e.kind, e.fields["reason"]) for e in lab.events("cmp-2")
               if e.name == server.id and e.time_s >= since_s]  # fmt: skip
    assert reasons == [("guest-stop", "power-off"), ("guest-start", "power-on"),
                       ("guest-stop", "reboot"), ("guest-start", "reboot")], reasons  # fmt: skip
    wait_for(lambda: watch.states()[target] == "up", lab.bounds.poll_s, what=f"{target} up")


@pytest.mark.timeout(600)
def test_delete_removes_the_guest(healthy_lab: Lab, server_cleanup: list[Any]) -> None:
    lab = healthy_lab
    dp = data_plane(lab)
    c = lab.cloud()
    net = c.network.find_network(dp["network"], ignore_missing=False)
    server = c.compute.create_server(
        name=f"{PREFIX}delete", image_id=c.image.find_image("tiny").id,
        flavor_id=c.compute.find_flavor("m1.tiny").id, networks=[{"uuid": net.id}],
    )  # fmt: skip
    server_cleanup.append(server)
    server = c.compute.wait_for_server(server, wait=int(lab.bounds.server_boot_s), interval=1)
    host = server.compute_host
    lab.delete_server(server)
    stops = guest_events(lab, host, server.id, "guest-stop", 0)
    assert [e.fields["reason"] for e in stops] == ["destroy"], stops
    assert server.id not in hypervisor_list(dp, host)


@pytest.mark.timeout(900)
def test_evacuate_from_a_dead_compute_brings_its_servers_back_on_the_other(
    healthy_lab: Lab, servers: dict[str, Any], watch: Watch
) -> None:
    """Last in the module: its servers end on cmp-2. Data-plane time to recover = from the
    first lost probe to the first reply on the new host.

    Since API 2.95 (nova 27, 2023.1; openstacksdk negotiates the newest, 2.100 in the lab) an
    evacuated server is kept stopped at its destination: nova rebuilds it there (the driver
    spawns the guest), then stops it ("bringing vm to original state: 'stopped'" in
    nova-compute's log); the operator starts it. Lab 2, 2026-12-05: the evacuations worked in
    7 s, and the test, waiting for ACTIVE, timed out on a SHUTOFF server."""
    lab = healthy_lab
    bounds = lab.bounds
    c = lab.cloud()
    on_cmp1 = on_host(servers, "cmp-1")
    off_wall_s, off_mono_s = time.time(), time.monotonic()
    result = run_lab("power", "cmp-1", "off", timeout_s=bounds.command_s)
    assert result.returncode == 0, result.stderr
    # nova refuses to evacuate from a host whose service it still sees up
    wait_for(lambda: lab.service_state("nova-compute", "cmp-1") == "down",
             bounds.service_seen_down_s, what="nova-compute@cmp-1 down")  # fmt: skip
    for target in sorted(on_cmp1):
        c.compute.evacuate_server(servers[target], host="cmp-2")

    def on_cmp2(target: str, status: str) -> Any:
        """The server ``status`` on cmp-2 with no task left (evacuate is asynchronous: the
        server reads ACTIVE on cmp-1 until the rebuild starts)."""
        now = c.compute.get_server(servers[target].id)
        assert now.status != "ERROR", f"{target}: {now.fault}"  # named by the timeout
        done = now.status == status and now.compute_host == "cmp-2" and not now.task_state
        return now if done else None

    for target in sorted(on_cmp1):
        wait_for(lambda t=target: on_cmp2(t, "SHUTOFF"), bounds.server_boot_s, interval_s=1.0,
                 what=f"{target} rebuilt on cmp-2 and stopped (API >= 2.95)")  # fmt: skip
    start_mono_s = time.monotonic()
    for target in sorted(on_cmp1):
        c.compute.start_server(servers[target].id)
    for target in sorted(on_cmp1):
        wait_for(lambda t=target: on_cmp2(t, "ACTIVE"), bounds.server_boot_s, interval_s=1.0,
                 what=f"{target} started on cmp-2")  # fmt: skip
        truth = [(e.kind, e.fields["reason"]) for e in lab.events("cmp-2")
                 if e.name == servers[target].id and e.time_s >= off_wall_s]  # fmt: skip
        assert truth == [("guest-start", "spawn"), ("guest-stop", "power-off"),
                         ("guest-start", "power-on")], truth  # fmt: skip
    wait_for(lambda: all(watch.states()[t] == "up" for t in on_cmp1), bounds.poll_s,
             what=f"{sorted(on_cmp1)} answer from cmp-2")  # fmt: skip
    recovered, glimpses = {}, {}
    for t in sorted(on_cmp1):
        down_s, up_s = watch.edges(t, off_mono_s, start_mono_s)
        recovered[t] = round(up_s - down_s, 2)
        # the rebuilt guest ran for a moment before nova stopped it: vm-ping may have seen it
        glimpses[t] = watch.ups_between(t, down_s, start_mono_s)
    # cmp-1 back: nova-compute removes its copies of the evacuated servers (their
    # definitions; their guests died with the node)
    result = run_lab("power", "cmp-1", "on", timeout_s=3 * bounds.node_boot_s)
    assert result.returncode == 0, result.stderr
    instances = lab.desc["dir"] + "/data/cmp-1/nova/instances"
    wait_for(lambda: not any(Path(instances, servers[t].id, "osha-guest.json").exists()
                             for t in on_cmp1),
             bounds.node_services_s + bounds.service_seen_up_s,
             what="cmp-1's definitions of the evacuated servers removed")  # fmt: skip
    assert not set(hypervisor_list(data_plane(lab), "cmp-1")) & {servers[t].id for t in on_cmp1}
    print(f"\ndata-plane time to recover by evacuation and start: {recovered} "  # noqa: T201
          f"(answers between rebuild and stop: {glimpses})")  # fmt: skip
