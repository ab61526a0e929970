"""The campaign's live picture: fed by every record, read by the live view and ``status.json``.

:class:`TapSink` sits between the supervisor and the recorder: it forwards everything to the
recorder unchanged (the ledger stays the single source of truth) and lets :class:`LiveState`
look at the few tags the live view needs. Children's batches arrive pre-framed; only the
records whose tag is interesting are decoded (``peek_tag`` first), so the hot path stays cheap.

The live view is a convenience, never a verdict: the verdict comes from the ledger
(:mod:`osha.campaign.verdict`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from osha.campaign.status import (
    CycleVerdict,
    FaultCounts,
    FinalVerdict,
    LeaseStatus,
    NextFault,
    PhaseDone,
    RunnerView,
    SoakStatus,
    Status,
    TargetStatus,
)
from osha.messages import (
    ActorCrashed,
    ActorRestarting,
    ActorStarted,
    ActorStopped,
    FaultInjected,
    FaultInjectFailed,
    FaultLease,
    FaultPlanned,
    FaultRefused,
    FaultReleased,
    FaultRevertFailed,
    Lease,
    Message,
    Phase,
    RunnerIteration,
    RunnerStatus,
    SoakCycle,
    State,
    StateChange,
    is_bad,
    is_blind,
)
from osha.messages.campaign import PhaseChange
from osha.recorder import RecordTap

__all__ = ["LiveState", "NotUp", "RunnerTally", "TapSink"]

#: The tags the live picture is built from; every other record is forwarded undecoded.
WATCHED = frozenset(
    {
        "monitor.state",
        "runner.iteration",
        "runner.status",
        "fault.lease",
        "fault.injected",
        "fault.inject_failed",
        "fault.refused",
        "fault.released",
        "fault.revert_failed",
        "actor.started",
        "actor.crashed",
        "actor.restarting",
        "actor.stopped",
        "campaign.phase",
        "fault.planned",
        "soak.cycle",
    }
)

_LAST_VERDICTS = 10  # per-cycle verdicts kept for the status: it stays small over days


@dataclass(slots=True)
class RunnerTally:
    """One runner's iterations so far."""

    ok: int = 0
    failed: int = 0
    status: str = ""
    last_error: str = ""
    last_duration_s: float = 0.0

    @property
    def success_rate(self) -> float | None:
        total = self.ok + self.failed
        return self.ok / total if total else None

    def view(self) -> RunnerView:
        """This tally at this moment, for the live status."""
        return RunnerView(
            self.ok,
            self.failed,
            self.success_rate,
            self.status,
            self.last_error,
            round(self.last_duration_s, 2),
        )


@dataclass(frozen=True, slots=True)
class NotUp:
    """The watched targets not seen ``up`` at one moment, by the analysis's rule
    (:data:`osha.messages.BAD_STATES`). Each is ``target (monitor)``: two monitors may watch
    one target, and each view counts."""

    down: tuple[str, ...] = ()  # bad: down or unreachable (the monitor saw it fail)
    blind: tuple[str, ...] = ()  # unknown: the monitor cannot see it (no proof either way)

    def __bool__(self) -> bool:
        return bool(self.down or self.blind)

    def __str__(self) -> str:
        """``still down: a (m); not seen (unknown): b (m)``, each part only if it has targets."""
        parts = [f"still down: {', '.join(self.down)}"] if self.down else []
        if self.blind:
            parts.append(f"not seen (unknown): {', '.join(self.blind)}")
        return "; ".join(parts)


@dataclass(slots=True)
class _Target:
    state: State
    since_wall_s: float
    changes: int = 0

    def status(self) -> TargetStatus:
        return TargetStatus(self.state, self.since_wall_s, self.changes)


@dataclass(slots=True)
class _Lease:
    what: str
    holder: str
    granted_wall_s: float
    down_s: float
    injected: bool = False

    def status(self, now_s: float) -> LeaseStatus:
        held_s = round(now_s - self.granted_wall_s, 1)
        return LeaseStatus(self.what, self.holder, held_s, self.down_s, self.injected)


def _what(msg: FaultPlanned | Lease) -> str:
    """``stop nova-scheduler@ctl-1``, or ``reboot ctl-1`` for a whole node."""
    return f"{msg.action} {msg.resource + '@' if msg.resource else ''}{msg.node}"


class LiveState:
    """What is going on now. ``observe`` is thread-safe and cheap; ``snapshot`` is a
    :class:`~osha.campaign.status.Status` (``status.json``'s data is its ``to_json()``)."""

    def __init__(self, run_id: str, run_dir: str) -> None:
        self._lock = threading.Lock()
        self.run_id = run_id
        self.run_dir = run_dir
        self.started_wall_s = time.time()
        self.phase = Phase.VALIDATE
        self.phase_started_wall_s = self.started_wall_s
        self.phase_planned_s: float | None = None
        self.phases_done: list[PhaseDone] = []
        self.targets: dict[str, _Target] = {}
        self.leases: dict[str, _Lease] = {}
        self.faults = FaultCounts()  # frozen: each count replaces it
        self.runners: dict[str, RunnerTally] = {}
        self.restarts: dict[str, int] = {}
        self.crashes: dict[str, int] = {}
        self.actors: dict[str, str] = {}
        self.stopping = ""
        self.finished = False
        self.verdict: FinalVerdict | None = None
        self.notes: list[str] = []
        self.cycle = 0  # the soak cycle running (1-based; 0: none yet or not a soak)
        self.cycles_planned: int | None = None
        self.cycle_verdicts: list[CycleVerdict] = []
        self.planned: dict[str, tuple[str, float]] = {}  # lease id -> (what, at_wall_s)

    # -- feeding ------------------------------------------------------------------------------

    def set_phase(self, phase: Phase, planned_s: float | None) -> None:
        """Called by the orchestrator when a phase starts (``planned_s``: its expected length)."""
        with self._lock:
            self.phase = phase
            self.phase_started_wall_s = time.time()
            self.phase_planned_s = planned_s

    def note(self, text: str) -> None:
        """A one-line event for the view (kept short: the last few only)."""
        with self._lock:
            self.notes = [*self.notes[-4:], f"{time.strftime('%H:%M:%S')} {text}"]

    def observe(self, msg: Message) -> None:
        with self._lock:
            if isinstance(msg, StateChange):
                # Two monitors may watch one target (the API and the node): each view counts.
                key = f"{msg.target} ({msg.sender})"
                old = self.targets.get(key)
                changes = old.changes + 1 if old else 0
                self.targets[key] = _Target(msg.state, msg.wall_s, changes)
            elif isinstance(msg, RunnerIteration):
                tally = self.runners.setdefault(msg.sender, RunnerTally())
                if msg.ok:
                    tally.ok += 1
                else:
                    tally.failed += 1
                    tally.last_error = f"{msg.error_type}: {msg.error}"[:120]
                tally.last_duration_s = msg.duration_s
            elif isinstance(msg, RunnerStatus):
                self.runners.setdefault(msg.sender, RunnerTally()).status = msg.status
            elif msg.TAG.startswith(("fault.", "soak.")):
                self._observe_fault(msg)
            elif isinstance(msg, ActorStarted):
                self.actors[msg.actor_id] = "running"
            elif isinstance(msg, ActorCrashed):
                self.crashes[msg.actor_id] = self.crashes.get(msg.actor_id, 0) + 1
                self.actors[msg.actor_id] = "crashed"
            elif isinstance(msg, ActorRestarting):
                self.restarts[msg.actor_id] = self.restarts.get(msg.actor_id, 0) + 1
                self.actors[msg.actor_id] = "restarting"
            elif isinstance(msg, ActorStopped):
                self.actors[msg.actor_id] = "stopped"
            elif isinstance(msg, PhaseChange) and msg.event == "end":
                self.phases_done.append(PhaseDone(msg.phase, msg.ok, msg.detail))

    def _observe_fault(self, msg: Message) -> None:
        """The fault and soak-cycle records (the lock is held)."""
        if isinstance(msg, FaultPlanned):
            at_wall_s = msg.chaos_start_wall_s + msg.planned_offset_s
            self.planned[f"{msg.sender}/{msg.index}"] = (_what(msg), at_wall_s)
        elif isinstance(msg, SoakCycle):
            if msg.phase == "start":
                self.cycle = msg.cycle
            else:
                verdict = CycleVerdict(msg.cycle, msg.ok, msg.detail)
                self.cycle_verdicts = [*self.cycle_verdicts[1 - _LAST_VERDICTS :], verdict]
        elif isinstance(msg, FaultLease):
            self.planned.pop(msg.lease.lease_id, None)
            self.leases[msg.lease.lease_id] = _Lease(
                _what(msg.lease),
                msg.lease.holder,
                msg.wall_s,
                msg.lease.down_s,
            )
        elif isinstance(msg, FaultInjected):
            self._count(injected=self.faults.injected + 1)
            if msg.lease_id in self.leases:
                self.leases[msg.lease_id].injected = True
        elif isinstance(msg, FaultInjectFailed):
            self._count(inject_failed=self.faults.inject_failed + 1)
        elif isinstance(msg, FaultRefused):
            self._count(refused=self.faults.refused + 1)
        elif isinstance(msg, FaultReleased):
            self.leases.pop(msg.lease_id, None)
            self._count(reverted=self.faults.reverted + int(msg.reverted))
        elif isinstance(msg, FaultRevertFailed):
            self._count(revert_failed=self.faults.revert_failed + int(msg.final))

    def _count(self, **counts: int) -> None:
        """New fault counts (the lock is held)."""
        self.faults = dataclasses.replace(self.faults, **counts)

    # -- reading --------------------------------------------------------------------------------

    def not_up(self) -> NotUp:
        """The targets whose last state, as their monitor saw it, is not ``up``: the bad ones
        (down) apart from the blind ones (``unknown``), read at one moment."""
        with self._lock:
            targets = sorted(self.targets.items())
        return NotUp(
            down=tuple(t for t, s in targets if is_bad(s.state)),
            blind=tuple(t for t, s in targets if is_blind(s.state)),
        )

    def warm_runners(self) -> set[str]:
        """The runners that have recorded at least one iteration."""
        with self._lock:
            return {r for r, t in self.runners.items() if t.ok + t.failed}

    def active_leases(self) -> int:
        with self._lock:
            return len(self.leases)

    def next_fault(self, now_s: float) -> NextFault | None:
        """The next planned fault not yet leased (stale plans are dropped). Hold the lock."""
        for lease_id, (_what, at_wall_s) in list(self.planned.items()):
            if at_wall_s < now_s - 60.0:  # its time is long past: it will not come (stopped)
                del self.planned[lease_id]
        if not self.planned:
            return None
        what, at_wall_s = min(self.planned.values(), key=lambda p: p[1])
        return NextFault(what, at_wall_s)

    def snapshot(self) -> Status:
        """Everything, at one moment (``status.json``, the live view)."""
        now_s = time.time()
        with self._lock:
            elapsed_s = now_s - self.phase_started_wall_s
            left_s = None
            if self.phase_planned_s is not None:
                left_s = round(max(0.0, self.phase_planned_s - elapsed_s), 1)
            return Status(
                run_id=self.run_id,
                run_dir=self.run_dir,
                started_wall_s=self.started_wall_s,
                updated_wall_s=now_s,
                phase=self.phase,
                phase_elapsed_s=round(elapsed_s, 1),
                phase_left_s=left_s,
                phases_done=tuple(self.phases_done),
                targets={t: s.status() for t, s in sorted(self.targets.items())},
                leases={lid: lease.status(now_s) for lid, lease in self.leases.items()},
                faults=self.faults,
                runners={r: t.view() for r, t in sorted(self.runners.items())},
                actors=dict(sorted(self.actors.items())),
                restarts=dict(sorted(self.restarts.items())),
                crashes=dict(sorted(self.crashes.items())),
                stopping=self.stopping,
                finished=self.finished,
                verdict=self.verdict,
                notes=tuple(self.notes),
                next_fault=self.next_fault(now_s),
                soak=self._soak(),
            )

    def _soak(self) -> SoakStatus | None:
        """Where the soak is (None if this is not a soak). Hold the lock."""
        if self.cycles_planned is None:
            return None
        return SoakStatus(self.cycle, self.cycles_planned, tuple(self.cycle_verdicts))


class TapSink(RecordTap):
    """The campaign's tap: forwards to ``inner`` (the recorder) and shows ``observe`` the
    records the live picture watches (:data:`WATCHED`)."""

    def __init__(self, inner: Any, observe: Callable[[Message], None]) -> None:
        super().__init__(inner, observe, WATCHED)
