"""The soak's chaos phase: fault cycles on a fixed cadence, each judged as it ends.

A soak (``[campaign] mode = "soak"``) runs the chaos phase as cycles ``first .. last`` of a
:class:`~osha.schedule.ChaosClock`. Cycle ``k`` (1-based in the ledger and on screen) starts
``cycle_baseline_s`` before its fault window and lasts ``cycle_s``; the disruptors strike in
the window on their own (each got the clock from the broker). At its end the cycle is
recorded (``soak.cycle`` end: ``ok`` when every watched target is up and no fault is held),
and the soak stops early and cleanly, before the next cycle, on:

- a fault whose revert failed for good (``fault.revert_failed`` final): the cloud may be left
  disrupted, so no further fault may strike;
- a breach of an SLO named in ``[campaign] abort_on_breach``, judged on the ledger so far
  against the ``[slo]`` it recorded (``osha report`` in a child process, once per cycle; its
  cost grows with the ledger);
- the disk-space floor, ``osha campaign stop``, Ctrl-C (they request the stop themselves).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from osha.campaign.phases import Recorder
from osha.campaign.state import LiveState
from osha.messages import SoakCycle
from osha.schedule import ChaosClock

__all__ = ["CycleLoop", "SoakControl"]

log = logging.getLogger("osha.campaign")

_JUDGE_TIMEOUT_S = 600.0  # a days-long ledger is judged at ~300,000 records/s


@dataclass(frozen=True, slots=True)
class SoakControl:
    """What the loop needs from the campaign."""

    wait_until: Callable[[float], bool]  # wait until a wall time; False if stopped
    request_stop: Callable[[str, str], None]
    active_leases: Callable[[], int]
    sync: Callable[[], object]  # the ledger is on disk after this (for abort_on_breach)


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

    def run(self) -> int:
        for k in self.clock.numbers():
            if not self._cycle(k):
                break
        return self.completed

    def _cycle(self, k: int) -> bool:
        number = k + 1
        start_wall_s = self.clock.window_wall_s(k) - self.cycle_baseline_s
        end_wall_s = start_wall_s + self.clock.cycle_s
        if not self.control.wait_until(start_wall_s):
            return False
        failed_before = self.state.faults.revert_failed
        self.rec.record(
            SoakCycle, cycle=number, phase="start", planned_faults=self.planned_faults
        )
        self.state.note(f"cycle {number} of {self.clock.first_cycle + self.clock.cycles}")
        ran = self.control.wait_until(end_wall_s)
        down = self.state.down_targets()
        held = self.control.active_leases()
        failed = self.state.faults.revert_failed - failed_before
        problems = []
        if not ran:
            problems.append("stopped")
        if down:
            problems.append(f"still down: {', '.join(down)}")
        if held:
            problems.append(f"{held} faults still held")
        if failed:
            problems.append(f"{failed} faults NOT reverted")
        ok = not problems
        detail = "every target up, every fault reverted" if ok else "; ".join(problems)
        self.rec.record(SoakCycle, cycle=number, phase="end", ok=ok, detail=detail[:500])
        self.completed += 1
        if failed:
            self.control.request_stop("revert-failed", f"cycle {number}: {failed} not reverted")
            return False
        if not ran:
            return False
        breached = self._breached()
        if breached:
            self.control.request_stop("slo", f"cycle {number}: {breached} breached")
            return False
        return True

    def _breached(self) -> str:
        """The SLOs of ``abort_on_breach`` that the ledger so far breaches ("" if none).

        Judged by ``osha report`` in a fresh process: the analysis of a ledger that grows
        for days must not grow this long-lived process (measured: +2.8 MiB RSS over 150
        in-process judgements, flat in a child)."""
        if not self.abort_on_breach:  # the profile checked that [slo] sets each of them
            return ""
        began_s = time.monotonic()
        self.control.sync()
        done = subprocess.run(
            [sys.executable, "-m", "osha", "report", str(self.run_dir), "--json", "-"],
            capture_output=True, text=True, timeout=_JUDGE_TIMEOUT_S, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            results = json.loads(done.stdout)["verdict"]["results"]
        except (ValueError, KeyError, TypeError):
            log.error(
                "abort_on_breach: cannot judge the ledger (osha report exit %d): %s",
                done.returncode, done.stderr.strip()[-500:],
            )  # fmt: skip
            return ""
        names = sorted(
            r["name"] for r in results if r["slo"] in self.abort_on_breach and not r["passed"]
        )
        log.debug("abort_on_breach judged in %.2f s", time.monotonic() - began_s)
        return ", ".join(names)
