"""The campaign, phase by phase: validate, preflight, load, baseline, chaos, recovery,
teardown, verdict. Each phase is a ``campaign.phase`` start and end record, in that order.

The rules it keeps:

- **Nothing is touched before the health gate passes** (or ``--force``): a failed preflight
  goes straight to the verdict, exit 3.
- **A stop is always graceful** (Ctrl-C, SIGTERM, ``osha campaign stop``, a supervisor that
  escalated, a failed phase): the remaining timed phases are skipped, and the teardown still
  stops the actors (disruptors revert; the broker reverts what is left), deletes the load,
  counts what is left, and the verdict is written. Exit code 3.
- **The ledger is the truth**: the verdict is computed from the synced ledger, the same way
  ``osha report`` computes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from osha.campaign.audit import CampaignAudit
from osha.campaign.load import InitialLoad
from osha.campaign.phases import Recorder
from osha.campaign.preflight import Checked, run_preflight
from osha.campaign.resume import LeftOff, close_interrupted
from osha.campaign.soak import CycleLoop, SoakControl
from osha.campaign.state import LiveState, TapSink
from osha.campaign.status import FinalVerdict
from osha.campaign.verdict import Judgement, judge
from osha.errors import LedgerError, OshaError
from osha.faults import plan_rows
from osha.messages.campaign import (
    CampaignFinding,
    CampaignRecovery,
    CampaignStop,
    CampaignVerdict,
    Phase,
)
from osha.profile import Profile
from osha.runtree import RunTree
from osha.schedule import ChaosClock
from osha.soak import SoakGuards, SoakOptions
from osha.supervisor import StopReason

__all__ = ["Campaign", "Hooks"]

log = logging.getLogger("osha.campaign")


@dataclass(frozen=True, slots=True)
class Hooks:
    """How the orchestrator talks to its caller (the CLI): show the findings table."""

    findings: Callable[[list[Checked]], None] = lambda checked: None


class Campaign:
    """One run of a profile. ``run()`` returns the judgement; ``request_stop`` is thread-
    and signal-safe."""

    def __init__(
        self,
        prof: Profile,
        *,
        tree: RunTree,
        recorder: Recorder,
        sink: TapSink,
        state: LiveState,
        run_dir: Path,
        run_id: str,
        force: bool = False,
        hooks: Hooks | None = None,
        soak: SoakOptions | None = None,
        first_cycle: int = 0,
    ) -> None:
        self.prof = prof
        self.rec = recorder
        self.sink = sink
        self.state = state
        self.run_dir = run_dir
        self.run_id = run_id
        self.force = force
        self.hooks = hooks or Hooks()
        self._stop = threading.Event()
        self._stop_reason = ""
        self._stop_lock = threading.Lock()
        self.actors = tree  # its recorder is open; its actors start at the load phase
        self.load = InitialLoad(prof.loads, run_id, self.rec.record, state.note)
        self.audit = CampaignAudit(prof.audits, self.rec.record, state.note,
                                   stopped=lambda: bool(self.stopped))  # fmt: skip
        self.chaos_wall_s = 0.0  # fixed when the actors start
        self.soak_options = soak or SoakOptions()
        self.guards: SoakGuards | None = None
        #: a soak goes on from this cycle (0-based; > 0 when resumed)
        self.first_cycle = first_cycle
        self.resumed = False
        cfg = prof.campaign
        if cfg.soak:
            self.state.cycles_planned = cfg.planned_cycles

    # -- stopping ---------------------------------------------------------------------------

    def request_stop(self, source: str, reason: str = "") -> None:
        """Ask for a graceful stop. The first request wins; later ones are ignored. The
        chaos gate closes before the stop is recorded: no fault is granted after it.
        Thread-safe; not from a signal handler itself (it waits for a grant in flight)."""
        with self._stop_lock:
            if self._stop.is_set():
                return
            self._stop_reason = f"{source}{': ' + reason if reason else ''}"
            self._stop.set()
        self.actors.close_gate(self._stop_reason)  # also if the actors start later
        self.state.stopping = self._stop_reason
        self.state.note(f"stop requested ({self._stop_reason})")
        try:
            self.rec.record(CampaignStop, source=source, reason=reason)
        except LedgerError as exc:  # the ledger itself failed (that is why we stop): say so
            log.error("cannot record the stop in the ledger: %s", exc.message)

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked for. Side-effect free: safe in a signal handler."""
        return self._stop.is_set()

    @property
    def stopped(self) -> str:
        """Why the campaign stops early; empty while it runs its course. Also notices a
        supervisor that ended by itself (escalation) and turns it into a stop request."""
        if not self._stop.is_set():
            outcome = self.actors.ended_by_itself
            if outcome is not None and outcome.reason is not StopReason.COMPLETED:
                self.request_stop("supervisor", outcome.error or outcome.reason.value)
        return self._stop_reason

    def _wait_until(self, wall_s: float, until: Callable[[], bool] | None) -> bool:
        """Wait until ``wall_s`` or until ``until()``; False if the campaign stopped."""
        self._wait(max(0.0, wall_s - time.time()), until)
        return not self.stopped

    def _wait(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Wait ``seconds``; True if it ran its course (or ``until`` became true)."""
        deadline_s = time.monotonic() + seconds
        while True:
            if self.stopped:
                return False
            if until is not None and until():
                return True
            remaining_s = deadline_s - time.monotonic()
            if remaining_s <= 0:
                return until is None
            self._stop.wait(min(0.2, remaining_s))

    # -- the phases ---------------------------------------------------------------------------

    def close_interrupted(self, where: LeftOff) -> None:
        """A resumed run: record what the dead run left open as closed (see
        :func:`osha.campaign.resume.close_interrupted`)."""
        self.resumed = True
        close_interrupted(self.rec, where)
        self.state.note(f"resumed {self.run_id} after cycle {where.last_cycle}")

    def run(self, *, end_only: bool = False) -> Judgement:
        """The whole campaign; ``end_only`` (a resumed run ended on purpose): only the
        teardown (the load the dead run left is found by its tag) and the verdict."""
        prof = self.prof
        if end_only:
            self.load.adopt()
            self._teardown()
            self.audit.after()
            return self._verdict()
        with self.rec.phase(Phase.VALIDATE) as res:
            res.detail = (
                f"{len(prof.actors)} actors, {len(prof.loads)} load entries, "
                f"slo {'set' if prof.slo is not None else 'none'}"
            )
        if self._preflight():
            try:
                self.audit.before(resumed=self.resumed)  # what is broken before we touch it
                self._load()
                self._timed_phases()
            except OshaError as exc:  # a phase failed (recorded): stop gracefully, then judge
                log.error("%s (%s)", exc.message, exc.hint)
                self.request_stop("error", exc.message)
            finally:
                self._teardown()
                self.audit.after()  # what the run left broken (the load is deleted)
        return self._verdict()

    def _preflight(self) -> bool:
        with self.rec.phase(Phase.PREFLIGHT, self.prof.campaign.preflight_timeout_s) as res:
            checked = run_preflight(self.prof, on_finding=self._record_finding)
            failed = [c for c in checked if not c.finding.ok]
            self.hooks.findings(checked)
            if failed and not self.force:
                res.fail(f"{len(failed)} of {len(checked)} checks failed; nothing was touched")
                self.request_stop("preflight", res.detail)
                return False
            res.detail = f"{len(checked)} checks" + (
                f", {len(failed)} failed but --force" if failed else ", all ok"
            )
        return not self.stopped

    def _record_finding(self, c: Checked) -> None:
        f = c.finding
        self.rec.record(
            CampaignFinding, source=c.source, target=f.target, ok=f.ok, message=f.message,
            hint=f.hint,
        )

    def _load(self) -> None:
        """The initial servers; then the actors start and the runners warm up."""
        with self.rec.phase(Phase.LOAD, self.prof.campaign.warmup_s) as res:
            detail, failures = self.load.create(
                stopped=lambda: bool(self.stopped), resumed=self.resumed
            )
            details = [detail]
            if failures:
                res.fail(detail)
                self.request_stop("load", f"{failures} servers did not boot")
            if not self.stopped:
                details.append(self._start_actors())
            res.detail = "; ".join(d for d in details if d)
            if self.stopped and res.ok:  # before the baseline (warm-up, disk floor): aborted
                res.fail(f"stopped: {self.stopped}; {res.detail}")

    def _start_actors(self) -> str:
        """Start every actor, then wait until every runner has recorded an iteration (Rally
        first creates its users and projects), at most ``warmup_s``. Only then is the chaos
        start fixed, ``baseline_s`` ahead, and given to the disruptors: the baseline lasts
        ``baseline_s`` however long the actors took to start."""
        cfg = self.prof.campaign
        started_s = time.monotonic()
        self.actors.start(self.sink)
        self.state.note(f"{len(self.prof.actors)} actors started")
        self.guards = SoakGuards(
            self.sink.write,
            self.actors.supervisor.children,
            self.soak_options,
            ledger_dir=self.run_dir,
            on_floor=self._on_disk_floor,
        )
        self.guards.start()
        detail = self._warm_up(started_s)
        self.chaos_wall_s = time.time() + cfg.baseline_s
        self.actors.set_clock(self.clock())
        return detail

    def _warm_up(self, started_s: float) -> str:
        cfg = self.prof.campaign
        runners = {a.id for a in self.prof.of_kind("runner")}
        if not runners or cfg.warmup_s <= 0:
            return f"actors started in {time.monotonic() - started_s:.1f} s"
        warm = self._wait(cfg.warmup_s, until=lambda: runners <= self.state.warm_runners())
        took_s = time.monotonic() - started_s
        if warm:
            return f"actors started; runners warm after {took_s:.1f} s"
        cold = ", ".join(sorted(runners - self.state.warm_runners()))
        return f"actors started; no iteration yet from {cold} after {took_s:.1f} s"

    def clock(self) -> ChaosClock:
        """When the fault windows start: once at the chaos start, or a soak's cycles."""
        cfg = self.prof.campaign
        if not cfg.soak:
            return ChaosClock(self.chaos_wall_s)
        return ChaosClock(
            self.chaos_wall_s + cfg.cycle_baseline_s,
            cfg.cycle_s,
            self.first_cycle,
            max(1, cfg.planned_cycles - self.first_cycle),
        )

    def _on_disk_floor(self, free_bytes: int) -> None:
        self.request_stop("disk-floor", f"{free_bytes // 2**20} MiB free beside the ledger")

    def _timed_phases(self) -> None:
        if self.stopped:
            return
        cfg = self.prof.campaign
        left_s = max(0.0, self.chaos_wall_s - time.time())
        with self.rec.phase(Phase.BASELINE, left_s) as res:
            if not self._wait(left_s):
                res.fail(f"stopped: {self.stopped}")
                return
        if cfg.soak:
            if not self._soak():
                return
        else:
            with self.rec.phase(Phase.CHAOS, cfg.chaos_s) as res:
                if not self._wait(cfg.chaos_s):
                    res.fail(f"stopped: {self.stopped}")
                    return
        self._recovery()

    def _soak(self) -> bool:
        """The chaos phase of a soak: its cycles. False if it stopped early."""
        cfg = self.prof.campaign
        clock = self.clock()
        actors = self.actors
        assert actors is not None
        with self.rec.phase(Phase.CHAOS, clock.cycles * clock.cycle_s) as res:
            loop = CycleLoop(
                clock,
                cycle_baseline_s=cfg.cycle_baseline_s,
                recorder=self.rec,
                state=self.state,
                control=SoakControl(
                    wait_until=self._wait_until,
                    request_stop=self.request_stop,
                    held_leases=actors.broker.active,
                    sync=lambda: self.sink.sync(30.0),
                    hold=actors.broker.hold,
                    resume=actors.broker.resume,
                ),
                run_dir=self.run_dir,
                planned_faults=len(plan_rows(self.prof, self.prof.campaign.seed)),
                abort_on_breach=cfg.abort_on_breach,
            )
            last = self.first_cycle + loop.run()
            res.detail = f"cycles {self.first_cycle + 1}-{last} of {cfg.planned_cycles}"
            if self.stopped:
                res.fail(f"stopped after cycle {last}: {self.stopped}")
                return False
        return True

    def _recovery(self) -> None:
        cfg = self.prof.campaign
        actors = self.actors
        assert actors is not None
        with self.rec.phase(Phase.RECOVERY, cfg.recovery_timeout_s) as res:
            began_s = time.monotonic()
            healthy_since: list[float] = []

            def settled() -> bool:
                if self.state.not_up() or actors.active_leases():  # unseen is not recovered
                    healthy_since.clear()
                    return False
                if not healthy_since:
                    healthy_since.append(time.monotonic())
                return time.monotonic() - healthy_since[0] >= cfg.recovery_hold_s

            ok = self._wait(cfg.recovery_timeout_s, until=settled)
            took_s = (healthy_since[0] if ok and healthy_since else time.monotonic()) - began_s
            seen = self.state.not_up()
            self.rec.record(
                CampaignRecovery, recovered=ok, recovery_s=round(took_s, 3),
                still_down=seen.down, active_leases=actors.active_leases(), unseen=seen.blind,
            )  # fmt: skip
            if ok:
                res.detail = f"every target up after {took_s:.1f} s"
            elif self.stopped:
                res.fail(f"stopped: {self.stopped}")
            else:
                res.fail(f"not recovered within {cfg.recovery_timeout_s:g} s: {seen}")

    def _teardown(self) -> None:
        with self.rec.phase(Phase.TEARDOWN) as res:
            problems: list[str] = []
            try:
                if self.guards is not None:
                    self.guards.stop()  # no self-chaos kill while the actors stop
                if self.actors.started:
                    reason = StopReason.REQUESTED if self._stop.is_set() else StopReason.DURATION
                    self.actors.stop(reason)
                    report = self.actors.report
                    if report is not None and report.failed:
                        problems.append(
                            f"{len(report.failed)} faults NOT reverted: "
                            + ", ".join(lease.what for lease in report.failed)
                            + f" (run `osha faults recover {self.run_dir}`)"
                        )
            finally:  # whatever happened to the actors, the load is deleted
                problems += self.load.delete()
            if problems:
                res.fail("; ".join(problems))
                for problem in problems:
                    log.error("teardown: %s", problem)
            else:
                res.detail = "actors stopped, faults reverted, load deleted"

    def _verdict(self) -> Judgement:
        with self.rec.phase(Phase.VERDICT) as res:
            self.sink.sync(30.0)  # the analysis reads the ledger from the disk
            judgement = judge(self.run_dir, self.prof.slo)
            self.rec.record(
                CampaignVerdict,
                passed=judgement.passed,
                exit_code=judgement.exit_code,
                slos=judgement.slos,
                summary=judgement.summary,
            )
            res.ok = judgement.passed
            res.detail = judgement.summary
        self.state.verdict = FinalVerdict(
            judgement.passed, judgement.exit_code, judgement.summary, judgement.slos
        )
        return judgement
