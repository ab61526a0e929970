"""The one streaming pass over a ledger: records in, per-target/runner/fault/actor state out.

Every record is unpacked once with msgpack (cheaper than peeking at the tag); the frequent
``monitor.sample`` is read positionally, every other record this pass cares about is built
into its typed message by the codec's compiled builders (so a wrong field is still a clear
:class:`~osha.errors.WireError`), and records of other tags are skipped. Memory is bounded by
the number of targets, runners (compact arrays), faults, actors and soak cycles (one row
each), never by the number of records.

**End of the analysed run.** Everything from the campaign's ``verdict`` phase on is left out
of the metrics, and the run ends with the last record before it: the campaign judges the run
there, before it writes its verdict and ``run.stopped``, so replaying the ledger later sees
exactly what the live verdict saw (whether it judged just before or just after writing the
phase's start).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from osha.analysis._cycles import CycleTable
from osha.analysis._faults import FaultTable
from osha.analysis._runners import RunnerSeries
from osha.analysis._targets import TargetTracker
from osha.analysis.options import AnalysisOptions
from osha.errors import LedgerError
from osha.ledger import LedgerReader
from osha.messages import (
    ActorCrashed,
    ActorRestarting,
    ActorStarted,
    ActorStopped,
    CampaignVerdict,
    LedgerHeader,
    Message,
    PhaseChange,
    RunnerIteration,
    RunnerStatus,
    RunStopped,
    StateChange,
    SupervisorEscalated,
    registry,
)
from osha.wire import decode

__all__ = ["ActorState", "LedgerPass", "run_pass"]

_unpackb = msgpack.unpackb
_SAMPLE = "monitor.sample"
_ITERATION = "runner.iteration"
_AFTER_CUT = frozenset({"campaign.verdict", "run.stopped"})


@dataclass(slots=True)
class ActorState:
    kind: str = ""
    plugin: str = ""
    starts: int = 0
    crashes: int = 0
    restarts: int = 0
    reasons: list[str] = field(default_factory=list)
    escalated: bool = False


@dataclass(slots=True)
class PhaseState:
    start_s: float
    end_s: float | None = None
    ok: bool = True
    detail: str = ""


class LedgerPass:
    """Accumulates one ledger. Feed it with :meth:`feed`; read its fields afterwards."""

    def __init__(self, options: AnalysisOptions) -> None:
        self.options = options
        self.header: LedgerHeader | None = None
        self.t0 = 0.0
        self.records = 0
        self.last_s = 0.0
        self.cut_s: float | None = None  # run time of the verdict phase start
        self.cut_last_s = 0.0  # run time of the last record before it
        self.targets: dict[tuple[str, str], TargetTracker] = {}
        self.by_monitor: dict[str, list[TargetTracker]] = {}
        self.runners: dict[str, RunnerSeries] = {}
        self.faults = FaultTable()
        self.cycles = CycleTable()
        self.actors: dict[str, ActorState] = {}
        self.phases: dict[str, PhaseState] = {}
        self.stopped: RunStopped | None = None
        self.verdict: CampaignVerdict | None = None
        self.escalated = False
        self._registry = registry()
        self._handlers: dict[str, Callable[[Any, float], None]] = {
            "monitor.state": self._state,
            "runner.status": self._runner_status,
            "actor.started": self._actor_started,
            "actor.crashed": self._actor_crashed,
            "actor.restarting": self._actor_restarting,
            "actor.stopped": self._actor_stopped,
            "supervisor.escalated": self._escalated,
            "campaign.phase": self._phase,
            "campaign.verdict": self._verdict,
            "run.stopped": self._stopped,
            "soak.cycle": self._soak,
            "osha.self_chaos": self._soak,
            "osha.resources": self._soak,
        }
        for tag in (
            "fault.lease",
            "fault.refused",
            "fault.injected",
            "fault.inject_failed",
            "fault.revert_attempted",
            "fault.reverted",
            "fault.revert_failed",
            "fault.released",
        ):
            self._handlers[tag] = self._fault

    # -- the loop ---------------------------------------------------------------------------

    def feed(self, batch: list[bytes]) -> None:
        """One batch of payloads, in ledger order."""
        if self.header is None and batch:
            self._start(batch[0])
        t0 = self.t0
        handlers = self._handlers
        targets = self.targets
        self.records += len(batch)
        last = self.last_s + t0
        for payload in batch:
            items = _unpackb(payload)
            tag = items[0]
            mono = items[3]
            if self.cut_s is not None:
                if tag in _AFTER_CUT:
                    handlers[tag](self._typed(items, payload), mono - t0)
                continue
            if tag == "campaign.phase" and items[5:7] == ["verdict", "start"]:
                self.cut_last_s = last - t0  # the analysed run ends with the record before it
            elif mono > last and not tag.startswith("ledger."):
                # ledger.* records (raw-lane pointers, retention, resume) are the writer's own
                # bookkeeping, stamped when written: they are not observations of the run.
                last = mono
            if tag == _SAMPLE:
                sender, target, count, failures = items[1], items[5], items[6], items[7]
                if type(target) is not str or type(count) is not int or type(failures) is not int:
                    decode(payload)  # raises the WireError that names the bad field
                tracker = targets.get((sender, target))
                if tracker is None:
                    tracker = self._tracker(sender, target)
                tracker.sample(mono - t0, count, failures)
            elif tag == _ITERATION:
                self._iteration(self._typed(items, payload), mono - t0)
            else:
                handler = handlers.get(tag)
                if handler is not None:
                    handler(self._typed(items, payload), mono - t0)
        self.last_s = last - t0

    def _start(self, payload: bytes) -> None:
        msg = decode(payload)
        if not isinstance(msg, LedgerHeader):
            raise LedgerError(
                f"the first record is {msg.TAG!r}, not a ledger header",
                hint="this is not the start of an osha ledger; give the run directory itself",
            )
        self.header = msg
        self.t0 = msg.mono_s

    def _typed(self, items: list[Any], payload: bytes) -> Any:
        spec = self._registry.get(items[0])
        if spec is not None and len(items) < len(spec.builders):
            build = spec.builders[len(items)]
            if build is not None:
                msg = build(items)
                if msg is not None:
                    return msg
        return decode(payload)  # raises the WireError that explains it

    def _tracker(self, monitor: str, target: str) -> TargetTracker:
        tracker = TargetTracker(monitor, target, self.options.max_episodes)
        self.targets[(monitor, target)] = tracker
        self.by_monitor.setdefault(monitor, []).append(tracker)
        return tracker

    # -- handlers ---------------------------------------------------------------------------

    def _state(self, msg: StateChange, t: float) -> None:
        tracker = self.targets.get((msg.sender, msg.target))
        if tracker is None:
            tracker = self._tracker(msg.sender, msg.target)
        t0 = self.t0
        last_good = None if msg.last_good_mono_s is None else msg.last_good_mono_s - t0
        tracker.change(msg.state, last_good, msg.first_bad_mono_s - t0, t)
        self.cycles.feed(msg, t)

    def _iteration(self, msg: RunnerIteration, t: float) -> None:
        series = self.runners.get(msg.sender)
        if series is None:
            series = self.runners[msg.sender] = RunnerSeries(msg.sender, msg.runner)
        start = msg.started_wall_s + (msg.mono_s - msg.wall_s) - self.t0
        series.add(start, msg.duration_s, msg.ok)

    def _runner_status(self, msg: RunnerStatus, t: float) -> None:
        series = self.runners.get(msg.sender)
        if series is None:
            series = self.runners[msg.sender] = RunnerSeries(msg.sender, msg.runner)
        series.status(msg.status)

    def _fault(self, msg: Message, t: float) -> None:
        self.faults.feed(msg, t, (msg.mono_s - msg.wall_s) - self.t0)
        self.cycles.feed(msg, t)

    def _soak(self, msg: Message, t: float) -> None:
        self.cycles.feed(msg, t)

    def _actor(self, actor_id: str) -> ActorState:
        state = self.actors.get(actor_id)
        if state is None:
            state = self.actors[actor_id] = ActorState()
        return state

    def _actor_started(self, msg: ActorStarted, t: float) -> None:
        state = self._actor(msg.actor_id)
        state.kind, state.plugin = msg.kind, msg.plugin
        state.starts += 1

    def _blind(self, actor_id: str, t: float) -> None:
        for tracker in self.by_monitor.get(actor_id, ()):
            tracker.blind_at(t)

    def _actor_crashed(self, msg: ActorCrashed, t: float) -> None:
        state = self._actor(msg.actor_id)
        state.crashes += 1
        if len(state.reasons) < 20:
            state.reasons.append(msg.reason)
        self._blind(msg.actor_id, t)
        self.cycles.feed(msg, t)
        self.faults.feed(msg, t, 0.0)  # a holder killed before confirming its inject

    def _actor_restarting(self, msg: ActorRestarting, t: float) -> None:
        self._actor(msg.actor_id).restarts += 1

    def _actor_stopped(self, msg: ActorStopped, t: float) -> None:
        self._blind(msg.actor_id, t)

    def _escalated(self, msg: SupervisorEscalated, t: float) -> None:
        self._actor(msg.actor_id).escalated = True
        self.escalated = True

    def _phase(self, msg: PhaseChange, t: float) -> None:
        if msg.event == "start":
            self.phases[msg.phase] = PhaseState(t)
            if msg.phase == "verdict":
                self.cut_s = t
        else:
            phase = self.phases.setdefault(msg.phase, PhaseState(t))
            phase.end_s, phase.ok, phase.detail = t, msg.ok, msg.detail

    def _verdict(self, msg: CampaignVerdict, t: float) -> None:
        self.verdict = msg

    def _stopped(self, msg: RunStopped, t: float) -> None:
        self.stopped = msg

    @property
    def end_s(self) -> float:
        """Run time where the analysed run ends: the verdict phase, or the last record."""
        return self.cut_last_s if self.cut_s is not None else self.last_s


def run_pass(run_dir: Path, options: AnalysisOptions) -> tuple[LedgerPass, LedgerReader]:
    """Stream a ledger directory through a :class:`LedgerPass`."""
    reader = LedgerReader(Path(run_dir))
    acc = LedgerPass(options)
    # The pass allocates millions of short-lived, acyclic objects (unpacked records) and keeps
    # a growing set of long-lived ones (trackers, outages): the cyclic collector would rescan
    # the latter again and again for nothing. Reference counting frees the records.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for batch in reader.batches():
            acc.feed(batch)
    finally:
        if was_enabled:
            gc.enable()
    if acc.header is None:
        raise LedgerError(
            f"{run_dir} holds no records",
            hint="the run may have died before its header was written; `osha ledger verify` "
            "says more",
        )
    return acc, reader
