"""The one streaming pass over a ledger: records in, per-target/runner/fault/actor state out.

Every record is unpacked once with msgpack (cheaper than peeking at the tag); the frequent
``monitor.sample`` is read positionally, every other record is built into its typed message by
the codec's compiled builders (so a wrong field is still a clear
:class:`~osha.errors.WireError`). Memory is bounded by the number of targets, runners (compact
arrays), faults, actors and soak cycles (one row each), never by the number of records.

**Damage.** A record that is not a valid message (see :mod:`osha.analysis._records`) is
counted with its position and skipped; so is every sequence gap, corrupt stretch and
``closed.json`` mismatch (``LedgerPass.damage``). The verdict of a damaged ledger is never a
silent pass (:class:`~osha.analysis.slo.Verdict`).

**End of the analysed run.** Everything from the campaign's ``verdict`` phase on is left out
of the metrics, and the run ends with the last record before it: the campaign judges the run
there, before it writes its verdict and ``run.stopped``, so replaying the ledger later sees
exactly what the live verdict saw (whether it judged just before or just after writing the
phase's start).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from osha.analysis._cycles import CycleTable
from osha.analysis._faults import FaultTable
from osha.analysis._records import (
    MONO_AT,
    NUMBER,
    SENDER_AT,
    SEQ_AT,
    bad_envelope,
    first_header,
    typed,
)
from osha.analysis._runners import RunnerSeries, series_of
from osha.analysis._targets import TargetTracker
from osha.analysis._vips import VipMoveLog
from osha.analysis.options import AnalysisOptions
from osha.audit import AuditTally
from osha.errors import LedgerError, WireError
from osha.ledger import LedgerReader, Position
from osha.ledger.damage import DamageCollector, close_problems, require_finite
from osha.ledger.segment import list_raw_segments, read_closed_marker
from osha.ledger.sequence import SeqTracker
from osha.messages import (
    FAULT_RECORDS,
    ActorCrashed,
    ActorRestarting,
    ActorStarted,
    ActorStopped,
    AuditCleanup,
    AuditEnd,
    AuditFinding,
    AuditStart,
    CampaignVerdict,
    LedgerHeader,
    Message,
    Phase,
    PhaseChange,
    RawBatch,
    Resources,
    RunnerIteration,
    RunnerStatus,
    RunnerUnfinished,
    RunStopped,
    Sample,
    SelfChaosKill,
    SoakCycle,
    StateChange,
    SupervisorEscalated,
    registry,
    spec_of,
)
from osha.wire import decode

__all__ = ["ActorState", "LedgerPass", "no_cyclic_gc", "run_pass"]

_unpackb = msgpack.unpackb
_SAMPLE = Sample.TAG
#: the codec's field index of what the fast path reads of an undecoded record, looked up once
_TARGET, _COUNT, _FAILURES = (spec_of(Sample).at(n) for n in ("target", "count", "failures"))
_PHASE, _EVENT = spec_of(PhaseChange).at("phase"), spec_of(PhaseChange).at("event")
_PHASE_CHANGE = PhaseChange.TAG
_AFTER_CUT = frozenset({CampaignVerdict.TAG, RunStopped.TAG})
#: what a record that is not a valid message raises while it is read (msgpack's errors are
#: ValueErrors; a payload too short for the fields read positionally is an IndexError)
_DAMAGED = (WireError, ValueError, TypeError, IndexError, KeyError, msgpack.UnpackException)


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

    def __init__(self, options: AnalysisOptions, reader: LedgerReader) -> None:
        self.options = options
        self.reader = reader
        self.run_dir = reader.directory
        self.raw_present = {s.number for s in list_raw_segments(reader.directory)}
        self.damage = DamageCollector()
        self.seqs = SeqTracker()
        self.header: LedgerHeader | None = None
        self.t0 = 0.0
        self.records = 0
        self.last_s = 0.0
        self.cut_s: float | None = None  # run time of the verdict phase start
        self.cut_last_s = 0.0  # run time of the last record before it
        self.targets: dict[tuple[str, str], TargetTracker] = {}
        self.by_monitor: dict[str, list[TargetTracker]] = {}
        self.runners: dict[str, RunnerSeries] = {}
        self.runner_failures: dict[str, str] = {}  # runner → its last failure's detail
        self.faults = FaultTable()
        self.vips = VipMoveLog()
        self.cycles = CycleTable()
        self.actors: dict[str, ActorState] = {}
        self.phases: dict[Phase, PhaseState] = {}
        self.stopped: RunStopped | None = None
        self.verdict: CampaignVerdict | None = None
        self.escalated = False
        self.audits = AuditTally()  # the audits before and after the campaign
        self._registry = registry()
        self._handlers: dict[str, Callable[[Any, float], None]] = {
            StateChange.TAG: self._state,
            RunnerStatus.TAG: self._runner_status,
            ActorStarted.TAG: self._actor_started,
            ActorCrashed.TAG: self._actor_crashed,
            ActorRestarting.TAG: self._actor_restarting,
            ActorStopped.TAG: self._actor_stopped,
            SupervisorEscalated.TAG: self._escalated,
            PhaseChange.TAG: self._phase,
            CampaignVerdict.TAG: self._verdict,
            RunStopped.TAG: self._stopped,
            RawBatch.TAG: self._raw_pointer,
            RunnerIteration.TAG: self._iteration,
            RunnerUnfinished.TAG: self._unfinished,
            SoakCycle.TAG: self._soak,
            SelfChaosKill.TAG: self._soak,
            Resources.TAG: self._soak,
            AuditStart.TAG: self._audit,
            AuditFinding.TAG: self._audit,
            AuditEnd.TAG: self._audit,
            AuditCleanup.TAG: self._audit,
        }
        for cls in FAULT_RECORDS:
            self._handlers[cls.TAG] = self._fault
        self._handlers[VipMoveLog.TAG] = self.vips.feed

    # -- the loop ---------------------------------------------------------------------------

    def feed(  # noqa: PLR0912 - the per-record loop stays inline for replay speed
        self, segment: int, offsets: list[int], batch: list[bytes]
    ) -> None:
        """One batch of payloads, in ledger order, with the offset where each starts.

        Over 60 lines on purpose: this is the replay's per-record loop (every record of a
        ledger passes here), kept inline with its lookups hoisted into locals; a call per
        record for a helper costs about 10 % of the replay (``scripts/bench_report.py``)."""
        if self.header is None and batch:
            self._start(segment, batch[0])
        t0 = self.t0
        handlers = self._handlers
        targets = self.targets
        last_seq = self.seqs.last
        self.records += len(batch)
        last = self.last_s + t0
        for k, payload in enumerate(batch):
            try:
                items = _unpackb(payload)
                tag, sender, seq, mono = items[0], items[SENDER_AT], items[SEQ_AT], items[MONO_AT]
                if (
                    type(sender) is not str
                    or type(seq) is not int
                    or type(mono) not in NUMBER
                    or mono - mono != 0.0  # NaN and infinities
                    or tag not in self._registry
                ):
                    raise bad_envelope(items)
                msg = None
                if tag == _SAMPLE:
                    target, count, failures = items[_TARGET], items[_COUNT], items[_FAILURES]
                    if (
                        type(target) is not str
                        or type(count) is not int
                        or (type(failures) is not int)
                    ):
                        decode(payload)  # raises the WireError that names the bad field
                else:
                    msg = require_finite(typed(items, payload))
            except _DAMAGED as exc:
                self._damaged(segment, offsets[k], exc)
                continue
            if last_seq.get(sender, 0) + 1 == seq:
                last_seq[sender] = seq
            else:
                self.seqs.feed(sender, seq, segment, offsets[k])
            if self.cut_s is not None:
                if tag in _AFTER_CUT:
                    handlers[tag](msg, mono - t0)
                continue
            if tag == _PHASE_CHANGE and items[_PHASE] == Phase.VERDICT and items[_EVENT] == "start":
                self.cut_last_s = last - t0  # the analysed run ends with the record before it
            elif mono > last and not tag.startswith("ledger."):
                # ledger.* records (raw-lane pointers, retention, resume) are the writer's own
                # bookkeeping, stamped when written: they are not observations of the run.
                last = mono
            if msg is None:
                tracker = targets.get((sender, target))
                if tracker is None:
                    tracker = self._tracker(sender, target)
                tracker.sample(mono - t0, count, failures)
            else:
                handler = handlers.get(tag)
                if handler is not None:
                    handler(msg, mono - t0)
        self.last_s = last - t0

    def _start(self, segment: int, payload: bytes) -> None:
        self.header, _ = first_header(self.reader, payload, segment, self.damage, self.run_dir)
        self.t0 = self.header.mono_s

    def _damaged(self, segment: int, offset: int, exc: Exception) -> None:
        why = exc.message if isinstance(exc, WireError) else f"not a message: {exc}"
        self.damage.add(
            "damaged record", f"damaged record at {Position(segment, offset)}: {why}", records=1
        )

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
        start = msg.started_wall_s + (msg.mono_s - msg.wall_s) - self.t0
        series_of(self.runners, msg).add(start, msg.duration_s, msg.ok, msg.atomic)

    def _unfinished(self, msg: RunnerUnfinished, t: float) -> None:
        start = msg.started_wall_s + (msg.mono_s - msg.wall_s) - self.t0
        series_of(self.runners, msg).cut_off(start)

    def _raw_pointer(self, msg: RawBatch, t: float) -> None:
        if msg.segment not in self.raw_present:  # retained away: its seqs may jump
            self.seqs.retained(msg.source, msg.count)

    def _runner_status(self, msg: RunnerStatus, t: float) -> None:
        series_of(self.runners, msg).status(msg.status)
        if msg.status == "failed":
            self.runner_failures[msg.sender] = msg.detail

    def _audit(self, msg: Message, t: float) -> None:
        self.audits.feed(msg)

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


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """The analysis allocates millions of short-lived, acyclic objects (unpacked records,
    then one report per target) and keeps a growing set of long-lived ones (trackers,
    outages): the cyclic collector would rescan the latter again and again for nothing (it
    doubled the CPU time at 200,000 targets). Reference counting frees the rest."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_pass(run_dir: Path, options: AnalysisOptions) -> tuple[LedgerPass, LedgerReader]:
    """Stream a ledger directory through a :class:`LedgerPass`; its damage is complete after
    it (``acc.damage``: damaged records, corrupt stretches, sequence gaps, closed.json)."""
    reader = LedgerReader(Path(run_dir))
    acc = LedgerPass(options, reader)
    with no_cyclic_gc():
        for segment, offsets, batch in reader.located_batches():
            acc.feed(segment, offsets, batch)
    if acc.header is None:
        acc.header = reader.header_copy()
        if acc.header is None:
            raise LedgerError(
                f"{reader.directory} holds no readable record, and no copy of its header",
                hint="the run may have died before its header was written; `osha ledger "
                f"verify {reader.directory}` lists what is damaged",
            )
        acc.t0 = acc.header.mono_s
        acc.damage.add("damaged header", "no record could be read; the header's copy in "
                       "header.rec was used")  # fmt: skip
    _collect_damage(acc, reader)
    return acc, reader


def _collect_damage(acc: LedgerPass, reader: LedgerReader) -> None:
    damage = acc.damage
    damage.add_reader(reader)
    damage.add_gaps(acc.seqs)
    for problem in close_problems(
        read_closed_marker(reader.directory),
        reader.segments,
        reader.tear,
        records_read=acc.records,
        retained=reader.retained_records,
    ):
        damage.add("closed.json mismatch", problem)
