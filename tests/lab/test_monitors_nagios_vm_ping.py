"""nagios and vm-ping against the lab: check_tcp on a stopped keystone goes CRITICAL then OK
with its perfdata as numbers, a check over SSH on a node, and pings of lab addresses only.

Needs Debian's monitoring-plugins-basic on the machine (the lab nodes share its /usr).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from actors.monitors.nagios import NagiosConfig, NagiosMonitor
from actors.monitors.vm_ping import VmPingConfig, VmPingMonitor
from osha import schema
from osha.messages.monitor import Metric, Sample, StateChange
from osha.testing import FakeContext, wait_for
from tests.lab.client import Lab

pytestmark = pytest.mark.lab
PLUGINS = "/usr/lib/nagios/plugins"


def build(cls: type[Any], data: dict[str, Any]) -> Any:
    cfg, problems = schema.build(cls, data, file="test")
    assert not problems, problems
    return cfg


@pytest.fixture
def plugins() -> None:
    if not os.access(f"{PLUGINS}/check_tcp", os.X_OK):
        pytest.fail(
            "the nagios lab test needs monitoring-plugins-basic (apt-get install -y "
            "monitoring-plugins-basic); the lab install should provide it",
            pytrace=False,
        )


def poll_until(mon: Any, predicate: Any, timeout_s: float, what: str) -> Any:
    """Poll the monitor (as the actor host would) until the predicate holds."""
    return wait_for(
        lambda: (mon.poll(), predicate())[1], timeout_s=timeout_s, interval_s=0.2, what=what
    )


@pytest.mark.timeout(300)  # a hang guard above the sum of its bounds
def test_check_tcp_critical_on_a_stopped_keystone_then_ok(healthy_lab: Lab, plugins: None) -> None:
    lab = healthy_lab
    ctl1 = lab.nodes["ctl-1"]["address"]
    cfg = build(
        NagiosConfig,
        {
            "interval_s": 0.5,
            "report_interval_s": 0.0,
            "inventory": lab.desc["inventory"],
            "ssh": {
                "private_key": lab.desc["ssh"]["private_key"],
                "known_hosts": lab.desc["ssh"]["known_hosts"],
            },
            "checks": [
                {
                    "target": "keystone-tcp",
                    "command": ["check_tcp", "-H", ctl1, "-p", "5000", "-t", "2"],
                },
                {
                    "target": "procs@ctl-2",
                    "node": "ctl-2",
                    "command": ["check_procs", "-c", "1:", "-C", "sshd"],
                },
            ],
        },
    )
    ctx = FakeContext("nagios")
    mon = NagiosMonitor(cfg, ctx)
    assert all(f.ok for f in mon.check()), mon.check()
    mon.setup()
    try:
        bounds = lab.bounds  # a check runs at every poll: one poll's time is its bound
        poll_until(mon, lambda: mon.tracker.state("keystone-tcp") == "up", bounds.poll_s,
                   "keystone port OK")  # fmt: skip
        poll_until(mon, lambda: mon.tracker.state("procs@ctl-2") == "up", bounds.poll_s,
                   "remote check OK")  # fmt: skip
        try:
            lab.check("ctl-1", "systemctl stop keystone", timeout_s=bounds.command_s)
            poll_until(mon, lambda: mon.tracker.state("keystone-tcp") == "down", bounds.poll_s,
                       "CRITICAL")  # fmt: skip
        finally:
            lab.check("ctl-1", "systemctl start keystone", timeout_s=bounds.command_s)
        poll_until(mon, lambda: mon.tracker.state("keystone-tcp") == "up",
                   bounds.service_seen_up_s, "OK again")  # fmt: skip
    finally:
        mon.teardown()
    states = [(c.state, c.evidence) for c in ctx.of(StateChange) if c.target == "keystone-tcp"]
    assert [s for s, _ in states][-3:] == ["up", "down", "up"]
    assert states[-2][1].startswith("CRITICAL: ")
    times = [m for m in ctx.of(Metric) if m.target == "keystone-tcp" and m.name == "time"]
    assert times
    assert times[0].unit == "s"
    assert isinstance(times[0].median, float)
    assert 0 <= times[0].median < 2  # check_tcp's own timeout (-t 2) bounds it
    procs = [m for m in ctx.of(Metric) if m.target == "procs@ctl-2" and m.name == "procs"]
    assert procs
    assert procs[0].last >= 1
    print(f"\nnagios: {states[-2][1]}; time median {times[0].median * 1000:.2f} ms")  # noqa: T201 - report


@pytest.mark.timeout(60)
def test_vm_ping_lab_addresses_and_a_silent_one(lab: Lab) -> None:
    # Only lab addresses: two nodes and an unused address of the lab subnet.
    targets = {
        "ctl-1": lab.nodes["ctl-1"]["address"],
        "cmp-1": lab.nodes["cmp-1"]["address"],
        "ghost": lab.unused_address(),
    }
    cfg = build(
        VmPingConfig,
        {
            "interval_s": 0.1,
            "timeout_s": 0.5,
            "down_after_lost": 3,
            "report_interval_s": 0.0,
            "targets": targets,
        },
    )
    ctx = FakeContext("ping")
    mon = VmPingMonitor(cfg, ctx)
    mon.setup()
    try:
        poll_until(
            mon,
            lambda: (
                mon.tracker.states() == {"vm:ctl-1": "up", "vm:cmp-1": "up", "vm:ghost": "down"}
            ),
            lab.bounds.poll_s,  # 3 lost probes at 0.1 s: the first polls decide
            "nodes up, ghost down",
        )
    finally:
        mon.teardown()
    rtts = [
        s.latency_median_s for s in ctx.of(Sample) if s.target == "vm:ctl-1" and s.latency_median_s
    ]
    assert rtts
    ghost = [s for s in ctx.of(Sample) if s.target == "vm:ghost"]
    assert sum(s.failures for s in ghost) >= 3
    assert all(s.failures == s.count for s in ghost)
    down = next(c for c in ctx.of(StateChange) if c.target == "vm:ghost")
    assert "3 probes" in down.evidence
    print(f"\nvm-ping: RTT to ctl-1 median {sorted(rtts)[len(rtts) // 2] * 1000:.3f} ms")  # noqa: T201 - report
