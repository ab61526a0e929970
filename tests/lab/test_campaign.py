"""Whole campaigns against the lab, run as an operator runs them (`osha campaign start`).

Short baselines and chaos windows and short Rally tasks keep each test to a few minutes. The
nova-scheduler campaign end to end looks at the tier's shared run (``scheduler_run``,
tests/lab/scheduler_run.py), which the report's and the audits' tests look at too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from osha.analysis import analyze
from osha.audit import Origin
from osha.ledger import LedgerReader
from osha.messages import (
    FaultInjected,
    FaultLease,
    FaultReverted,
    Message,
    RunnerIteration,
    StateChange,
)
from osha.messages.audit import AuditEnd, AuditWhen
from osha.messages.campaign import CampaignCensus, CampaignRecovery, CampaignVerdict, PhaseChange
from tests.lab.bounds import PREFLIGHT_S, SWEEP_S, WARMUP_S
from tests.lab.client import Lab, wait_for

if TYPE_CHECKING:
    from tests.lab.scheduler_run import SchedulerRun
    from tests.lab.smoke_run import SmokeRun

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PHASES = ["validate", "preflight", "load", "baseline", "chaos", "recovery", "teardown", "verdict"]


def _profile(tmp_path: Path, name: str, replace: dict[str, str]) -> Path:
    """A shipped profile with some lines replaced, next to a copy of its Rally tasks, and a
    preflight timeout and runner warm-up for the loaded test machine (tests/lab/bounds.py,
    PREFLIGHT_S and WARMUP_S)."""
    text = (REPO / "profiles" / name).read_text()
    for old, new in replace.items():
        assert old in text, f"{name} has no {old!r}"
        text = text.replace(old, new)
    assert "preflight_timeout_s" not in text, f"{name} sets preflight_timeout_s itself"
    text = text.replace("[campaign]\n", f"[campaign]\npreflight_timeout_s = {PREFLIGHT_S}\n", 1)
    text = re.sub(r"(?m)^warmup_s = [0-9.]+", f"warmup_s = {WARMUP_S}", text, count=1)
    shutil.copytree(REPO / "profiles" / "rally", tmp_path / "rally", dirs_exist_ok=True)
    path = tmp_path / name
    path.write_text(text)
    return path


def _start(path: Path, tmp_path: Path, timeout_s: float = 1500) -> tuple[int, Path, str]:
    """Run a campaign to its end. ``timeout_s`` is a hang guard only: each phase has its own
    bound in the profile (preflight_timeout_s, warmup_s, baseline_s, chaos_s, the recovery and
    teardown timeouts), and 1500 s is above their sum for the lab's profiles."""
    result = subprocess.run(
        [sys.executable, "-m", "osha", "campaign", "start", str(path), "--plain",
         "--ledger-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    [run_dir] = (tmp_path / "runs").glob("*.osha")
    return result.returncode, run_dir, result.stdout + result.stderr


def _records(run_dir: Path) -> list[Message]:
    return list(LedgerReader(run_dir).messages())


def _of(records: list[Message], cls: type[Any]) -> list[Any]:
    return [m for m in records if isinstance(m, cls)]


def _census(records: list[Message]) -> dict[str, dict[str, Any]]:
    return {c.when: c.counts | {"leftovers": c.leftovers} for c in _of(records, CampaignCensus)}


def _host_services_saw_each_freeze(records: list[Message], freezes: list[Any]) -> None:
    """ctl-2's freezes through host-services (its agent reads the process's state each round:
    stopped is down with the PID, the thaw up with the same PID), each of them, not through
    nova's heartbeat: nova marks the scheduler down only when a freeze (8 s) plus the time
    since its last report (every 2 s) passes service_down_time (10 s), on timing alone."""
    seen = [(m.state, m.evidence) for m in _of(records, StateChange)
            if m.target == "nova-scheduler@ctl-2" and m.sender == "hosts"]  # fmt: skip
    assert len(freezes) == 3, freezes  # the profile's times = 3
    for lease in freezes:  # all three freeze the same process: its PID in each
        pid = lease.revert["pid"]
        assert ("down", f"pid {pid} state T (stopped)") in seen, (lease.lease_id, seen)
        stopped = seen.index(("down", f"pid {pid} state T (stopped)"))
        [(state, evidence)] = seen[stopped + 1 : stopped + 2] or [("none", "")]
        assert state == "up", (lease.lease_id, seen)
        assert evidence.startswith(f"pid {pid} thawed"), (lease.lease_id, seen)
        seen = seen[stopped + 2 :]


def test_nova_scheduler_campaign_end_to_end(scheduler_run: SchedulerRun) -> None:
    # the shared run (tests/lab/scheduler_run.py): chaos_s = 45 (the faults end at T+41 s)
    # and a certain violation, max_downtime_s = { "nova-scheduler@ctl-1" = 1 }
    code, out, records = scheduler_run.code, scheduler_run.out, scheduler_run.records
    phases = [(m.phase, m.event) for m in _of(records, PhaseChange)]
    assert phases == [(p, e) for p in PHASES for e in ("start", "end")], out
    assert code == 1, out  # the SLO is violated; the campaign itself completed
    [verdict] = _of(records, CampaignVerdict)
    downtime = {k: v for k, v in verdict.slos.items() if k.startswith("max_downtime_s[nova-sch")}
    assert downtime, verdict.slos
    # Every monitor that saw ctl-1's scheduler through the fault judges it down far longer than
    # 1 s. On a loaded machine the API monitor's probes can time out for the whole fault (its
    # targets are then `unknown`: blind, neither up nor down); its row then counts the blind
    # time under the fault as possible downtime and fails too. A passing row is accepted only
    # when its monitor was blind to the target at some point (blind < 1 s under the fault).
    blind = {
        m.sender for m in _of(records, StateChange)
        if m.target == "nova-scheduler@ctl-1" and m.state == "unknown"
    }  # fmt: skip
    passed = {k: row for k, row in downtime.items() if row["passed"]}
    assert len(passed) < len(downtime), downtime
    for key, row in passed.items():
        assert any(f" by {monitor} " in key for monitor in blind), (key, row, blind)

    # the faults: ctl-1's scheduler stopped, ctl-2's frozen, both reverted
    leases = {m.lease.lease_id: m.lease for m in _of(records, FaultLease)}
    assert {(m.action, m.resource, m.node) for m in leases.values()} == {
        ("stop", "nova-scheduler", "ctl-1"), ("freeze", "nova-scheduler", "ctl-2"),
    }  # fmt: skip
    assert {m.lease_id for m in _of(records, FaultInjected)} == set(leases)
    assert {m.lease_id for m in _of(records, FaultReverted)} == set(leases)

    # the monitors saw both: each scheduler down, then up again
    changes = [(m.target, m.state) for m in _of(records, StateChange)]
    for target in ("nova-scheduler@ctl-1", "nova-scheduler@ctl-2"):
        assert (target, "down") in changes, changes
        assert changes[::-1].index((target, "up")) < changes[::-1].index((target, "down"))
    _host_services_saw_each_freeze(records, [x for x in leases.values() if x.action == "freeze"])

    # Rally could not boot while no scheduler answered: in each of ctl-2's freezes while
    # ctl-1's scheduler was stopped. A window runs from the later of the two injections to the
    # start of the earlier revert (no scheduler can answer before it). A boot needs a
    # scheduler, so an iteration that started in a window fails or is still waiting when a
    # scheduler comes back: it cannot end OK inside the window. (The old check, "twice the
    # slowest baseline iteration", failed on a loaded machine whose baseline iterations already
    # took 20-33 s.)
    injected = {m.lease_id: m.actual_wall_s for m in _of(records, FaultInjected)}
    revert_start = {m.lease_id: m.wall_s - m.elapsed_s for m in _of(records, FaultReverted)}
    by_action = {a: sorted(i for i, lease in leases.items() if lease.action == a)
                 for a in ("stop", "freeze")}  # fmt: skip
    [stop] = by_action["stop"]
    assert len(by_action["freeze"]) == 3, by_action  # the profile's times = 3
    windows = [
        (max(injected[stop], injected[f]), min(revert_start[stop], revert_start[f]))
        for f in by_action["freeze"]
    ]
    iterations = _of(records, RunnerIteration)
    assert any(i.started_wall_s + i.duration_s < windows[0][0] for i in iterations), (
        "no Rally iteration ended before the faults"
    )
    for window_start_s, window_end_s in windows:
        assert window_end_s - window_start_s > 5, windows  # plan: 8 s each
        ended_ok_inside = [
            i for i in iterations
            if window_start_s <= i.started_wall_s < window_end_s
            and i.ok and i.started_wall_s + i.duration_s < window_end_s
        ]  # fmt: skip
        assert not ended_ok_inside, [
            (i.iteration, i.started_wall_s, i.duration_s) for i in ended_ok_inside
        ]
        # and the load did feel it: an iteration running in the window failed or outlasted it
        overlapping = [
            i for i in iterations
            if i.started_wall_s < window_end_s and i.started_wall_s + i.duration_s > window_start_s
        ]  # fmt: skip
        assert any(
            not i.ok or i.started_wall_s + i.duration_s >= window_end_s for i in overlapping
        ), [(i.ok, round(i.started_wall_s - window_start_s, 1), round(i.duration_s, 1))
            for i in overlapping]  # fmt: skip

    # recovery, and the cloud as osha found it
    [recovery] = _of(records, CampaignRecovery)
    assert recovery.recovered, recovery
    census = _census(records)
    for kind in ("servers", "networks", "volumes", "ports"):
        assert census["before"][kind] == census["after"][kind], census
    assert census["after"]["leftovers"] == ()

    # The runner's figures (issue 17). Whether the 90 s baseline holds the method's warm-up +
    # window (31 iterations) depends on the machine's load: about 3 s an iteration on a quiet
    # machine (the demo at load 4: 40 in the baseline), 5-10 s at load 15-45. So the test
    # takes the case the run gives and checks each on its own evidence; a bound on Rally's
    # pace would fail from noise. Short: nothing is made up, and the shortfall names the
    # baseline_s that would do at the observed pace. Enough: the baseline and its threshold
    # are there (the runner row's baseline is no "-").
    [runner] = scheduler_run.analysis.runners
    short = runner.baseline_short
    if short is not None:
        assert short.iterations < short.needed == 31, short
        assert short.pace_s is not None, short  # the baseline had iterations to pace it
        assert short.suggested_baseline_s is not None, short
        assert short.suggested_baseline_s > 90, short  # longer than the profile's baseline_s
        return
    assert runner.baseline_mean_s is not None, runner
    assert runner.threshold_s is not None, runner
    assert runner.threshold_s >= runner.baseline_mean_s, runner
    # Whether the freezes' slow boots lift a whole sliding window (21 iterations) above the
    # baseline mean + 4 sd depends on how they fall against Rally's iterations, which the load
    # moves (fresh CI at load 15-30: 36 iterations in the baseline and no degraded stretch;
    # the demo at load 4: 2.76x). So a stretch is not required here; each one found must be
    # a slowdown, and scripts/demo's report shows the figures (README, "The demo").
    for stretch in runner.degraded:
        assert stretch.degradation_ratio is None or stretch.degradation_ratio > 1, stretch
        assert stretch.length_s >= 0, stretch


def test_smoke_campaign_passes_and_leaves_nothing(smoke_run: SmokeRun) -> None:
    code, run_dir, out = smoke_run.code, smoke_run.run_dir, smoke_run.out
    assert code == 0, out
    assert "verdict: PASSED" in out
    assert str(run_dir) in out
    records = _records(run_dir)
    assert [m.phase for m in _of(records, PhaseChange) if m.event == "end"] == PHASES
    assert all(i.ok for i in _of(records, RunnerIteration))
    assert smoke_run.servers_after == smoke_run.servers_before
    # the node disruptor's fault was planned after the run: nothing was disrupted
    assert _of(records, FaultInjected) == []
    # the audits' control: a campaign without faults leaves no new debris (issue 18)
    ends = {(m.audit, m.when): m for m in _of(records, AuditEnd)}
    audits = ("servers", "services", "rally", "ports", "placement")
    assert set(ends) == {(a, w) for a in audits for w in (AuditWhen.BEFORE, AuditWhen.AFTER)}
    for (audit, when), end in sorted(ends.items()):
        assert end.ok, (audit, when, end.error)
        assert not end.truncated, (audit, when, end.error)
        print(f"smoke audit {audit} {when}: {end.elapsed_s:.1f} s, "  # noqa: T201 - figures
              f"{end.items_read} read, {end.findings} found")  # fmt: skip
    [verdict] = _of(records, CampaignVerdict)
    debris = {k: v for k, v in verdict.slos.items() if k.startswith("max_new_debris[")}
    assert set(debris) == {f"max_new_debris[{a}]" for a in audits}, debris
    assert all(v["passed"] for v in debris.values()), debris
    # the allocation planted before the run is found before and after: pre-existing
    (placement,) = [o for o in analyze(run_dir).audits if o.audit == "placement"]
    assert placement.compared is not None, placement
    judged = {j.finding.item.resource_id: j for j in placement.compared.after}
    assert judged[smoke_run.planted_consumer].origin is Origin.PRE_EXISTING, judged
    assert placement.compared.new == (), placement.compared.new


@pytest.mark.timeout(300)
def test_preflight_failure_exits_3_and_touches_nothing(healthy_lab: Lab, tmp_path: Path) -> None:
    node = "cmp-1"
    d = Path(healthy_lab.desc["dir"]) / "nodes" / node
    log = Path(healthy_lab.desc["dir"]) / "logs" / node / "sshd.log"
    keeper = healthy_lab.ssh(node)  # sessions outlive the listener: this one restarts it
    try:
        _, out, _ = keeper.exec_command("kill $(cat /run/sshd.pid)")
        out.channel.recv_exit_status()
        wait_for(lambda: subprocess.run(
            ["bash", "-c", f"! exec 3<>/dev/tcp/{healthy_lab.nodes[node]['address']}/22"],
            check=False).returncode == 0, timeout_s=healthy_lab.bounds.command_s,
            what=f"sshd on {node} to stop")
        cloud = healthy_lab.cloud()
        servers_before = {s.id for s in cloud.compute.servers(all_projects=True)}
        path = _profile(tmp_path, "lab-smoke.toml", {})
        code, run_dir, out_text = _start(path, tmp_path)
        assert code == 3, out_text
        records = _records(run_dir)
        assert [m.phase for m in _of(records, PhaseChange) if m.event == "end"] == [
            "validate", "preflight", "verdict",
        ]  # fmt: skip
        assert not any(m.TAG.startswith(("actor.", "campaign.load", "fault.")) for m in records)
        assert f"node:{node}" in out_text
        assert {s.id for s in cloud.compute.servers(all_projects=True)} == servers_before
    finally:
        _, out, _ = keeper.exec_command(
            f"setsid /usr/sbin/sshd -D -e -f {d}/sshd_config >>{log} 2>&1 </dev/null &"
        )
        out.channel.recv_exit_status()
        keeper.close()
        wait_for(lambda: healthy_lab.ssh(node).close() is None,
                 timeout_s=healthy_lab.bounds.node_boot_s,
                 what=f"sshd on {node} back")  # fmt: skip


@pytest.mark.timeout(600 + 2 * SWEEP_S)  # and the profile's two sweeps of its audits
def test_ctrl_c_mid_chaos_reverts_deletes_and_exits_3(healthy_lab: Lab, tmp_path: Path) -> None:
    path = _profile(
        tmp_path,
        "lab-nova-scheduler.toml",
        {"baseline_s = 90": "baseline_s = 10"},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "osha", "campaign", "start", str(path), "--plain",
         "--ledger-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        def in_chaos_with_a_fault() -> Path | None:
            for run in (tmp_path / "runs").glob("*.osha"):
                status = run / "status.json"
                if status.exists():
                    snap = json.loads(status.read_text())
                    if snap["phase"] == "chaos" and snap["faults"]["injected"] >= 1:
                        return run
            return None

        # preflight (<= preflight_timeout_s), the audits' sweep, load, a 10 s baseline, then
        # the first fault
        run_dir = wait_for(in_chaos_with_a_fault, timeout_s=300 + SWEEP_S,
                           what="a fault in chaos")  # fmt: skip
        status = subprocess.run(
            [sys.executable, "-m", "osha", "campaign", "status", str(run_dir)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert "running" in status.stdout
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        # a guard: revert, teardown and the audits' sweep after it have their own
        out, _ = proc.communicate(timeout=300 + SWEEP_S)
        assert proc.returncode == 3, out
    finally:
        if proc.poll() is None:
            proc.kill()
    records = _records(run_dir)
    leases = {m.lease.lease_id for m in _of(records, FaultLease)}
    assert leases
    assert {m.lease_id for m in _of(records, FaultReverted)} == leases
    census = _census(records)
    assert census["after"]["leftovers"] == ()
    assert census["before"]["servers"] == census["after"]["servers"]
    assert [m.exit_code for m in _of(records, CampaignVerdict)] == [3]
    verify = subprocess.run([sys.executable, "-m", "osha", "ledger", "verify", str(run_dir)],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert verify.returncode == 0, verify.stdout
    assert healthy_lab.service_pid("ctl-1", "nova-scheduler") is not None
