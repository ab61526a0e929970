"""host-services against the lab: a kill -9 restart, a held-down service timed against the
node's own ground truth, a freeze (the ``process`` disruptor's SIGSTOP) timed against the
ledger's inject and revert records, a reboot, and pre-flight findings for bad settings."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.monitors.host_services import HostServicesConfig, HostServicesMonitor
from osha import schema
from osha.errors import PluginError
from osha.messages import FaultInjected, FaultLease, FaultReverted
from osha.messages.monitor import HostBoot, StateChange
from osha.testing import FakeContext, WaitTimeout, wait_for
from tests.lab.client import Lab
from tests.lab.test_disruptors_process import NODE, SERVICE, profile
from tests.lab.test_disruptors_support import Harness

pytestmark = pytest.mark.lab

# The monitor's settings below, and the bounds that follow from them.
INTERVAL_S = 0.2
CONNECT_TIMEOUT_S = 2.0
HEARTBEAT_TIMEOUT_S = 2.0  # the monitor's default
RECONNECT_MAX_S = 5.0  # the monitor's default
#: Connected and a first round: a connect attempt, a backoff, another attempt, a round.
MONITOR_READY_S = 2 * CONNECT_TIMEOUT_S + RECONNECT_MAX_S + HEARTBEAT_TIMEOUT_S
#: How far a recorded edge may be from the node's ground truth: the agent reports an exit
#: when its pidfd wakes it and a start with the process's own start time (10 ms ticks); half
#: an interval covers a woken agent that a loaded machine schedules late.
EDGE_ERROR_S = INTERVAL_S + INTERVAL_S / 2


def config(lab: Lab, **overrides: Any) -> HostServicesConfig:
    data: dict[str, Any] = {
        "interval_s": INTERVAL_S,
        "inventory": lab.desc["inventory"],
        "ssh": {
            "private_key": lab.desc["ssh"]["private_key"],
            "known_hosts": lab.desc["ssh"]["known_hosts"],
            "connect_timeout_s": CONNECT_TIMEOUT_S,
        },
        "services": {
            "controller": ["nova-scheduler", "nova-conductor"],
            "compute": ["nova-compute"],
        },
        "containers": {"container_hosts": ["nova_compute"]},
    }
    data.update(overrides)
    cfg, problems = schema.build(HostServicesConfig, data, file="test")
    assert not problems, problems
    assert cfg is not None
    return cfg


@contextlib.contextmanager
def running(monitor: HostServicesMonitor) -> Iterator[HostServicesMonitor]:
    """setup, poll every interval in a thread (as the actor host does), teardown."""
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
        poller.join(5)
        monitor.teardown()


def changes(ctx: FakeContext, target: str) -> list[StateChange]:
    return [m for m in ctx.of(StateChange) if m.target == target]


def mono_of(wall_s: float) -> float:
    """A wall-clock time of this machine (the nodes share its clock) on the monotonic clock."""
    return wall_s - (time.time() - time.monotonic())


@pytest.mark.timeout(240)
@pytest.mark.parametrize("pty", [True, False], ids=["pty", "no-pty"])
def test_kill_9_restart_is_seen_as_down_then_up_with_the_new_pid(
    healthy_lab: Lab, pty: bool
) -> None:
    lab = healthy_lab
    target = "nova-scheduler@ctl-1"
    ctx = FakeContext("hosts")
    delivery_s: list[float] = []
    vs_truth_s: list[float] = []
    with running(HostServicesMonitor(config(lab, pty=pty), ctx)) as mon:
        for _ in range(5):
            wait_for(
                lambda: mon.tracker.state(target) == "up",
                timeout_s=MONITOR_READY_S + lab.bounds.restart_s,
                what=f"{target} up",
            )
            old = lab.service_pid("ctl-1", "nova-scheduler")
            seen = len(changes(ctx, target))
            killed_at = time.time()
            lab.check("ctl-1", f"kill -9 {old}")
            try:
                wait_for(
                    lambda seen=seen: (
                        [c.state for c in changes(ctx, target)[seen:]][:2] == ["down", "up"]
                    ),
                    timeout_s=lab.bounds.restart_s + HEARTBEAT_TIMEOUT_S,
                    what="down then up",
                )
            except WaitTimeout as exc:
                said = [(c.state, c.evidence) for c in changes(ctx, target)[seen:]]
                truth = [e for e in lab.events("ctl-1") if e.time_s >= killed_at - 1]
                path = lab.diagnose("ctl-1", f"{exc}; the monitor said {said}")
                raise AssertionError(
                    f"{exc}\nthe monitor said since the kill of pid {old}: {said}\n"
                    f"the node's events since: {truth}\nmore: {path}"
                ) from None
            new = lab.service_pid("ctl-1", "nova-scheduler")
            down, up = changes(ctx, target)[seen : seen + 2]
            assert new != old
            assert f"pid {old}" in down.evidence, down
            assert f"pid {new}" in up.evidence, up
            assert down.last_good_mono_s is not None
            assert down.last_good_mono_s <= down.first_bad_mono_s <= up.first_bad_mono_s
            exits = [e for e in lab.events("ctl-1") if e.kind == "exit"]
            exit_ev = [e for e in exits if e.name == "nova-scheduler"][-1]
            delivery_s.append(down.mono_s - down.first_bad_mono_s)
            vs_truth_s.append(down.mono_s - mono_of(exit_ev.time_s))
    print(  # noqa: T201 - the measured figure is part of the report
        f"\nkill -9 ({'pty' if pty else 'no pty'}): reported "
        f"{statistics.median(delivery_s) * 1000:.1f} ms "
        f"(median of {len(delivery_s)}) after the exit; vs the node's exit event "
        f"{statistics.median(vs_truth_s) * 1000:+.1f} ms"
    )
    assert statistics.median(vs_truth_s) < EDGE_ERROR_S


@pytest.mark.timeout(180)
def test_held_down_time_matches_the_node_ground_truth(healthy_lab: Lab) -> None:
    lab = healthy_lab
    target = "nova-scheduler@ctl-1"
    ctx = FakeContext("hosts")
    with running(HostServicesMonitor(config(lab), ctx)) as mon:
        wait_for(lambda: mon.tracker.state(target) == "up", timeout_s=MONITOR_READY_S,
                 what=f"{target} up")  # fmt: skip
        seen = len(changes(ctx, target))
        hold_s = 3.0  # how long the service stays stopped: many monitor intervals
        try:
            lab.check("ctl-1", "systemctl stop nova-scheduler", timeout_s=lab.bounds.command_s)
            down = wait_for(
                lambda: next((c for c in changes(ctx, target)[seen:] if c.state == "down"), None),
                timeout_s=HEARTBEAT_TIMEOUT_S,  # `systemctl stop` returned: it is gone
                what="down",
            )
            # Hold it down, and check that the monitor keeps saying so meanwhile.
            wait_for(
                lambda: (
                    mon.tracker.state(target) == "down" and time.monotonic() - down.mono_s > hold_s
                ),
                timeout_s=hold_s + HEARTBEAT_TIMEOUT_S,
                what=f"{hold_s} s down",
            )
        finally:
            lab.check("ctl-1", "systemctl start nova-scheduler", timeout_s=lab.bounds.command_s)
        up = wait_for(
            lambda: next((c for c in changes(ctx, target)[seen:] if c.state == "up"), None),
            timeout_s=HEARTBEAT_TIMEOUT_S,  # `systemctl start` returned: it runs
            what="up again",
        )
    events = [e for e in lab.events("ctl-1") if e.name == "nova-scheduler"]
    exit_ev = [e for e in events if e.kind == "exit"][-1]
    start_ev = [e for e in events if e.kind == "start"][-1]
    truth_s = start_ev.time_s - exit_ev.time_s
    recorded_s = up.first_bad_mono_s - down.first_bad_mono_s
    print(  # noqa: T201 - the measured figure is part of the report
        f"\ndown-time: recorded {recorded_s:.3f} s, ground truth {truth_s:.3f} s, "
        f"error {recorded_s - truth_s:+.3f} s; down edge error "
        f"{down.first_bad_mono_s - mono_of(exit_ev.time_s):+.3f} s, up edge error "
        f"{up.first_bad_mono_s - mono_of(start_ev.time_s):+.3f} s"
    )
    assert abs(recorded_s - truth_s) <= EDGE_ERROR_S


@pytest.mark.timeout(300)
def test_a_freeze_is_down_for_its_hold_and_up_again_after_the_thaw(
    healthy_lab: Lab, tmp_path: Path
) -> None:
    """The ledger bounds the truth: the SIGSTOP landed while the inject command ran (from
    ``actual_wall_s`` to the record's ``wall_s``), the SIGCONT while the revert's ran. The
    agent reads the process's state every round: each edge is seen within a round and a late
    scheduling of it (EDGE_ERROR_S) after the command that made it."""
    lab = healthy_lab
    node, service = NODE, SERVICE  # the process disruptor's tests' profile: ctl-2's scheduler
    target = f"{service}@{node}"
    pid = lab.service_pid(node, service)
    assert pid is not None
    hold_s = 3.0  # many monitor intervals
    ctx = FakeContext("hosts")
    with running(HostServicesMonitor(config(lab, limit=[node]), ctx)) as mon:
        wait_for(lambda: mon.tracker.state(target) == "up", timeout_s=MONITOR_READY_S,
                 what=f"{target} up")  # fmt: skip
        seen = len(changes(ctx, target))
        run = Harness(tmp_path, profile(lab, "freeze", hold_s))
        try:
            run.wait_started()
            run.wait_tag("fault.reverted", lab.bounds.fault_s() + lab.bounds.fault_s(hold_s))
            wait_for(
                lambda: [c.state for c in changes(ctx, target)[seen:]] == ["down", "up"],
                timeout_s=HEARTBEAT_TIMEOUT_S,  # the SIGCONT has returned: it runs
                what="down, then up",
            )
        finally:
            run.close()
        down, up = changes(ctx, target)[seen:]
        assert mon.tracker.state(target) == "up"
    assert run.proc.returncode == 0, run.output()[-3000:]
    [lease] = run.messages(FaultLease)
    [injected] = run.messages(FaultInjected)
    [reverted] = run.messages(FaultReverted)
    assert lease.lease.revert["pid"] == pid
    assert down.evidence == f"pid {pid} state T (stopped)"
    assert up.evidence.startswith(f"pid {pid} thawed"), up.evidence
    assert "not a restart" in up.evidence
    assert lab.service_pid(node, service) == pid  # the same process: a thaw
    stop_from, stop_by = mono_of(injected.actual_wall_s), mono_of(injected.wall_s)
    cont_from, cont_by = mono_of(reverted.wall_s - reverted.elapsed_s), mono_of(reverted.wall_s)
    recorded_s = up.first_bad_mono_s - down.first_bad_mono_s
    print(  # noqa: T201 - the measured figure is part of the report
        f"\nfreeze: recorded down {recorded_s:.3f} s for a hold of {hold_s} s; down edge "
        f"{down.first_bad_mono_s - stop_by:+.3f} s after the inject returned "
        f"(its command took {stop_by - stop_from:.3f} s), up edge "
        f"{up.first_bad_mono_s - cont_by:+.3f} s after the revert returned "
        f"(its command took {cont_by - cont_from:.3f} s)"
    )
    assert stop_from <= down.first_bad_mono_s <= stop_by + EDGE_ERROR_S
    assert cont_from <= up.first_bad_mono_s <= cont_by + EDGE_ERROR_S
    assert cont_from - stop_by - EDGE_ERROR_S <= recorded_s <= cont_by - stop_from + EDGE_ERROR_S


@pytest.mark.timeout(180)
def test_reboot_is_unreachable_then_back_with_a_new_boot_id(healthy_lab: Lab) -> None:
    lab = healthy_lab
    ctx = FakeContext("hosts")
    before = lab.boot_id("cmp-1")
    with running(HostServicesMonitor(config(lab, limit=["cmp-1"]), ctx)) as mon:
        wait_for(lambda: mon.tracker.state("node:cmp-1") == "up", timeout_s=MONITOR_READY_S,
                 what="cmp-1 up")  # fmt: skip
        client = lab.ssh("cmp-1")
        try:
            client.exec_command("reboot")
        finally:
            client.close()
        wait_for(
            lambda: any(c.state == "unreachable" for c in changes(ctx, "node:cmp-1")),
            timeout_s=HEARTBEAT_TIMEOUT_S + lab.bounds.command_s,  # the reboot, then silence
            what="cmp-1 unreachable",
        )
        boot = wait_for(
            lambda: next((b for b in ctx.of(HostBoot) if b.previous == before), None),
            timeout_s=lab.bounds.node_boot_s + MONITOR_READY_S,
            what="a new boot id",
        )
        wait_for(lambda: mon.tracker.state("node:cmp-1") == "up", timeout_s=MONITOR_READY_S,
                 what="cmp-1 up")  # fmt: skip
        wait_for(
            lambda: mon.tracker.state("nova-compute@cmp-1") == "up",
            timeout_s=lab.bounds.node_services_s,
            what="nova-compute back",
        )
    assert boot.boot_id == lab.boot_id("cmp-1") != before
    states = [c.state for c in changes(ctx, "node:cmp-1")]
    assert states[-2:] == ["unreachable", "up"]
    assert "rebooted" in changes(ctx, "node:cmp-1")[-1].evidence


@pytest.mark.timeout(120)
def test_bad_settings_give_clear_preflight_findings(lab: Lab, tmp_path: Path) -> None:
    ctl1 = lab.nodes["ctl-1"]["address"]
    cmp1 = lab.nodes["cmp-1"]["address"]
    known = Path(lab.desc["ssh"]["known_hosts"]).read_text().splitlines()
    cmp1_key = next(ln for ln in known if ln.startswith(cmp1 + " ")).split(" ", 1)[1]
    wrong = tmp_path / "known_hosts_wrong"
    wrong.write_text(f"{ctl1} {cmp1_key}\n")  # ctl-1's address with cmp-1's key
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    ssh = {"private_key": lab.desc["ssh"]["private_key"], "connect_timeout_s": 1.0}
    cases = {
        "mismatch": (
            {
                "hosts": {"ctl-1": {"address": ctl1}},
                "inventory": "",
                "ssh": {**ssh, "known_hosts": str(wrong)},
            },
            "does not match",
        ),
        "unknown key": (
            {
                "hosts": {"ctl-1": {"address": ctl1}},
                "inventory": "",
                "ssh": {**ssh, "known_hosts": str(empty)},
            },
            "is not in",
        ),
        "unreachable": (
            {"hosts": {"ghost": {"address": lab.unused_address()}}, "inventory": ""},
            "no answer within",
        ),
        "no python": ({"limit": ["ctl-1"], "python": "/nonexistent/python3"}, "did not run"),
    }
    for name, (overrides, expected) in cases.items():
        cfg = config(lab, **overrides)
        findings = [f for f in HostServicesMonitor(cfg, FakeContext()).check() if not f.ok]
        assert findings, name
        assert any(expected in f.message for f in findings), (name, findings)
        assert all(f.hint for f in findings), (name, findings)
        print(  # noqa: T201 - the measured figure is part of the report
            f"\n{name}: {findings[0].message}\n    hint: {findings[0].hint}"
        )
    with pytest.raises(PluginError, match="does not match"):
        HostServicesMonitor(config(lab, **cases["mismatch"][0]), FakeContext()).setup()
