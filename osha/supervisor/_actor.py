# Over 400 lines (415): the OTP restart, backoff and escalation state machine of the
# supervisor, kept whole so that it reads top to bottom; the run tree (osha.runtree) took the
# wiring out of it. The restart intensity bookkeeping can move out if it grows.
"""The supervisor actor: starts children in order, restarts them as their specs say, escalates.

It runs in the main process as a pykka actor. Child handles tell it :class:`ChildDown`; timers
tell it :class:`_RestartDue` (no sleeping in the mailbox thread). Its own records use sender
``"supervisor"`` and its own sequence.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pykka

from osha.child import ChildDown, ChildExit, ChildHandle, Observer, RecordSink
from osha.errors import EXIT_ABORTED, PluginError
from osha.messages import (
    ActorCrashed,
    ActorRestarting,
    ActorStarted,
    ActorStopped,
    Message,
    SupervisorEscalated,
    stamp,
)
from osha.messages.actor import ActorBoot
from osha.supervisor._spec import (
    ChildSpec,
    Restart,
    RunOutcome,
    StopReason,
    Strategy,
    SupervisorSpec,
)
from osha.wire import plain

__all__ = ["ChildInfo", "ChildState", "Stamper", "SupervisorActor"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

SENDER = "supervisor"
_CALL_MARGIN_S = 10.0  # on top of a child's own timeouts, for a call to its handle


class Stamper:
    """Builds the supervisor's own messages: sender ``"supervisor"``, seq from 1. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count(1)

    def __call__(self, cls: type[M], /, **fields: Any) -> M:
        with self._lock:
            seq = next(self._seq)
        return stamp(cls, SENDER, seq, **fields)


class ChildState(enum.StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """A snapshot of one child, for tests and status displays."""

    id: str
    state: ChildState
    pid: int
    incarnation: int


@dataclass(slots=True)
class _Slot:
    spec: ChildSpec
    seed: int
    state: ChildState = ChildState.IDLE
    incarnation: int = 0
    pid: int = 0
    handle: pykka.ActorRef[Any] | None = None


@dataclass(frozen=True, slots=True)
class _RestartDue:
    ids: tuple[str, ...]


class SupervisorActor(pykka.ThreadingActor):
    """Supervises the children of one :class:`SupervisorSpec`. Call it through a proxy."""

    use_daemon_thread = True

    def __init__(
        self,
        spec: SupervisorSpec,
        sink: RecordSink,
        *,
        stamp: Stamper,
        on_finished: Callable[[RunOutcome], None],
        run_dir: Path | None = None,
        observer: Observer | None = None,
    ) -> None:
        super().__init__()
        self._spec = spec
        self._sink = sink
        self._stamp = stamp
        self._on_finished = on_finished
        self._run_dir = run_dir
        self._observer = observer
        self._slots = [_Slot(c, child_seed(spec.seed, c.id)) for c in spec.children]
        self._by_id = {s.spec.id: s for s in self._slots}
        self._restart_times_s: deque[float] = deque()
        self._restarts = 0
        self._timers: list[threading.Timer] = []
        self._stopping = False
        self._outcome: RunOutcome | None = None

    # -- calls (through a proxy) ------------------------------------------------------------

    def start_all(self) -> None:
        """Start every child in order, each ready before the next. Raises PluginError if one
        does not start; the ones already started are then stopped in reverse order."""
        for slot in self._slots:
            failure = self._start_slot(slot)
            if failure is not None:
                self._record_end(slot, failure)
                self._stop_children("a child did not start")
                error = (
                    f"child {slot.spec.id!r} ({slot.spec.kind} plugin {slot.spec.plugin!r}) "
                    f"did not start: {failure.last_error}"
                )
                self._finish(RunOutcome(StopReason.START_FAILED, self._restarts, error))
                raise PluginError(error, hint=self._log_hint(slot), exit_code=EXIT_ABORTED)

    def stop_all(self, reason: StopReason) -> RunOutcome:
        """Stop every child in reverse start order; the run's outcome (first reason wins)."""
        if self._outcome is None:
            self._stop_children(reason.value)
            self._finish(RunOutcome(reason, self._restarts))
        assert self._outcome is not None
        return self._outcome

    def send(self, child_id: str, command: Message) -> bool:
        """Send a command to a running child. False if it is not running."""
        slot = self._by_id.get(child_id)
        if slot is None:
            raise KeyError(f"no child {child_id!r}; children: {', '.join(self._by_id)}")
        if slot.state is not ChildState.RUNNING or slot.handle is None:
            return False
        return bool(slot.handle.proxy().send(command).get())

    def children(self) -> list[ChildInfo]:
        return [ChildInfo(s.spec.id, s.state, s.pid, s.incarnation) for s in self._slots]

    # -- messages ---------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChildDown):
            self._on_down(message.exit)
        elif isinstance(message, _RestartDue):
            self._on_restart_due(message.ids)
        return None

    def on_stop(self) -> None:
        for timer in self._timers:
            timer.cancel()

    def _on_down(self, exit: ChildExit) -> None:
        slot = self._by_id.get(exit.actor_id)
        if (
            slot is None
            or self._stopping
            or slot.state is not ChildState.RUNNING
            or slot.incarnation != exit.incarnation
        ):
            return  # stale: that incarnation was already stopped or replaced
        self._release(slot)
        crashed = self._record_end(slot, exit)
        if _wants_restart(slot.spec.restart, exit):
            self._restart(slot, exit)
            return
        if crashed:  # and it stays down: say so
            self._record_stopped(slot, exit, clean=False)
        if not any(s.state in (ChildState.RUNNING, ChildState.RESTARTING) for s in self._slots):
            self._stop_children("every child ended")
            self._finish(RunOutcome(StopReason.COMPLETED, self._restarts))

    def _restart(self, slot: _Slot, exit: ChildExit) -> None:
        now_s = time.monotonic()
        window = self._restart_times_s
        window.append(now_s)
        while window and window[0] < now_s - self._spec.flags.period_s:
            window.popleft()
        count = len(window)
        if count > self._spec.flags.intensity:
            self._escalate(slot, exit, count)
            return
        self._restarts += 1
        group = self._group(slot)
        for sibling in reversed(group):
            if sibling is not slot and sibling.state is ChildState.RUNNING:
                self._stop_slot(
                    sibling, f"{self._spec.flags.strategy.value}: {slot.spec.id} crashed"
                )
        group = [s for s in group if s is slot or s.spec.restart is not Restart.TEMPORARY]
        delay_s = self._spec.flags.backoff_s(count)
        for member in group:
            member.state = ChildState.RESTARTING
            self._record(
                ActorRestarting, actor_id=member.spec.id, restarts_in_period=count, delay_s=delay_s
            )
        due = _RestartDue(tuple(s.spec.id for s in group))
        if delay_s <= 0:
            self.actor_ref.tell(due)
            return
        timer = threading.Timer(delay_s, _tell_quietly, args=(self.actor_ref, due))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _on_restart_due(self, ids: tuple[str, ...]) -> None:
        for child_id in ids:
            slot = self._by_id[child_id]
            if self._stopping or slot.state is not ChildState.RESTARTING:
                continue
            failure = self._start_slot(slot)
            if failure is None:
                continue
            slot.state = ChildState.RUNNING  # so that _on_down treats it as this incarnation
            self._on_down(failure)
            if slot.state is ChildState.RESTARTING or self._stopping:
                return  # the group was rescheduled (or the run ended): it restarts in order

    def _group(self, slot: _Slot) -> list[_Slot]:
        strategy = self._spec.flags.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            return list(self._slots)
        if strategy is Strategy.REST_FOR_ONE:
            return self._slots[self._slots.index(slot) :]
        return [slot]

    def _escalate(self, slot: _Slot, exit: ChildExit, count: int) -> None:
        spec = self._spec.flags
        self._record(
            SupervisorEscalated,
            actor_id=slot.spec.id,
            restarts=count,
            intensity=spec.intensity,
            period_s=spec.period_s,
            last_error=exit.last_error,
        )
        error = (
            f"child {slot.spec.id!r} needed {count} restarts within {spec.period_s:g} s "
            f"(intensity {spec.intensity}); last error: {exit.last_error or 'none reported'}"
        )
        self._stop_children("escalated")
        self._finish(RunOutcome(StopReason.ESCALATED, self._restarts, error, slot.spec.id))

    # -- starting and stopping children --------------------------------------------------------

    def _start_slot(self, slot: _Slot) -> ChildExit | None:
        spec = self._spec.flags
        slot.incarnation += 1
        boot = stamp(
            ActorBoot,
            SENDER,
            0,
            actor_id=slot.spec.id,
            kind=slot.spec.kind,
            plugin=slot.spec.plugin,
            config=plain(slot.spec.config),
            seed=slot.seed,
            incarnation=slot.incarnation,
            heartbeat_interval_s=spec.heartbeat_interval_s,
            flush_interval_s=spec.batch_interval_s,
        )
        log_path = self._run_dir / "logs" / f"{slot.spec.id}.log" if self._run_dir else None
        ref = ChildHandle.start(
            boot,
            sink=self._sink,
            supervisor=self.actor_ref,
            heartbeat_timeout_s=spec.heartbeat_timeout_s,
            shutdown_s=slot.spec.shutdown_s,
            log_path=log_path,
            observer=self._observer,
        )
        proxy = ref.proxy()
        failure: ChildExit | None = proxy.spawn(spec.start_timeout_s).get(
            timeout=spec.start_timeout_s + _CALL_MARGIN_S
        )
        slot.pid = int(proxy.pid.get())
        if failure is not None:
            ref.stop()
            return failure
        slot.handle = ref
        slot.state = ChildState.RUNNING
        self._record(
            ActorStarted,
            actor_id=slot.spec.id,
            plugin=slot.spec.plugin,
            kind=slot.spec.kind,
            pid=slot.pid,
            incarnation=slot.incarnation,
            config=plain(slot.spec.config),
        )
        return None

    def _stop_children(self, reason: str) -> None:
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        for slot in reversed(self._slots):
            if slot.state is ChildState.RUNNING:
                self._stop_slot(slot, reason)
            slot.state = ChildState.STOPPED

    def _stop_slot(self, slot: _Slot, reason: str) -> None:
        assert slot.handle is not None
        timeout_s = slot.spec.shutdown_s + _CALL_MARGIN_S
        exit: ChildExit = slot.handle.proxy().stop_child(reason).get(timeout=timeout_s)
        self._release(slot)
        slot.state = ChildState.STOPPED
        self._record_stopped(slot, exit, clean=exit.exit_code == 0)

    def _release(self, slot: _Slot) -> None:
        if slot.handle is not None:
            slot.handle.stop(block=False)
            slot.handle = None

    # -- records ------------------------------------------------------------------------------

    def _record_end(self, slot: _Slot, exit: ChildExit) -> bool:
        """Record how a child ended by itself; True if that was a crash."""
        slot.state = ChildState.STOPPED
        if exit.normal and slot.spec.restart is not Restart.PERMANENT:
            self._record_stopped(slot, exit, clean=True)
            return False
        self._record(
            ActorCrashed,
            actor_id=slot.spec.id,
            pid=exit.pid,
            incarnation=exit.incarnation,
            reason=exit.reason or "exit",
            exit_code=exit.exit_code,
            signal=exit.signal,
            last_error=exit.last_error,
        )
        return True

    def _record_stopped(self, slot: _Slot, exit: ChildExit, *, clean: bool) -> None:
        self._record(
            ActorStopped,
            actor_id=slot.spec.id,
            pid=exit.pid,
            exit_code=exit.exit_code,
            signal=exit.signal,
            clean=clean,
            duration_s=exit.duration_s,
        )

    def _record(self, cls: type[M], /, **fields: Any) -> M:
        msg = self._stamp(cls, **fields)
        self._sink.write(msg)
        if self._observer is not None:
            try:
                self._observer(msg)
            except Exception:  # the observer is optional: its bug must not stop supervision
                log.exception("observer failed on %s; ignoring it", msg.TAG)
        return msg

    def _finish(self, outcome: RunOutcome) -> None:
        if self._outcome is None:
            self._outcome = outcome
            self._on_finished(outcome)

    def _log_hint(self, slot: _Slot) -> str:
        if self._run_dir is None:
            return "its output went to this terminal's stderr"
        return f"see its log: {self._run_dir / 'logs' / (slot.spec.id + '.log')}"


def _wants_restart(restart: Restart, exit: ChildExit) -> bool:
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return not exit.normal
    return False


def child_seed(seed: int, child_id: str) -> int:
    """A stable per-child seed derived from the run's seed."""
    return (seed * 1_000_003 + zlib.crc32(child_id.encode())) & 0x7FFF_FFFF


def _tell_quietly(ref: pykka.ActorRef[Any], message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return  # the supervisor stopped before the timer fired: nothing to restart
