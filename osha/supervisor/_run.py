"""The blocking API the command line calls: start, wait, stop, and ``run_supervised``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka

from osha.child import Observer, RecordSink
from osha.errors import EXIT_ABORTED, EXIT_OK, EscalationError
from osha.messages import Message, RunStarted, RunStopped
from osha.supervisor._actor import ChildInfo, Stamper, SupervisorActor
from osha.supervisor._spec import RunOutcome, StopReason, SupervisorSpec

__all__ = ["Supervisor", "raise_if_escalated", "run_supervised"]

_POLL_S = 0.1  # how often wait() looks at an outside stop_event
_STOP_TIMEOUT_S = 3600.0  # a bound for stop_all; each child is bounded by its shutdown_s


class Supervisor:
    """A supervised run: ``start()`` (children ready, in order), ``wait()``, ``stop()``.

    ``request_stop()`` is thread-safe and returns at once, so a SIGINT/SIGTERM handler may call
    it. Records go to ``sink`` (thread-safe: reader threads write children's batches to it).
    With ``run_id``, the run's ``run.started``/``run.stopped`` records are written too.
    ``observer``, if given, is called (from various threads) with every record the supervisor
    writes and with every control message a child sends (hello, ready, heartbeat, failed).
    """

    def __init__(
        self,
        spec: SupervisorSpec,
        sink: RecordSink,
        *,
        run_dir: Path | None = None,
        run_id: str | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.spec = spec
        self._sink = sink
        self._run_dir = run_dir
        self._run_id = run_id
        self._observer = observer
        self._stamp = Stamper()
        self._wake = threading.Event()
        self._outcome: RunOutcome | None = None
        self._requested: StopReason | None = None
        self._ref: pykka.ActorRef[Any] | None = None

    @property
    def outcome(self) -> RunOutcome | None:
        """How the run ended, once it has (escalation sets it before ``stop``)."""
        return self._outcome

    def start(self) -> None:
        """Start the children in order, each ready before the next. Raises PluginError (and
        stops what started) if one does not start."""
        if self._ref is not None:
            raise RuntimeError("this supervisor was already started")
        if self._run_id is not None:
            ids = tuple(c.id for c in self.spec.children)
            self._write(self._stamp(RunStarted, run_id=self._run_id, children=ids))
        self._ref = SupervisorActor.start(
            self.spec,
            self._sink,
            stamp=self._stamp,
            on_finished=self._on_finished,
            run_dir=self._run_dir,
            observer=self._observer,
        )
        try:
            self._ref.proxy().start_all().get()
        except BaseException:
            self._shutdown()
            raise

    def request_stop(self, reason: StopReason = StopReason.REQUESTED) -> None:
        """Ask for a graceful stop; ``wait`` returns. Thread- and signal-handler-safe."""
        if self._requested is None:
            self._requested = reason
        self._wake.set()

    def wait(
        self, timeout_s: float | None = None, *, stop_event: threading.Event | None = None
    ) -> StopReason:
        """Block until the run ends by itself, a stop is requested, ``stop_event`` is set, or
        ``timeout_s`` passes (then: ``DURATION``). Children keep running until ``stop``."""
        deadline_s = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self._outcome is not None:
                return self._outcome.reason
            if self._requested is not None:
                return self._requested
            if stop_event is not None and stop_event.is_set():
                return StopReason.REQUESTED
            pause_s = _POLL_S
            if deadline_s is not None:
                remaining_s = deadline_s - time.monotonic()
                if remaining_s <= 0:
                    return StopReason.DURATION
                pause_s = min(pause_s, remaining_s)
            self._wake.wait(pause_s)

    def stop(self, reason: StopReason = StopReason.REQUESTED) -> RunOutcome:
        """Stop every child in reverse start order and end the run. Idempotent."""
        if self._ref is None:
            raise RuntimeError("this supervisor was not started")
        try:
            outcome: RunOutcome = self._ref.proxy().stop_all(reason).get(timeout=_STOP_TIMEOUT_S)
        except pykka.ActorDeadError:
            assert self._outcome is not None  # stopped before: the outcome is known
            return self._outcome
        self._shutdown()
        return outcome

    def send(self, child_id: str, command: Message) -> bool:
        """Send a command message to a running child; False if it is not running now."""
        assert self._ref is not None
        return bool(self._ref.proxy().send(child_id, command).get())

    def children(self) -> list[ChildInfo]:
        """A snapshot of every child: state, pid and incarnation."""
        assert self._ref is not None
        result: list[ChildInfo] = self._ref.proxy().children().get()
        return result

    def _on_finished(self, outcome: RunOutcome) -> None:
        self._outcome = outcome
        self._wake.set()

    def _shutdown(self) -> None:
        if self._ref is None or not self._ref.is_alive():
            return
        self._ref.stop()
        if self._run_id is not None and self._outcome is not None:
            escalated = self._outcome.reason in (StopReason.ESCALATED, StopReason.START_FAILED)
            self._write(
                self._stamp(
                    RunStopped,
                    run_id=self._run_id,
                    reason=self._outcome.reason.value,
                    exit_code=EXIT_ABORTED if escalated else EXIT_OK,
                    error=self._outcome.error,
                )
            )

    def _write(self, msg: Message) -> None:
        self._sink.write(msg)
        if self._observer is not None:
            self._observer(msg)


def run_supervised(
    spec: SupervisorSpec,
    sink: RecordSink,
    *,
    duration_s: float | None = None,
    stop_event: threading.Event | None = None,
    run_dir: Path | None = None,
    run_id: str | None = None,
    observer: Observer | None = None,
    on_started: Callable[[Supervisor], None] | None = None,
) -> RunOutcome:
    """Run the children of ``spec`` until ``duration_s`` passes, ``stop_event`` is set, or
    the run ends by itself; then stop them in reverse order.

    ``on_started(supervisor)`` is called once every child is ready (e.g. to install signal
    handlers that call ``supervisor.request_stop``). Raises :class:`EscalationError` if the
    supervisor escalated (the children are stopped and the records written first), and
    :class:`~osha.errors.PluginError` if a child did not start.
    """
    sup = Supervisor(spec, sink, run_dir=run_dir, run_id=run_id, observer=observer)
    sup.start()
    reason = StopReason.INTERRUPT
    try:
        if on_started is not None:
            on_started(sup)
        reason = sup.wait(duration_s, stop_event=stop_event)
    finally:
        outcome = sup.stop(reason)
    raise_if_escalated(outcome)
    return outcome


def raise_if_escalated(outcome: RunOutcome) -> None:
    """The one escalation path of a blocking run: :class:`EscalationError` if the supervisor
    gave up (called after the children are stopped and the records written)."""
    if outcome.escalated:
        raise EscalationError(
            f"the supervisor gave up: {outcome.error}",
            hint="the ledger holds every actor.crashed record; fix the cause, then run again",
        )
