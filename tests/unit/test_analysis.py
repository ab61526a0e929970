"""The analysis on synthetic ledgers with known ground truth (osha.testing.SyntheticLedger).

Truth: a target is down from t = 100.0 s to t = 112.5 s, observed every 0.5 s; a fault is
injected at 99.9 s and reverted at 110.0 s; a runner (one iteration a second, ~1.0 s) fails
while its start is in [100, 113) and takes 3.0 s while its start is in [120, 150).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from osha.analysis import AnalysisOptions, FaultStatus, RecoveryFrom, analyze
from osha.messages import Phase, RunnerUnfinished, State
from osha.report import json as report_json
from osha.report.terminal import render_summary
from osha.testing import SyntheticLedger

DOWN = (100.0, 112.5)
INTERVAL_S = 0.5


def _classic(led: SyntheticLedger, *, end_s: float = 300.0) -> None:
    led.target("host-services", "nova-api@ctl-1", end_s=end_s, down=[DOWN])
    led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-api")
    led.runner("boot", end_s=end_s, errors=[(100.0, 113.0)], degraded=[(120.0, 150.0, 3.0)])


def _within(value: float | None, truth: float, bound: float) -> bool:
    return value is not None and truth - bound - 1e-6 <= value <= truth + bound + 1e-6


def test_downtime_detection_and_recovery_match_the_truth(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    _classic(led)
    a = analyze(led.write(stop_s=301.0))

    (target,) = a.targets
    assert target.episode_count == 1
    truth = DOWN[1] - DOWN[0]
    assert target.downtime_bound_s == pytest.approx(INTERVAL_S)  # ± half a gap on each side
    assert _within(target.downtime_s, truth, target.downtime_bound_s)
    assert target.downtime_s == pytest.approx(truth)
    assert target.availability == pytest.approx((301.0 - truth) / 301.0, abs=1e-3)

    (fault,) = a.faults
    assert fault.status == "reverted"
    (det,) = fault.detections
    # the first bad observation is at 100.0; the fault went in at 99.9
    assert det.detection_s == pytest.approx(0.1, abs=1e-6)
    (impact,) = fault.targets
    assert impact.recovered
    assert impact.recovery_from == "revert"
    # back up between 112.0 and 112.5; reverted at 110.0
    assert _within(impact.recovery_s, 112.5 - 110.0, impact.recovery_bound_s)
    assert impact.recovery_bound_s == pytest.approx(0.25)


def test_runner_downtime_mttr_and_degradation(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    _classic(led)
    a = analyze(led.write(stop_s=301.0))
    (runner,) = a.runners
    assert runner.iterations == 301
    assert runner.failures == 13
    # baseline: iterations 10.. that ended before the inject at 99.9 s
    assert runner.baseline_count == 89
    assert runner.baseline_mean_s == pytest.approx(1.0, abs=0.01)
    (errors,) = runner.error_clusters
    assert _within(errors.length_s, 13.0, errors.bound_s)  # errors for starts in [100, 113)
    (slow,) = runner.degraded
    assert slow.bound_s == pytest.approx(1.0)
    assert _within(slow.length_s, 30.0, slow.bound_s)  # MTTR: slow for starts in [120, 150)
    assert slow.degradation_s == pytest.approx(2.0, abs=0.02)
    assert slow.degradation_ratio == pytest.approx(3.0, abs=0.05)
    # the raw window-centre span is wider by up to a window: the reason osha refines it
    assert slow.window_span_s is not None
    assert slow.window_span_s > slow.length_s
    (impact,) = a.faults[0].runners
    assert impact.errors == 13
    assert impact.mttr_s == pytest.approx(slow.length_s)
    phases = {p.phase: p for p in runner.phases}
    assert phases["baseline"].success == 1.0


def test_sliding_window_parameters_are_configurable(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    _classic(led)
    run = led.write(stop_s=301.0)
    huge_k = analyze(run, options=AnalysisOptions(k=1000.0))
    assert huge_k.runners[0].degraded == ()
    small = analyze(run, options=AnalysisOptions(window=5, warm_up=0))
    assert small.runners[0].baseline_count == 99
    assert len(small.runners[0].degraded) == 1


def test_target_that_never_recovers(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("m", "endpoint:compute", end_s=200.0, down=[(100.0, 1e9)])
    led.fault("f1", inject_s=99.9, revert_s=110.0, resource="compute")
    a = analyze(led.write(stop_s=200.0))
    (target,) = a.targets
    (ep,) = target.episodes
    assert not ep.recovered
    assert target.final_state == "down"
    assert target.downtime_s == pytest.approx(200.0 - 99.75)
    (impact,) = a.faults[0].targets
    assert not impact.recovered
    assert impact.recovery_s is None
    rejudged = a.rejudge(a.slo.__class__(max_recovery_s=60.0))
    assert rejudged.verdict.exit_code == 1
    assert "never recovered" in rejudged.verdict.results[0].detail


def test_two_overlapping_faults_are_attributed_by_name(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("hs", "svc-a@ctl-1", end_s=200.0, down=[(100.0, 112.5)])
    led.target("hs", "svc-b@ctl-2", end_s=200.0, down=[(105.5, 118.0)])
    led.fault("fa", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="svc-a")
    led.fault("fb", inject_s=105.0, revert_s=120.0, node="ctl-2", resource="svc-b")
    a = analyze(led.write(stop_s=200.0))
    fa, fb = a.faults
    assert fa.overlaps == ("fb",)
    assert fb.overlaps == ("fa",)
    assert [t.target for t in fa.targets] == ["svc-a@ctl-1"]
    assert [t.target for t in fb.targets] == ["svc-b@ctl-2"]
    assert fb.targets[0].downtime_s == pytest.approx(12.5)
    assert fb.detections[0].detection_s == pytest.approx(0.5)
    # svc-b came back at ~118, before fb's revert at 120: a self-healing fault for it
    assert fb.targets[0].recovery_from == "inject"


def test_same_service_on_another_node_does_not_steal_the_outage(tmp_path: Path) -> None:
    """The lab's case: stop nova-scheduler on ctl-1 (its process exits 3 s later, after a
    graceful stop), freeze the one on ctl-2 at +1 s. The ctl-1 outage starts after both
    injects; it belongs to the fault on its own node and service, not to the newest one."""
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("hs", "nova-scheduler@ctl-1", end_s=200.0, down=[(103.0, 135.0)])
    led.target("hs", "nova-scheduler@ctl-10", end_s=200.0, down=[(104.0, 106.0)])
    led.target("hs", "node:ctl-1", end_s=200.0, down=[(150.0, 160.0)])
    led.fault("stop-1", inject_s=100.0, revert_s=135.0, node="ctl-1", resource="nova-scheduler")
    led.fault("freeze-2", inject_s=101.0, revert_s=126.0, node="ctl-2", resource="nova-scheduler")
    led.fault("reboot-1", inject_s=149.5, revert_s=151.0, node="ctl-1")
    a = analyze(led.write(stop_s=200.0))
    by_lease = {f.lease_id: sorted(t.target for t in f.targets) for f in a.faults}
    # ctl-10 is not ctl-1: no fault names it exactly, the resource match decides (newest)
    assert by_lease == {
        "stop-1": ["nova-scheduler@ctl-1"],
        "freeze-2": ["nova-scheduler@ctl-10"],
        "reboot-1": ["node:ctl-1"],
    }


def test_monitor_restarted_in_the_middle_of_an_outage(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("hs", "nova-api@ctl-1", end_s=200.0, down=[DOWN], blind=[(105.0, 107.0)])
    led.fault("f1", inject_s=99.9, revert_s=110.0, node="ctl-1", resource="nova-api")
    a = analyze(led.write(stop_s=200.0))
    (target,) = a.targets
    assert target.episode_count == 1  # the blind stretch does not split the outage
    (ep,) = target.episodes
    assert ep.blind
    assert _within(ep.downtime_s, 12.5, ep.bound_s)
    assert target.unknown_s == pytest.approx(2.0, abs=0.3)
    (actor,) = a.actors
    assert actor.crashes == 1
    assert actor.restarts == 1


def test_monitor_restarted_while_up_widens_the_next_outage(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("hs", "x@ctl-1", end_s=200.0, down=[(100.0, 112.5)], blind=[(95.0, 101.0)])
    a = analyze(led.write(stop_s=200.0))
    (ep,) = a.targets[0].episodes
    assert ep.blind
    assert ep.last_good_s is not None
    assert ep.last_good_s <= 95.0
    assert _within(12.5, ep.downtime_s, ep.bound_s)


def test_empty_chaos_window(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    for name, lo, hi in (("validate", 0, 1), ("preflight", 1, 2), ("load", 2, 3),
                         ("baseline", 3, 60), ("chaos", 60, 120), ("recovery", 120, 125),
                         ("teardown", 125, 130)):  # fmt: skip
        led.phase(name, lo, hi)
    led.phase("verdict", 130.5, None)
    led.target("m", "endpoint:compute", end_s=130.0)
    led.runner("boot", start_s=3.0, end_s=125.0)
    a = analyze(led.write(stop_s=131.0))
    assert a.faults == ()
    assert a.run.complete
    assert not a.run.aborted
    assert a.targets[0].availability == 1.0
    assert a.runners[0].degraded == ()
    assert a.runners[0].error_clusters == ()
    assert [p.phase for p in a.runners[0].phases] == ["baseline", "chaos", "recovery"]
    assert a.verdict.exit_code == 0
    assert a.run.end_s == pytest.approx(130.0)  # the last record before the verdict phase


def test_ledger_cut_off_by_kill_9(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    _classic(led, end_s=150.0)
    a = analyze(led.write(torn=True))
    assert a.run.tear
    assert not a.run.complete
    assert a.run.aborted
    assert "killed" in a.run.abort_reason
    assert a.verdict.exit_code == 3
    assert not a.verdict.passed
    # the metrics up to the tear are still there
    assert a.targets[0].downtime_s == pytest.approx(12.5)


def test_campaign_phase_failure_aborts(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.phase("baseline", 0.0, 10.0)
    led.phase("chaos", 10.0, 20.0, ok=False)
    led.phase("teardown", 20.0, 25.0)
    a = analyze(led.write(stop_s=26.0))
    assert a.run.aborted
    assert "chaos" in a.run.abort_reason
    assert a.verdict.exit_code == 3


def test_unreverted_fault_fails_by_default(tmp_path: Path) -> None:
    led = SyntheticLedger(tmp_path / "run.osha")
    led.fault("f1", inject_s=10.0, revert_s=None)
    a = analyze(led.write(stop_s=50.0))
    assert a.faults[0].status == "unreverted"
    assert a.verdict.exit_code == 1
    assert a.verdict.failed[0].name == "require_reverted"


def test_not_a_ledger_is_invalid_input(tmp_path: Path) -> None:
    from osha.errors import OshaError

    (tmp_path / "empty").mkdir()
    with pytest.raises(OshaError) as info:
        analyze(tmp_path / "empty")
    assert info.value.exit_code == 2
    assert info.value.hint


def test_recovery_does_not_run_into_the_next_faults_outage(tmp_path: Path) -> None:
    """A soak strikes the same target again 5 s later, within steady_s (10 s): each fault
    recovers on its own, the first one is not chained into the second one's outage."""
    led = SyntheticLedger(tmp_path / "run.osha")
    led.target("hs", "nova-conductor@ctl-2", end_s=200.0, down=[(100.0, 102.5), (105.0, 107.5)])
    led.fault("stop/0", inject_s=99.9, revert_s=102.1, node="ctl-2", resource="nova-conductor")
    led.fault("stop/1000", inject_s=104.9, revert_s=107.1, node="ctl-2",
              resource="nova-conductor")  # fmt: skip
    a = analyze(led.write(stop_s=200.0))
    first, second = (f.targets[0] for f in a.faults)
    # each from the start of its own revert (0.1 s before fault.reverted) to its outage's end
    assert first.recovery_from == second.recovery_from == "revert"
    assert _within(first.recovery_s, 102.5 - 102.0, INTERVAL_S / 2)
    assert _within(second.recovery_s, 107.5 - 107.0, INTERVAL_S / 2)


def test_the_analysis_keeps_the_enums_of_the_ledger(tmp_path: Path) -> None:
    """States, phases, fault statuses and recovery references are members, not bare strings
    (issue 13 §4), and still equal and print as the strings the reports show."""
    led = SyntheticLedger(tmp_path / "run.osha")
    led.phase("baseline", 0.0, 99.0)
    led.phase("chaos", 99.0, 200.0)
    led.phase("teardown", 200.0, 300.0)
    _classic(led)
    led.fault("f2", inject_s=150.0, revert_s=None)
    a = analyze(led.write(stop_s=301.0))
    assert [type(p.name) for p in a.run.phases] == [Phase, Phase, Phase]
    assert a.run.phases[1].name is Phase.CHAOS
    assert a.phase(Phase.CHAOS) is a.run.phases[1]
    assert {type(p.phase) for p in a.runners[0].phases} == {Phase}
    (target,) = a.targets
    assert target.final_state is State.UP
    assert target.episodes[0].worst is State.DOWN
    assert [f.status for f in a.faults] == [FaultStatus.REVERTED, FaultStatus.UNREVERTED]
    assert all(type(f.status) is FaultStatus for f in a.faults)
    (det,) = a.faults[0].detections
    assert det.state is State.DOWN
    assert a.faults[0].targets[0].recovery_from is RecoveryFrom.REVERT
    assert f"{target.final_state} {a.faults[0].status}" == "up reverted"


def test_iterations_cut_off_by_the_stop_are_shown_not_counted(tmp_path: Path) -> None:
    """``runner.unfinished`` (an iteration in flight when the runner's workload was killed)
    is listed with its start, and counts neither as ok nor as failed: it has no outcome."""
    led = SyntheticLedger(tmp_path / "run.osha")
    _classic(led)
    led.add(299.0, "boot", RunnerUnfinished, runner="Synthetic.scenario", iteration=302,
            started_wall_s=led.wall(290.5), reason="rally killed")  # fmt: skip
    a = analyze(led.write(stop_s=301.0))
    (runner,) = a.runners
    assert runner.iterations == 301  # as without it
    assert runner.failures == 13
    assert runner.unfinished == pytest.approx((290.5,))
    assert "boot: 1 iteration(s) cut off by the stop, never ended" in render_summary(a)
    assert "started at 290.5 s" in render_summary(a)
    (data,) = report_json.to_dict(a)["runners"]
    assert data["unfinished"] == pytest.approx([290.5])
