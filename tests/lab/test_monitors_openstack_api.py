"""openstack-api against the lab: a stopped conductor, a stopped DHCP agent, and a keystone
outage that every endpoint probe sees and recovers from without a restart."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.monitors.openstack_api import OpenStackApiConfig, OpenStackApiMonitor
from osha import schema
from osha.messages.monitor import StateChange
from osha.testing import FakeContext, wait_for
from tests.lab.client import Lab

pytestmark = pytest.mark.lab
INTERVAL_S = 1.0
# The monitor's timeout_s: one poll takes at most this. nova-api and neutron-api validate
# every token with keystone, whose requests took 1-3 s on average and up to 10-20 s on the
# loaded machine (its uwsgi log); with 3 s every probe timed out ("ConnectTimeout") and the
# monitor never saw anything up. A poll that takes longer is an outage, as it should be.
PROBE_TIMEOUT_S = 10.0


def config(lab: Lab, **overrides: Any) -> OpenStackApiConfig:
    data = {
        "cloud": lab.desc["cloud"],
        "clouds_yaml": lab.desc["clouds_yaml"],
        "interval_s": INTERVAL_S,
        "timeout_s": PROBE_TIMEOUT_S,
        **overrides,
    }
    cfg, problems = schema.build(OpenStackApiConfig, data, file="test")
    assert not problems, problems
    assert cfg is not None
    return cfg


@contextlib.contextmanager
def running(monitor: OpenStackApiMonitor) -> Iterator[OpenStackApiMonitor]:
    monitor.setup()
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(monitor.config.interval_s):
            monitor.poll()

    poller = threading.Thread(target=loop, daemon=True)
    poller.start()
    try:
        yield monitor
    finally:
        stop.set()
        poller.join(30)
        monitor.teardown()


def first_change(ctx: FakeContext, target: str, state: str, after: int) -> StateChange | None:
    found = [c for c in ctx.of(StateChange) if c.target == target and c.state == state]
    return found[after] if len(found) > after else None


@pytest.mark.timeout(600)  # a hang guard above the sum of its bounds
def test_stopped_conductor_is_reported_down_then_up(healthy_lab: Lab) -> None:
    lab = healthy_lab
    target = "nova-conductor@ctl-2"
    ctx = FakeContext("api")
    bounds = lab.bounds
    down_time_s = lab.settings["service_down_time_s"]
    with running(OpenStackApiMonitor(config(lab), ctx)) as mon:
        wait_for(lambda: mon.tracker.state(target) == "up", timeout_s=bounds.service_seen_up_s,
                 what=f"{target} up")  # fmt: skip
        try:
            lab.check("ctl-2", "systemctl stop nova-conductor", timeout_s=bounds.command_s)
            stopped = time.monotonic()
            down = wait_for(
                lambda: first_change(ctx, target, "down", 0),
                timeout_s=bounds.service_seen_down_s,
                what=f"{target} down",
            )
        finally:
            lab.check("ctl-2", "systemctl start nova-conductor", timeout_s=bounds.command_s)
        started = time.monotonic()
        up = wait_for(lambda: first_change(ctx, target, "up", 1),
                      timeout_s=bounds.service_seen_up_s, what="up again")  # fmt: skip
    detected_s = down.first_bad_mono_s - stopped
    print(  # noqa: T201 - the measured figure is part of the report
        f"\n{target}: down reported {detected_s:.1f} s after the stop "
        f"(service_down_time {down_time_s} s), up {up.first_bad_mono_s - started:.1f} s after the "
        f"start; evidence: {down.evidence}"
    )
    # nova says down service_down_time after the last heartbeat (before the stop); the monitor
    # sees it at its next poll: one interval, plus a poll that ran long (its timeout) twice,
    # once for the poll in flight and once for the one that saw it
    assert detected_s <= down_time_s + INTERVAL_S + 2 * PROBE_TIMEOUT_S
    assert "state=down" in down.evidence


@pytest.mark.timeout(600)  # a hang guard above the sum of its bounds
def test_stopped_dhcp_agent_is_not_alive_then_alive(healthy_lab: Lab) -> None:
    lab = healthy_lab
    target = "neutron-dhcp-agent@ctl-1"
    ctx = FakeContext("api")
    with running(OpenStackApiMonitor(config(lab), ctx)) as mon:
        bounds = lab.bounds
        wait_for(lambda: mon.tracker.state(target) == "up", timeout_s=bounds.service_seen_up_s,
                 what=f"{target} alive")  # fmt: skip
        try:
            lab.check("ctl-1", "systemctl stop neutron-dhcp-agent", timeout_s=bounds.command_s)
            down = wait_for(lambda: first_change(ctx, target, "down", 0),
                            timeout_s=bounds.agent_seen_dead_s, what="not alive")  # fmt: skip
        finally:
            lab.check("ctl-1", "systemctl start neutron-dhcp-agent", timeout_s=bounds.command_s)
        wait_for(lambda: first_change(ctx, target, "up", 1), timeout_s=bounds.service_seen_up_s,
                 what="alive again")  # fmt: skip
    assert "alive=False" in down.evidence


@pytest.mark.timeout(600)  # a hang guard above the sum of its bounds
def test_keystone_outage_fails_every_probe_then_recovers_without_restart(healthy_lab: Lab) -> None:
    lab = healthy_lab
    ctx = FakeContext("api")
    bounds = lab.bounds
    with running(OpenStackApiMonitor(config(lab), ctx)) as mon:
        wait_for(
            lambda: (
                mon._endpoints and all(mon.tracker.state(e.target) == "up" for e in mon._endpoints)
            ),
            timeout_s=bounds.service_seen_up_s,
            what="every endpoint up",
        )
        endpoints = [e.target for e in mon._endpoints]
        assert {
            "endpoint:identity",
            "endpoint:compute",
            "endpoint:network",
            "endpoint:image",
            "endpoint:placement",
        } <= set(endpoints)
        # every keystone: ctl-1's (default topology), or ctl-1's and ctl-2's behind the VIP
        # (HA), where HAProxy sends the probes to the one left running
        keystones = lab.nodes_running("keystone")
        try:
            for node in keystones:
                lab.check(node, "systemctl stop keystone", timeout_s=bounds.command_s)
            wait_for(
                lambda: all(mon.tracker.state(t) == "down" for t in endpoints),
                timeout_s=bounds.poll_s + INTERVAL_S + PROBE_TIMEOUT_S,  # the next poll fails
                what="every endpoint probe failing",
            )
        finally:
            for node in keystones:
                lab.check(node, "systemctl start keystone", timeout_s=bounds.command_s)
        wait_for(
            lambda: all(mon.tracker.state(t) == "up" for t in endpoints),
            timeout_s=bounds.service_seen_up_s,
            what="every endpoint back, same monitor",
        )
        seen = len(ctx.emitted)
        wait_for(
            lambda: (
                any(c.target == "nova-scheduler@ctl-1" for c in ctx.of(StateChange))
                and len(ctx.emitted) > seen
            ),
            timeout_s=bounds.poll_s + INTERVAL_S,
            what="polls go on",
        )
    for target in endpoints:
        states = [c.state for c in ctx.of(StateChange) if c.target == target]
        # the outage, then the recovery, in that order; not necessarily the last two changes.
        # keystone, restarted on a loaded machine, takes 2-6 s per token validation for a
        # while, and a service whose requests queue behind those can miss a probe's timeout
        # again after it was first back: issue 20's flake hunt (CPU hog) saw nova-api answer
        # a probe in 12.9 s > PROBE_TIMEOUT_S after every endpoint was up. That second dip is
        # real (nova-api's and keystone's own request logs), and the monitor reports it.
        assert "down" in states, (target, states)
        assert "up" in states[states.index("down") + 1 :], (target, states)
        if states.count("down") > 1:
            print(f"\n{target}: {states.count('down')} outages seen: {states}")  # noqa: T201
    compute_down = [
        c for c in ctx.of(StateChange) if c.target == "endpoint:compute" and c.state == "down"
    ][-1]
    print(f"\nkeystone down: endpoint:compute evidence: {compute_down.evidence}")  # noqa: T201 - report


@pytest.mark.timeout(60)
def test_unknown_cloud_and_bad_credentials_are_clear_findings(lab: Lab, tmp_path: Path) -> None:
    findings = OpenStackApiMonitor(config(lab, cloud="no-such-cloud"), FakeContext()).check()
    assert [f.ok for f in findings] == [False]
    assert "is not in" in findings[0].message
    assert "lab" in findings[0].hint
    import yaml

    data = yaml.safe_load(Path(lab.desc["clouds_yaml"]).read_text())
    data["clouds"]["lab"]["auth"]["password"] = "wrong"  # noqa: S105 - a deliberately bad one
    bad = tmp_path / "clouds.yaml"
    bad.write_text(yaml.safe_dump(data))
    findings = OpenStackApiMonitor(config(lab, clouds_yaml=str(bad)), FakeContext()).check()
    assert [f.ok for f in findings] == [False]
    assert "cannot authenticate" in findings[0].message
    assert "credentials" in findings[0].hint
