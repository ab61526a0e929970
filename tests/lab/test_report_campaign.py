"""``osha report`` on the ledger of a real campaign against the lab.

The ledger is the tier's shared run of ``profiles/lab-nova-scheduler.toml`` (short phases;
``scheduler_run``, tests/lab/scheduler_run.py: one campaign for this module, test_campaign's
end to end and the audits' acceptance; this module's own run of the same profile took 333 s):

- the downtime the report computes for the killed ``nova-scheduler@ctl-1`` agrees with the
  node's ground truth (its ``exit`` and next ``start`` events: kill time and new PID time)
  within ± (monitor interval + 0.2 s). osha measures durations on the monotonic clock; the
  events carry wall-clock times, so a step of this machine's wall clock between the two lines
  is taken out of the ground truth (read from the ledger: every record carries both clocks;
  stop 29: a +6.58 s step inside the outage made the wall-clock truth 42.98 s against osha's
  36.38 s, the same outage);
- the verdict the campaign printed and recorded equals ``osha report``'s verdict on its ledger;
- the HTML report renders from the real ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from osha.analysis import analyze
from osha.ledger import LedgerReader
from osha.report import render_verdict
from osha.report.html import render_html
from tests.lab.client import REPO, Lab

if TYPE_CHECKING:
    from tests.lab.scheduler_run import SchedulerRun

PROFILE = REPO / "profiles" / "lab-nova-scheduler.toml"
TARGET = "nova-scheduler@ctl-1"


def _process_monitor(profile: dict[str, object]) -> tuple[str, float]:
    """(id, interval) of the profile's host-services monitor: it watches the process itself,
    which is what the node's ground truth records (the API monitor sees nova's own view,
    which lags by nova's service_down_time)."""
    monitors = profile.get("monitors")
    for m in monitors if isinstance(monitors, list) else []:
        if isinstance(m, dict) and m.get("plugin") == "host-services":
            return str(m["id"]), float(m.get("interval_s", 1.0))
    raise AssertionError(f"{PROFILE} has no host-services monitor")


#: a change of (wall - monotonic) between two records larger than this is a step of the wall
#: clock (NTP slews by at most 0.5 ms a second; records come every fraction of a second)
CLOCK_STEP_S = 0.05


def clock_steps(run_dir: Path) -> list[tuple[float, float]]:
    """``(wall time, seconds)`` of each step of the wall clock during the run, dated by the
    first record stamped after it."""
    steps, previous = [], None
    for message in LedgerReader(run_dir).messages():
        wall_s, mono_s = getattr(message, "wall_s", None), getattr(message, "mono_s", None)
        if not isinstance(wall_s, float) or not isinstance(mono_s, float):
            continue
        offset_s = wall_s - mono_s
        if previous is not None and abs(offset_s - previous) > CLOCK_STEP_S:
            steps.append((wall_s, offset_s - previous))
        previous = offset_s
    return steps


def monotonic_truth_s(
    start_wall_s: float, end_wall_s: float, steps: list[tuple[float, float]]
) -> float:
    """The seconds between two wall-clock event times, without the wall clock's steps that
    fell between them."""
    return end_wall_s - start_wall_s - sum(s for at, s in steps if start_wall_s < at <= end_wall_s)


@pytest.mark.lab
def test_report_of_a_real_campaign(lab: Lab, scheduler_run: SchedulerRun) -> None:
    run_dir, out = scheduler_run.run_dir, scheduler_run.out
    assert scheduler_run.code in (0, 1), out[-3000:]
    a = analyze(run_dir)

    # the live verdict is the replayed verdict
    recorded = a.run.recorded_verdict
    assert recorded is not None
    assert recorded["summary"] == a.verdict.summary
    assert recorded["exit_code"] == a.verdict.exit_code == scheduler_run.code
    assert a.verdict.summary in out
    for line in render_verdict(a.verdict).splitlines()[:3]:
        assert line.strip() in out

    # downtime of the killed service against the node's ground truth
    events = [e for e in lab.events("ctl-1") if e.name == "nova-scheduler"]
    start_wall = a.run.started_wall_s
    injected = [f for f in a.faults if f.injected_s is not None and f.node == "ctl-1"]
    assert injected, [f.label for f in a.faults]
    header = LedgerReader(run_dir).header()
    monitor, interval_s = _process_monitor(header.profile if header is not None else {})
    tolerance = interval_s + 0.2
    steps = clock_steps(run_dir)
    for fault in injected:
        impact = next(
            (t for t in fault.targets if t.target == TARGET and t.monitor == monitor), None
        )
        assert impact is not None, f"{fault.label}: no outage of {TARGET} attributed"
        # the frozen scheduler on ctl-2 must not take the ctl-1 outage from its own fault
        for other in a.faults:
            if other is not fault:
                assert TARGET not in {t.target for t in other.targets}, other.label
        t_inject = start_wall + (fault.injected_s or 0.0)
        exits = [e for e in events if e.kind == "exit" and e.time_s >= t_inject - 1.0]
        assert exits, "the node recorded no exit of nova-scheduler after the inject"
        exit_ev = exits[0]
        start_ev = next(e for e in events if e.kind == "start" and e.time_s > exit_ev.time_s)
        truth_s = monotonic_truth_s(exit_ev.time_s, start_ev.time_s, steps)
        print(  # noqa: T201 - the measured figure is part of the report
            f"\n{fault.label}: downtime {impact.downtime_s:.3f} ± {impact.downtime_bound_s:.3f} s,"
            f" ground truth {truth_s:.3f} s (wall {start_ev.time_s - exit_ev.time_s:.3f} s,"
            f" clock steps in the run: {steps})"
        )
        assert abs(impact.downtime_s - truth_s) <= tolerance

    html = render_html(a)
    assert TARGET in html
    assert "fault-band-" in html
