"""Soak campaigns of the built-in test plugins: cycles on a fixed cadence, each recorded and
judged; self-chaos; the status; ``kill -9`` of osha itself, then ``osha campaign resume``.
No cloud needed (the lab tier soaks real faults: tests/lab/test_soak.py)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from osha import profile
from osha.analysis import analyze
from osha.campaign import Outcome, StartOptions, run_campaign
from osha.campaign.control import read_status
from osha.campaign.phases import Recorder
from osha.campaign.soak import CycleLoop, SoakControl
from osha.campaign.state import LiveState
from osha.campaign.view import render
from osha.errors import ProfileError
from osha.faults import Lease
from osha.ledger.segment import list_raw_segments
from osha.messages import (
    ActorCrashed,
    FaultInjected,
    FaultLease,
    FaultPlanned,
    FaultRefused,
    FaultRevertFailed,
    LedgerResumed,
    Message,
    RawRetained,
    SelfChaosKill,
    SoakCycle,
)
from osha.messages.campaign import CampaignStop, CampaignVerdict, PhaseChange
from osha.report import render_summary
from osha.schedule import ChaosClock
from osha.testing import MemorySink, wait_for
from tests.unit.test_campaign import _records, _start_cli

SOAK = """\
[campaign]
name = "soak"
seed = 3
mode = "soak"
cycles = {cycles}
warmup_s = 0
baseline_s = 0.3
cycle_baseline_s = 0.1
chaos_s = 0.3
cycle_recovery_s = 0.2
recovery_timeout_s = 5
recovery_hold_s = 0.2

[ledger]
resources_interval_s = 0.2

[[monitors]]
id = "tick"
plugin = "ticker"
interval_s = 0.1

[[disruptors]]
id = "noop"
plugin = "noop"
"""


def _profile(tmp_path: Path, cycles: int, extra: str = "") -> Path:
    path = tmp_path / "soak.toml"
    path.write_text(SOAK.format(cycles=cycles) + extra)
    return path


def _run_soak(path: Path, runs: Path, **options: Any) -> Outcome:
    """Run the soak of the profile at ``path`` in this process, its ledger under ``runs``."""
    return run_campaign(
        profile.load(path),
        StartOptions(live=False, ledger_dir=runs, **options),
        Console(file=io.StringIO(), width=120),
    )


def _cycles(records: list[Message]) -> list[tuple[int, str, bool]]:
    return [(m.cycle, m.phase, m.ok) for m in records if isinstance(m, SoakCycle)]


@pytest.mark.timeout(60)
def test_a_soak_runs_its_cycles_on_a_cadence_and_records_each(tmp_path: Path) -> None:
    out = io.StringIO()
    outcome = run_campaign(
        profile.load(_profile(tmp_path, cycles=3)),
        StartOptions(live=False, ledger_dir=tmp_path / "runs", self_chaos_every_s=0.4),
        Console(file=out, width=120),
    )
    records = _records(outcome.run_dir)
    cycles = _cycles(records)
    assert [(c, p) for c, p, _ in cycles] == [
        (1, "start"), (1, "end"), (2, "start"), (2, "end"), (3, "start"), (3, "end")
    ]  # fmt: skip
    # The cadence: each cycle starts on its planned window, 0.6 s after the one before. A start
    # the chaos clock held back (judging, a loaded machine) records how late it was, so the
    # planned start is the record's time minus late_s. The 0.25 s slack is the time between
    # measuring late_s and stamping the record on a loaded 2-core machine; a wrong cadence
    # (a skipped or doubled window) is off by 0.6 s.
    planned = [
        m.wall_s - m.late_s for m in records if isinstance(m, SoakCycle) and m.phase == "start"
    ]
    assert planned[1] - planned[0] == pytest.approx(0.6, abs=0.25)  # the cycle length
    assert planned[2] - planned[1] == pytest.approx(0.6, abs=0.25)
    # self-chaos killed actors; each kill before the teardown is a recorded crash (a kill
    # during the teardown may hit an actor being stopped: that is its stop), and the run went on
    teardown_s = min(
        m.wall_s for m in records
        if isinstance(m, PhaseChange) and (m.phase, m.event) == ("teardown", "start")
    )  # fmt: skip
    kills = [m for m in records if isinstance(m, SelfChaosKill) and m.wall_s < teardown_s]
    crashed = {m.actor_id for m in records if isinstance(m, ActorCrashed)}
    assert kills
    assert {k.actor_id for k in kills} <= crashed
    phases = [(m.phase, m.event) for m in records if isinstance(m, PhaseChange)]
    assert ("chaos", "end") in phases
    assert ("recovery", "end") in phases
    status = read_status(outcome.run_dir)
    assert status.soak is not None
    assert status.soak.cycle == 3
    assert status.soak.cycles_planned == 3
    assert [v.cycle for v in status.soak.last_verdicts] == [1, 2, 3]
    assert any(m.TAG == "osha.resources" for m in records)


def test_soak_settings_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SOAK.format(cycles=3).replace("cycles = 3", 'cycles = 3\nuntil = "1h"'))
    with pytest.raises(ProfileError) as err:
        profile.load(bad)
    assert "either cycles" in str(err.value)
    fine = tmp_path / "fine.toml"
    fine.write_text(SOAK.format(cycles=3).replace(
        'name = "soak"', 'name = "soak"\nabort_on_breach = ["require_reverted"]'
    ) + "\n[slo]\nrequire_reverted = true\n")  # fmt: skip
    prof = profile.load(fine)
    assert (prof.campaign.planned_cycles, prof.campaign.abort_on_breach) == (
        3,
        ("require_reverted",),
    )
    until = tmp_path / "until.toml"
    until.write_text(SOAK.format(cycles=1).replace("cycles = 1", 'until = "1m"'))
    assert profile.load(until).campaign.planned_cycles == 100  # 60 s / 0.6 s
    breach = tmp_path / "breach.toml"
    breach.write_text(SOAK.format(cycles=2).replace(
        'name = "soak"', 'name = "soak"\nabort_on_breach = ["max_recovery_s"]'))  # fmt: skip
    with pytest.raises(ProfileError) as err:
        profile.load(breach)
    assert "campaign.abort_on_breach[0]" in str(err.value)


def _run_in_cycle(tmp_path: Path, cycle: int) -> Path:
    def found() -> Path | None:
        for run in (tmp_path / "runs").glob("*.osha"):
            status = run / "status.json"
            if status.exists():
                soak = json.loads(status.read_text()).get("soak") or {}
                if soak.get("cycle", 0) >= cycle:
                    return run
        return None

    return wait_for(found, timeout_s=30, what=f"the soak in cycle {cycle}")


def _killed_in_cycle(tmp_path: Path, *, cycles: int, cycle: int) -> Path:
    """Start a soak of ``cycles``, SIGKILL osha's main process once it is in ``cycle``; the
    run directory it left."""
    proc = _start_cli(_profile(tmp_path, cycles=cycles), tmp_path)
    try:
        run_dir = _run_in_cycle(tmp_path, cycle)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return run_dir


@pytest.mark.timeout(120)
def test_kill_9_of_osha_then_resume_goes_on_in_the_same_ledger(tmp_path: Path) -> None:
    run_dir = _killed_in_cycle(tmp_path, cycles=12, cycle=3)
    before = _cycles(_records(run_dir))
    last_started = max(c for c, p, _ in before if p == "start")
    osha = [sys.executable, "-m", "osha"]
    resumed = subprocess.run([*osha, "campaign", "resume", str(run_dir), "--plain"],
                             capture_output=True, text=True, timeout=90, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    records = _records(run_dir)
    assert sum(isinstance(m, LedgerResumed) for m in records) == 1
    cycles = _cycles(records)
    started = [c for c, p, _ in cycles if p == "start"]
    # the interrupted cycle is closed as not ok; the soak went on with the next one
    assert started == list(range(1, 13))
    ended = [(c, ok) for c, p, ok in cycles if p == "end"]
    # A cycle lasts 0.6 s and status.json is written once a second: on a loaded machine the
    # kill can land after the last started cycle ended, between two cycles. Then nothing was
    # interrupted and that cycle keeps its own end; otherwise the resume closes it as not ok.
    interrupted = last_started not in {c for c, p, _ in before if p == "end"}
    assert (last_started, not interrupted) in ended, (interrupted, ended)
    assert [c for c, _ in ended if c > last_started] == list(range(last_started + 1, 13))
    [verdict] = [m for m in records if isinstance(m, CampaignVerdict)]
    assert verdict.exit_code == 0
    verify = subprocess.run([*osha, "ledger", "verify", str(run_dir)], capture_output=True,
                            text=True, timeout=30, check=False)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "resumed" in verify.stdout
    again = subprocess.run([*osha, "campaign", "resume", str(run_dir), "--plain"],
                           capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert again.returncode == 2
    assert "nothing to resume" in again.stdout + again.stderr


@pytest.mark.timeout(60)
def test_a_breach_of_an_abort_on_breach_slo_stops_the_soak(tmp_path: Path) -> None:
    path = _profile(tmp_path, cycles=20, extra="\n[slo]\nmax_actor_restarts = 0\n")
    path.write_text(path.read_text().replace(
        'name = "soak"', 'name = "soak"\nabort_on_breach = ["max_actor_restarts"]'))  # fmt: skip
    outcome = _run_soak(path, tmp_path / "runs", self_chaos_every_s=0.3)
    records = _records(outcome.run_dir)
    [stop] = [m for m in records if isinstance(m, CampaignStop)]
    assert stop.source == "slo"
    assert "max_actor_restarts" in stop.reason
    started = [c for c, p, _ in _cycles(records) if p == "start"]
    assert 1 <= len(started) < 20
    assert outcome.judgement.exit_code == 3


@pytest.mark.timeout(60)
def test_a_stop_before_the_baseline_is_an_abort(tmp_path: Path) -> None:
    """A stop while the runners warm up (in the load phase; here the disk floor, at the
    guards' first look) left every phase ok, and the verdict PASSED (exit 0) a run that never
    began its baseline. Which phase the floor's stop lands in was a race that the disk-floor
    test below lost on a loaded machine; here the warm-up holds it in the load phase."""
    path = _profile(tmp_path, cycles=3, extra='\n[[runners]]\nid = "cold"\nplugin = "crasher"\n')
    text = path.read_text().replace("warmup_s = 0", "warmup_s = 30")  # "cold" never warms
    path.write_text(text.replace("[ledger]\n", f"[ledger]\ndisk_floor_mib = {2**40}\n"))
    outcome = _run_soak(path, tmp_path / "runs")  # the floor: more than any disk has free
    records = _records(outcome.run_dir)
    [stop] = [m for m in records if isinstance(m, CampaignStop)]
    assert stop.source == "disk-floor"
    ends = {m.phase: m for m in records if isinstance(m, PhaseChange) and m.event == "end"}
    assert not ends["load"].ok
    assert "stopped: disk-floor" in ends["load"].detail
    assert "baseline" not in ends
    assert outcome.judgement.exit_code == 3


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_the_disk_floor_stops_the_soak_cleanly_on_a_small_tmpfs(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "osha-test", str(small)],
                   check=True, timeout=10)  # fmt: skip
    try:
        path = _profile(tmp_path, cycles=50, extra="")
        path.write_text(path.read_text().replace(
            "[ledger]\n", "[ledger]\ndisk_floor_mib = 64\n"))  # fmt: skip
        outcome = _run_soak(path, small / "runs")
        records = _records(outcome.run_dir)
        [stop] = [m for m in records if isinstance(m, CampaignStop)]
        assert stop.source == "disk-floor"
        assert "MiB free" in stop.reason
        assert outcome.judgement.exit_code == 3
        assert records[-1].TAG == "campaign.phase"  # the verdict phase closed the ledger
        verify = subprocess.run(
            [sys.executable, "-m", "osha", "ledger", "verify", str(outcome.run_dir)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stdout
    finally:
        subprocess.run(["umount", str(small)], check=False, timeout=10)


@pytest.mark.timeout(60)
def test_raw_retention_bounds_the_raw_samples_and_keeps_the_main_lane(
    tmp_path: Path,
) -> None:
    path = _profile(tmp_path, cycles=4)
    path.write_text(path.read_text().replace(
        "[ledger]\n",
        "[ledger]\nraw_retention = { keep_segments = 1, segment_size_bytes = 4096 }\n",
    ).replace('interval_s = 0.1\n', 'interval_s = 0.02\nburst = 20\n'))  # fmt: skip
    outcome = _run_soak(path, tmp_path / "runs")
    assert outcome.judgement.exit_code == 0
    raws = list_raw_segments(outcome.run_dir)
    assert 1 <= len(raws) <= 2  # the open one and at most one closed one are left
    assert raws[-1].number > 2  # the lane rotated and older segments were deleted
    records = _records(outcome.run_dir)
    retained = [m for m in records if isinstance(m, RawRetained)]
    assert retained
    assert [c for c, p, _ in _cycles(records) if p == "end"] == [1, 2, 3, 4]
    # the ticker sent thousands of samples; what is left fits in two 4 KiB segments
    kept = sum(m.TAG == "monitor.sample" for m in records)
    deleted = sum(m.records for m in retained)
    assert kept < 200 < deleted, (kept, deleted)
    verify = subprocess.run([sys.executable, "-m", "osha", "ledger", "verify",
                             str(outcome.run_dir)], capture_output=True, text=True, timeout=30,
                            check=False)  # fmt: skip
    assert verify.returncode == 0, verify.stdout


def test_the_live_status_keeps_the_last_cycle_verdicts_and_the_next_fault() -> None:
    state = LiveState("r", "runs/r.osha")
    state.cycles_planned = 30
    now_s = time.time()
    for n in range(1, 16):
        state.observe(SoakCycle("campaign", 2 * n, 0.0, now_s, cycle=n, phase="start"))
        state.observe(SoakCycle("campaign", 2 * n + 1, 0.0, now_s, cycle=n, phase="end",
                                ok=n != 4, detail=f"cycle {n}"))  # fmt: skip
    plan = {
        "index": 7,
        "round": 0,
        "node": "ctl-1",
        "planned_offset_s": 5.0,
        "down_s": 2.0,
        "action": "kill",
        "resource": "nova-scheduler",
        "chaos_start_wall_s": now_s,
    }
    state.observe(FaultPlanned("kill-sched", 1, 0.0, now_s, **plan))
    soak = state.snapshot().to_json()["soak"]
    assert soak["cycle"] == 15
    assert [v["cycle"] for v in soak["last_verdicts"]] == list(range(6, 16))  # bounded
    assert state.snapshot().to_json()["next_fault"] == {
        "what": "kill nova-scheduler@ctl-1", "at_wall_s": now_s + 5.0
    }  # fmt: skip
    lease = Lease(lease_id="kill-sched/7", holder="kill-sched", plugin="process", index=7,
                  action="kill", node="ctl-1", address="10.0.0.1", resource="nova-scheduler",
                  groups=("controller",), down_s=2.0, planned_wall_s=now_s + 5.0,
                  revert_by_wall_s=now_s + 60.0, revert={})  # fmt: skip
    state.observe(FaultLease("broker", 1, 0.0, now_s, lease=lease))
    assert state.snapshot().to_json()["next_fault"] is None  # leased: it is no longer "next"


def test_status_shows_the_cycle_the_last_verdicts_and_the_next_fault() -> None:
    state = LiveState("r", "runs/r.osha")
    state.cycles_planned = 30
    now_s = time.time()
    for n, ok in ((11, True), (12, False)):
        state.observe(SoakCycle("campaign", n, 0.0, now_s, cycle=n, phase="start"))
        state.observe(SoakCycle("campaign", n, 0.0, now_s, cycle=n, phase="end", ok=ok,
                                detail="still down: nova-scheduler@ctl-1 (hosts)"))  # fmt: skip
    state.observe(FaultPlanned("kill", 1, 0.0, now_s, index=13000, round=0, action="kill",
                               node="ctl-2", resource="nova-scheduler", planned_offset_s=90.0,
                               down_s=1.0, chaos_start_wall_s=now_s))  # fmt: skip
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(render(state.snapshot()))
    text = console.export_text()
    assert (
        "soak: cycle 12 of 30; last cycles: 11 ok, 12 FAILED (still down: nova-scheduler@ctl-1"
        in text
    )
    assert re.search(r"next fault: kill nova-scheduler@ctl-2 in 1:[0-3][0-9]", text), text


def test_a_revert_that_failed_for_good_ends_the_soak_after_its_cycle(tmp_path: Path) -> None:
    """No further fault may strike a cloud that may be left disrupted: the cycle in which a
    revert failed for good is closed as not ok, and the soak stops before the next one. The
    chaos clock is held at each cycle's end, released only when the soak goes on."""
    sink = MemorySink()
    state = LiveState("r", str(tmp_path))
    rec = Recorder(sink, state)
    stops: list[tuple[str, str]] = []
    clock: list[str] = []
    waits = iter(range(100))

    def wait_until(wall_s: float, until: Callable[[], bool] | None) -> bool:
        if next(waits) == 3:  # during cycle 2: the revert of a fault fails for good
            state.observe(FaultRevertFailed("stop-cond", 9, 0.0, time.time(),
                                            lease_id="stop-cond/1000", attempt=5, by="holder",
                                            error="ssh: host unreachable", final=True))  # fmt: skip
        return True

    def resume() -> int:
        clock.append("resume")
        return 0

    loop = CycleLoop(
        ChaosClock(time.time(), cycle_s=0.01, cycles=5),
        cycle_baseline_s=0.0,
        recorder=rec,
        state=state,
        control=SoakControl(
            wait_until=wait_until,
            request_stop=lambda source, reason: stops.append((source, reason)),
            held_leases=list,
            sync=lambda: None,
            hold=lambda reason: clock.append(f"hold: {reason}"),
            resume=resume,
        ),
        run_dir=tmp_path,
    )
    assert loop.run() == 2
    ends = [m for m in sink.messages(SoakCycle) if isinstance(m, SoakCycle)]
    cycles = [(m.cycle, m.phase, m.ok) for m in ends]
    assert cycles == [(1, "start", True), (1, "end", True), (2, "start", True), (2, "end", False)]
    [(source, reason)] = stops
    assert source == "revert-failed"
    assert "cycle 2" in reason
    assert clock == ["hold: judging cycle 1", "resume", "hold: judging cycle 2"]  # not resumed


@pytest.mark.timeout(120)
def test_resume_end_only_tears_down_and_judges(tmp_path: Path) -> None:
    run_dir = _killed_in_cycle(tmp_path, cycles=40, cycle=2)
    started_before = [c for c, p, _ in _cycles(_records(run_dir)) if p == "start"]
    ended = subprocess.run([sys.executable, "-m", "osha", "campaign", "resume", str(run_dir),
                            "--end", "--plain"], capture_output=True, text=True, timeout=90,
                           check=False)  # fmt: skip
    # the run was interrupted in its chaos phase: its verdict is "aborted"
    assert ended.returncode == 3, ended.stdout[-3000:] + ended.stderr[-3000:]
    records = _records(run_dir)
    assert [c for c, p, _ in _cycles(records) if p == "start"] == started_before  # no new cycle
    phases = [(m.phase, m.event, m.ok) for m in records if isinstance(m, PhaseChange)]
    assert ("chaos", "end", False) in phases
    assert phases[-4:] == [("teardown", "start", True), ("teardown", "end", True),
                           ("verdict", "start", True), ("verdict", "end", False)]  # fmt: skip
    [verdict] = [m for m in records if isinstance(m, CampaignVerdict)]
    assert verdict.exit_code == 3


MARKED = """\
[campaign]
name = "marked"
seed = 5
mode = "soak"
cycles = {cycles}
warmup_s = 0
baseline_s = 0.3
cycle_baseline_s = {quiet_s}
chaos_s = 0.3
cycle_recovery_s = 0.3
recovery_timeout_s = 10
recovery_hold_s = 0.2
abort_on_breach = ["{abort}"]

[ledger]
resources_interval_s = 0.5

[[monitors]]
id = "watch"
plugin = "marker"
markers = "{markers}"
targets = ["nova-conductor@ctl-1"]
interval_s = 0.05

[[disruptors]]
id = "stop-conductor"
plugin = "marker"
markers = "{markers}"
inventory = "{inventory}"
resource = "nova-conductor"
revert_s = {revert_s}
target = {{ group = "controller", pick = "node:ctl-1" }}
schedule = {{ start_s = {start_s}, times = 1, down_s = 0.1 }}

[slo]
{slo}
"""


def _marked(tmp_path: Path, **values: object) -> Path:
    """A soak of the ``marker`` disruptor (its fault is a file) and the monitor of it."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[controller]\nctl-1 ansible_host=192.0.2.11\n")
    path = tmp_path / "marked.toml"
    path.write_text(MARKED.format(markers=tmp_path / "markers", inventory=inventory, **values))
    return path


@pytest.mark.timeout(90)
def test_a_slow_revert_is_an_overrun_the_next_cycle_waits_for_not_a_breach(
    tmp_path: Path,
) -> None:
    """The lab's cycle 83: a graceful stop still held when its cycle ends, within its revert
    deadline. It is recorded as an overrun, the next cycle waits for its revert (the chaos
    clock is held), and ``require_reverted`` is not breached: the soak runs every cycle."""
    path = _marked(tmp_path, cycles=3, quiet_s=0.05, start_s=0.05, revert_s=0.8,
                   abort="require_reverted", slo="require_reverted = true")  # fmt: skip
    outcome = _run_soak(path, tmp_path / "runs")
    records = _records(outcome.run_dir)
    assert not [m for m in records if isinstance(m, CampaignStop)]
    ends = [m for m in records if isinstance(m, SoakCycle) and m.phase == "end"]
    assert [m.cycle for m in ends] == [1, 2, 3]
    # each fault outlives its 0.65 s cycle by ~0.3 s: an overrun, waited for, not a failure
    assert all(m.overruns == 1 and m.overrun_wait_s > 0 for m in ends), ends
    assert all("overrun" in m.detail for m in ends)
    starts = [m for m in records if isinstance(m, SoakCycle) and m.phase == "start"]
    assert all(m.late_s > 0 for m in starts[1:])  # the next cycle waited for the revert
    assert outcome.judgement.exit_code == 0
    rows = analyze(outcome.run_dir).soak
    assert rows is not None
    assert rows.overruns == 3
    assert "1 overrun (" in render_summary(analyze(outcome.run_dir))


@pytest.mark.timeout(90)
def test_no_fault_is_injected_once_a_judgement_that_stops_the_soak_has_begun(
    tmp_path: Path,
) -> None:
    """Cycle 1's fault breaches ``min_availability``; cycle 2's fault is due 0.05 s after
    cycle 1 ends, while ``abort_on_breach`` judges it in a child process (a second or so).
    The chaos clock is held from the cycle's end, so that fault is refused, never leased or
    injected: every lease and inject precedes the judged cycle's end, and the stop."""
    path = _marked(tmp_path, cycles=5, quiet_s=0.0, start_s=0.05, revert_s=0.0,
                   abort="min_availability",
                   slo='min_availability = { "nova-conductor@ctl-1" = 0.999 }')  # fmt: skip
    outcome = _run_soak(path, tmp_path / "runs")
    records = _records(outcome.run_dir)
    [stop] = [m for m in records if isinstance(m, CampaignStop)]
    assert stop.source == "slo"
    assert "min_availability" in stop.reason
    [judged] = [m for m in records if isinstance(m, SoakCycle) and m.phase == "end"]
    leases = [m for m in records if isinstance(m, FaultLease)]
    injected = [m for m in records if isinstance(m, FaultInjected)]
    assert [m.lease.lease_id for m in leases] == ["stop-conductor/0"]
    assert all(m.wall_s < judged.wall_s for m in leases)
    assert all(m.actual_wall_s < judged.wall_s for m in injected)
    # the next cycle's fault was asked for during the judgement, and refused (and so was any
    # later one asked for before the teardown stopped the disruptor)
    refused = [m for m in records if isinstance(m, FaultRefused)]
    assert refused[0].lease_id == "stop-conductor/1000"
    assert all("stopping (slo: cycle 1" in m.reason for m in refused)
    assert outcome.judgement.exit_code == 3


def test_dry_run_warns_of_a_fault_that_may_outlast_its_cycle(tmp_path: Path) -> None:
    """Start 0.3 s into the window (0.05 s quiet before it), down 0.1 s, plus a typical
    stop/start of 10 s: 10.45 s, longer than a 0.65 s cycle. A cycle of 11 s fits it."""
    osha = [sys.executable, "-m", "osha", "campaign", "start"]
    short = _marked(tmp_path, cycles=3, quiet_s=0.05, start_s=0.3, revert_s=0.0,
                    abort="require_reverted", slo="require_reverted = true")  # fmt: skip
    done = subprocess.run([*osha, str(short), "--dry-run"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ("warning: stop-conductor (mark nova-conductor@ctl-1) may overrun its cycle: it "
            "starts 0.35 s in, is held 0.1 s, and a stop/start typically adds 10 s: 10.45 s > "
            "cycle 0.65 s") in " ".join(done.stdout.split())  # fmt: skip
    roomy = tmp_path / "roomy.toml"
    roomy.write_text(short.read_text().replace("cycle_recovery_s = 0.3", "cycle_recovery_s = 11"))
    done = subprocess.run([*osha, str(roomy), "--dry-run"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stdout
