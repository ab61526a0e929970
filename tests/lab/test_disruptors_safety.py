"""Revert that always happens, the guard, seeded dry runs and bad input, against the lab."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from osha.messages import (
    ActorCrashed,
    FaultInjected,
    FaultLease,
    FaultRefused,
    FaultReleased,
)
from tests.lab.client import Lab, holds_for, wait_for
from tests.lab.test_disruptors_support import (
    Harness,
    failed_check,
    faults_cli,
    header,
    power_table,
)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(400, func_only=True)]


def stop_entry(id_: str, node: str, service: str, down_s: float, start_s: float = 1) -> str:
    return f"""
[[disruptors]]
id = "{id_}"
plugin = "process"
action = "stop"
service = "{service}"
target = {{ group = "controller", pick = "node:{node}" }}
schedule = {{ start_s = {start_s}, times = 1, down_s = {down_s} }}
"""


def test_sigkill_of_the_disruptor_reverts_its_fault(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    run = Harness(tmp_path, header(lab) + stop_entry("stopper", "ctl-2", "nova-scheduler", 300))
    try:
        run.wait_started()
        bounds = lab.bounds
        run.wait_tag("fault.injected", bounds.fault_s())
        assert lab.service_pid("ctl-2", "nova-scheduler") is None  # a 300 s hold: no race
        os.kill(run.actor_pid("stopper"), signal.SIGKILL)
        # the broker sees the crash (heartbeat timeout 3 s) and reverts: one command
        [reverted] = run.wait_tag("fault.reverted", 3.0 + bounds.fault_s())
        assert reverted.by == "broker"
        wait_for(lambda: lab.service_pid("ctl-2", "nova-scheduler"), bounds.restart_s, 0.5,
                 "the service")  # fmt: skip
        assert any(m.actor_id == "stopper" for m in run.messages(ActorCrashed))
        [lease] = run.messages(FaultLease)
        assert lease.lease.lease_id == reverted.lease_id
        # The restarted disruptor does not strike again: a fault is never retried.
        run.wait_tag("actor.started", bounds.osha_start_s, count=2)
        # longer than its schedule's start_s (1 s): it would have struck by then
        assert holds_for(lambda: len(run.messages(FaultInjected)) == 1, 3.0, 0.2)
    finally:
        run.close()
    assert run.messages(FaultReleased)[-1].by == "broker"


def test_recover_after_kill_9_of_the_whole_run(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    text = (
        header(lab)
        + stop_entry("stopper", "ctl-2", "nova-conductor", 600)
        + """
[[disruptors]]
id = "pauser"
plugin = "container"
action = "pause"
container = "nova_compute"
target = { group = "container_hosts", pick = "node:cmp-2" }
schedule = { start_s = 1, times = 1, down_s = 600 }
"""
    )
    run = Harness(tmp_path, text)
    try:
        run.wait_started()
        run.wait_tag("fault.injected", lab.bounds.fault_s(), count=2)
        run.kill_all()
        assert lab.service_pid("ctl-2", "nova-conductor") is None
        client = lab.docker("cmp-2")
        assert client.containers.get("nova_compute").status == "paused"
        result = faults_cli("recover", str(run.run_dir))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "REVERTED stop nova-conductor@ctl-2" in result.stdout
        assert "REVERTED pause nova_compute@cmp-2" in result.stdout
        assert "Traceback" not in result.stderr
        assert lab.service_pid("ctl-2", "nova-conductor") is not None
        assert client.containers.get("nova_compute").status == "running"
        client.close()
        again = faults_cli("recover", str(run.run_dir))
        assert "nothing to do" in again.stdout
    finally:
        run.close()


def test_guard_refuses_the_second_controller(healthy_lab: Lab, tmp_path: Path) -> None:
    lab = healthy_lab
    hold_s = 8
    text = (
        header(lab, max_down="controller = 1")
        + stop_entry("stop-ctl1", "ctl-1", "nova-scheduler", hold_s)
        + stop_entry("stop-ctl2", "ctl-2", "nova-scheduler", hold_s)
    )
    started = time.time()
    run = Harness(tmp_path, text)
    try:
        run.wait_started()
        run.wait_tag("fault.reverted", lab.bounds.fault_s(hold_s))
    finally:
        run.close()
    [refused] = run.messages(FaultRefused)
    assert refused.limit == "controller"
    assert len(run.messages(FaultInjected)) == 1
    # ground truth, from the nodes' events: never both schedulers down at once
    down = {node: _down_spans(lab, node, "nova-scheduler", started) for node in ("ctl-1", "ctl-2")}
    assert sum(len(spans) for spans in down.values()) == 1, down
    assert not [(a, b) for a in down["ctl-1"] for b in down["ctl-2"] if a[0] < b[1] and b[0] < a[1]]


def _down_spans(lab: Lab, node: str, service: str, since_s: float) -> list[tuple[float, float]]:
    """[exit, next start] of ``service`` on ``node`` since ``since_s`` (open: until now)."""
    spans, down_at = [], None
    for e in lab.events(node):
        if e.name != service or e.time_s < since_s:
            continue
        if e.kind == "exit":
            down_at = e.time_s
        elif e.kind == "start" and down_at is not None:
            spans.append((down_at, e.time_s))
            down_at = None
    if down_at is not None:
        spans.append((down_at, time.time()))
    return spans


def test_seeded_dry_runs(lab: Lab, tmp_path: Path) -> None:
    text = (
        header(lab, seed=7)
        + """
[[disruptors]]
id = "chaos"
plugin = "process"
service = "nova-scheduler"
target = { group = "controller", pick = "random" }
schedule = { random = { min_s = 10, max_s = 90 }, times = 6, down_s = 5 }
"""
    )
    path = tmp_path / "p.toml"
    path.write_text(text)
    runs = [faults_cli("plan", str(path), *extra) for extra in ([], [], ["--seed", "8"])]
    assert all(r.returncode == 0 for r in runs), runs
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout.splitlines()[1:] != runs[2].stdout.splitlines()[1:]
    assert runs[0].stdout.count("chaos") == 6


def test_bad_input_gives_clear_errors_without_traceback(lab: Lab, tmp_path: Path) -> None:
    bmc = lab.nodes["cmp-1"]["bmc"]
    text = (
        header(lab)
        + f"""
[[disruptors]]
id = "no-such-service"
plugin = "process"
action = "stop"
service = "nova-nothing"
target = {{ group = "controller", pick = "node:ctl-2" }}

[[disruptors]]
id = "no-such-container"
plugin = "container"
container = "nova_nothing"
target = {{ group = "container_hosts", pick = "node:cmp-2" }}

[[disruptors]]
id = "no-such-node"
plugin = "process"
service = "nova-scheduler"
target = {{ group = "controller", pick = "node:ctl-9" }}

[[disruptors]]
id = "no-power"
plugin = "node"
action = "power-off"
target = {{ group = "compute", pick = "node:cmp-1" }}
{power_table(lab, "cmp-1").replace(str(bmc["port"]), "6299")}
"""
    )
    path = tmp_path / "bad.toml"
    out = failed_check(path, text)
    assert "unknown service 'nova-nothing' on ctl-2" in out
    assert "unknown container 'nova_nothing' on cmp-2" in out
    assert "'ctl-9' is not in the inventory" in out
    assert "cannot reach the BMC of cmp-1" in out
    bad_signal = path.read_text().replace(
        'service = "nova-nothing"', 'service = "nova-api"\nsignal = "SIGKILLL"'
    )
    path.write_text(bad_signal)
    result = faults_cli("check", str(path))
    assert result.returncode == 2
    assert "bad signal name 'SIGKILLL'" in result.stderr
    assert "Traceback" not in result.stderr
