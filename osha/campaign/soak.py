"""The soak's chaos phase: fault cycles on a fixed cadence, each judged as it ends.

A soak (``[campaign] mode = "soak"``) runs the chaos phase as cycles ``first .. last`` of a
:class:`~osha.schedule.ChaosClock`. Cycle ``k`` (1-based in the ledger and on screen) starts
``cycle_baseline_s`` before its fault window and lasts ``cycle_s``; the disruptors strike in
the window on their own (each got the clock from the broker).

**At a cycle's end the chaos clock is held** (the broker's gate, :meth:`FaultBroker.hold
<osha.faults.FaultBroker.hold>`): no lease is granted, so no fault is injected, until the
cycle is judged. A fault still held then but within its revert deadline is an **overrun**,
not a fault left in place: the loop waits for its revert (bounded by that deadline) with the
clock held, so the next cycle *waits*; a request held back longer than its disruptor waits for
a grant is refused, so that fault is *skipped*. The ledger says which: the end record counts
the overruns and the wait, the next cycle's start record how late it started and how many of
its faults were skipped. The cycle is recorded (``soak.cycle`` end: ``ok`` when every watched
target is seen up and no fault is held past its deadline), and the soak stops early and
cleanly, before the next cycle may strike, on:

- a fault whose revert failed for good (``fault.revert_failed`` final): the cloud may be left
  disrupted, so no further fault may strike;
- a breach of an SLO named in ``[campaign] abort_on_breach``, judged on the ledger so far
  against the ``[slo]`` it recorded, in a long-lived child process (:mod:`osha.soak.judge`:
  it keeps its analysis and reads only each cycle's new records), where a fault held within
  its revert deadline is in flight, not unreverted;
- the disk-space floor, ``osha campaign stop``, Ctrl-C (they request the stop themselves).

What counts as down is the analysis's rule (:data:`osha.messages.BAD_STATES`): the end record
says ``still down: ...`` only for bad targets (``down``, ``unreachable``) and lists the blind
ones apart (``not seen at the cycle's end (unknown): ...``). A cycle whose only problem is
blindness is **not ok**: ``ok`` claims that every target was seen up, and a target the monitor
cannot see is no evidence of health; the detail says it was unseen, not down. A failed cycle
does not stop the soak.

A stop closes the gate for good (:meth:`Campaign.request_stop
<osha.campaign.orchestrator.Campaign.request_stop>`): nothing is injected after the decision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from osha.campaign.phases import Recorder
from osha.campaign.state import LiveState
from osha.faults import Lease, plan_rows
from osha.messages import SoakCycle
from osha.profile import Profile
from osha.schedule import STRIDE, ChaosClock
from osha.soak.judge import JudgeChild

__all__ = ["TYPICAL_STOP_START_S", "CycleLoop", "SoakControl", "overrun_risks"]

log = logging.getLogger("osha.campaign")

#: What a fault's inject and revert typically add to its ``down_s`` on a real cloud: a
#: graceful ``systemctl stop`` then ``start`` (the lab's nova-conductor took 8.7 s to stop).
TYPICAL_STOP_START_S = 10.0


@dataclass(frozen=True, slots=True)
class SoakControl:
    """What the loop needs from the campaign."""

    #: wait until a wall time, or until ``until()`` is true; False if the campaign stopped
    wait_until: Callable[[float, Callable[[], bool] | None], bool]
    request_stop: Callable[[str, str], None]
    held_leases: Callable[[], list[Lease]]  # the leases the broker counts now
    sync: Callable[[], object]  # the ledger is on disk after this (for abort_on_breach)
    hold: Callable[[str], None]  # hold the chaos clock: no grant until resume
    resume: Callable[[], int]  # release it; the held-back faults that were skipped


class CycleLoop:
    """Runs the cycles of ``clock``; :meth:`run` returns the number of cycles completed."""

    def __init__(
        self,
        clock: ChaosClock,
        *,
        cycle_baseline_s: float,
        recorder: Recorder,
        state: LiveState,
        control: SoakControl,
        run_dir: Path,
        planned_faults: int = 0,
        abort_on_breach: tuple[str, ...] = (),
    ) -> None:
        self.clock = clock
        self.cycle_baseline_s = cycle_baseline_s
        self.rec = recorder
        self.state = state
        self.control = control
        self.abort_on_breach = abort_on_breach
        self.run_dir = run_dir
        self.planned_faults = planned_faults
        self.completed = 0
        self._skipped = 0  # faults of the next cycle skipped while the clock was held
        self._judge = JudgeChild(run_dir, abort_on_breach)

    def run(self) -> int:
        try:
            for k in self.clock.numbers():
                if not self._cycle(k):
                    break
        finally:
            self._judge.close()
        return self.completed

    def _cycle(self, k: int) -> bool:
        number = k + 1
        start_wall_s = self.clock.window_wall_s(k) - self.cycle_baseline_s
        end_wall_s = start_wall_s + self.clock.cycle_s
        if not self.control.wait_until(start_wall_s, None):
            return False
        failed_before = self.state.faults.revert_failed
        self.rec.record(
            SoakCycle, cycle=number, phase="start", planned_faults=self.planned_faults,
            late_s=round(max(0.0, time.time() - start_wall_s), 3), skipped=self._skipped,
        )  # fmt: skip
        self.state.note(f"cycle {number} of {self.clock.first_cycle + self.clock.cycles}")
        ran = self.control.wait_until(end_wall_s, None)
        # A judgement that may stop the run starts now: no fault may strike until it is done.
        self.control.hold(f"judging cycle {number}")
        go_on = self._end(k, ran, failed_before)
        if go_on:
            self._skipped = self.control.resume()
        return go_on

    def _end(self, k: int, ran: bool, failed_before: int) -> bool:
        """Wait for cycle ``k``'s overruns, record its end, and judge whether the soak goes
        on (the clock is held meanwhile)."""
        number = k + 1
        overruns, waited_s = self._overruns(k, ran)
        now_s = time.time()
        overdue = [lease for lease in self.control.held_leases() if lease.revert_by_wall_s <= now_s]
        seen = self.state.not_up()
        failed = self.state.faults.revert_failed - failed_before
        problems = []
        if not ran:
            problems.append("stopped")
        if seen.down:
            problems.append(f"still down: {', '.join(seen.down)}")
        if overdue:
            problems.append(f"{len(overdue)} faults held past their revert deadline")
        if failed:
            problems.append(f"{failed} faults NOT reverted")
        if seen.blind:  # last: a long list must not cut the problems above from the detail
            problems.append(f"not seen at the cycle's end (unknown): {', '.join(seen.blind)}")
        ok = not problems
        detail = "every target up, every fault reverted" if ok else "; ".join(problems)
        if overruns:
            waited = f"waited {waited_s:.2f} s" if ran else "not waited for: stopping"
            detail += f"; {len(overruns)} overrun(s) ({', '.join(overruns)}), {waited}"
        self.rec.record(
            SoakCycle, cycle=number, phase="end", ok=ok, detail=detail[:500],
            overruns=len(overruns), overrun_wait_s=round(waited_s, 3),
        )  # fmt: skip
        self.completed += 1
        if failed:
            self.control.request_stop("revert-failed", f"cycle {number}: {failed} not reverted")
            return False
        if not ran:
            return False
        breached = self._breached(now_s)
        if breached:
            self.control.request_stop("slo", f"cycle {number}: {breached} breached")
            return False
        return True

    def _overruns(self, k: int, ran: bool) -> tuple[list[str], float]:
        """The faults of cycle ``k`` (or before) still held at its end within their revert
        deadline, and how long the loop waited for their reverts (at most until the latest
        deadline). A lease of the next cycle, granted before the hold, is no overrun."""
        now_s = time.time()
        late = [
            lease for lease in self.control.held_leases()
            if lease.revert_by_wall_s > now_s and lease.index // STRIDE <= k
        ]  # fmt: skip
        if not late or not ran:
            return [lease.what for lease in late], 0.0
        ids = {lease.lease_id for lease in late}

        def reverted() -> bool:
            return not ids.intersection(lease.lease_id for lease in self.control.held_leases())

        self.control.wait_until(max(lease.revert_by_wall_s for lease in late), reverted)
        waited_s = time.time() - now_s
        log.info("cycle overrun: waited %.2f s for %s", waited_s, ", ".join(sorted(ids)))
        return [lease.what for lease in late], waited_s

    def _breached(self, at_wall_s: float) -> str:
        """The SLOs of ``abort_on_breach`` that the ledger so far breaches ("" if none),
        judged as of ``at_wall_s`` (a fault held within its revert deadline is in flight).

        Judged in the judge child (:mod:`osha.soak.judge`), which keeps its analysis from
        cycle to cycle and reads only the new records: the analysis of a ledger that grows
        for days must not grow this long-lived process, and only the names come back."""
        if not self.abort_on_breach:  # the profile checked that [slo] sets each of them
            return ""
        began_s = time.monotonic()
        self.control.sync()
        names = self._judge.breached(at_wall_s)
        if names is None:  # logged: cannot judge; the soak goes on
            return ""
        log.debug("abort_on_breach judged in %.2f s", time.monotonic() - began_s)
        return ", ".join(names)


def overrun_risks(prof: Profile) -> list[str]:
    """One warning per planned fault that may outlast its soak cycle: its offset in the
    cycle + ``down_s`` + :data:`TYPICAL_STOP_START_S` beyond ``cycle_s`` (``--dry-run``)."""
    c = prof.campaign
    if not c.soak:
        return []
    out = []
    for row in plan_rows(prof, c.seed):
        end_s = c.cycle_baseline_s + row.offset_s + row.down_s + TYPICAL_STOP_START_S
        if end_s > c.cycle_s:
            what = f"{row.resource}@{row.node}" if row.resource else row.node
            out.append(
                f"{row.disruptor} ({row.action} {what}) may overrun its cycle: it starts "
                f"{c.cycle_baseline_s + row.offset_s:g} s in, is held {row.down_s:g} s, and a "
                f"stop/start typically adds {TYPICAL_STOP_START_S:g} s: {end_s:g} s > cycle "
                f"{c.cycle_s:g} s. The next cycle then waits (or skips faults); raise "
                "cycle_recovery_s"
            )
    return out
