"""The run tree: the one owner of a run's recorder, fault broker and supervisor.

A run is a small OTP-style tree, declared as data (:class:`TreeSpec`, like the supervisor's
child specs) and started and stopped by one owner (:class:`RunTree`)::

    recorder            (the ledger; opened first, closed last)
      └─ fault broker   (guard, reverts; answers the disruptors through the supervisor)
           └─ supervisor
                └─ children (monitors, runners, disruptors; in spec order)

**Start order** is top-down: :meth:`RunTree.open` starts the recorder (the campaign records
its validate, preflight and load phases before any actor exists), :meth:`RunTree.start` then
starts the broker, then the supervisor and its children, each ready before the next.

**Stop order** is the reverse, and the same for every entry point: the children stop in
reverse order (each disruptor reverts what it holds), then the broker reverts whatever is
still held (:meth:`RunTree.stop`), then the recorder flushes, fsyncs and closes
(:meth:`RunTree.close`, which stops the actors first if they still run). Every revert is
recorded before the ledger closes: nothing is lost.

**Escalation** has one path: a supervisor that gave up ends the blocking :meth:`RunTree.run`
with :class:`~osha.errors.EscalationError` (after the stop above), and a caller that runs its
own loop (the campaign) sees it in :attr:`RunTree.ended_by_itself`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from osha.child import RecordSink
from osha.faults import (
    BrokerReport,
    Collector,
    FaultBroker,
    LeaseSink,
    RetryPolicy,
    Reverter,
    collector_for_profile,
    reverter_for_profile,
)
from osha.ledger import LedgerWriter
from osha.messages import StateChange
from osha.profile import ActorEntry, Profile, QuorumRule
from osha.recorder import RecorderFailed, RecorderHandle, RecordTap
from osha.schedule import ChaosClock
from osha.supervisor import (
    ChildSpec,
    Restart,
    RunOutcome,
    StopReason,
    Supervisor,
    SupervisorSpec,
    raise_if_escalated,
)

__all__ = ["BrokerSpec", "RunTree", "TreeSink", "TreeSpec", "supervisor_spec", "tree_spec"]

log = logging.getLogger("osha.runtree")

_ORDER = {"monitor": 0, "runner": 1, "disruptor": 2}
#: What the broker's quorum guard reads of the children's records: the monitors' states
QUORUM_TAGS = frozenset({StateChange.TAG})


class TreeSink(RecordSink, LeaseSink, Protocol):
    """What the broker and the supervisor write to: the recorder handle, or a tap over it."""


@dataclass(frozen=True, slots=True)
class BrokerSpec:
    """The fault broker of a run: its guard (``max_down`` per target group, and ``quorum``
    per cluster), how it reverts a lease, its retry policy. ``defer_clock``: no chaos clock
    at start; the caller fixes it with :meth:`RunTree.set_clock` (the campaign, once every
    runner is warm).
    ``close_timeout_s`` bounds the broker's final reverts."""

    max_down: Mapping[str, int]
    revert: Reverter
    policy: RetryPolicy | None = None
    defer_clock: bool = False
    close_timeout_s: float = 120.0
    collect: Collector | None = None  # disarms the dead-man switches of what it reverts
    quorum: Mapping[str, QuorumRule] | None = None  # the broker sees monitor.state for it


@dataclass(frozen=True, slots=True)
class TreeSpec:
    """A whole run tree: the supervisor's spec, the broker's, where the children keep their
    logs (``run_dir``), the run's id, and how long the recorder may take to close."""

    supervisor: SupervisorSpec
    broker: BrokerSpec
    run_dir: Path
    run_id: str
    recorder_close_s: float = 60.0


def supervisor_spec(prof: Profile) -> SupervisorSpec:
    """The supervisor's spec: the profile's actors in start order (monitors, runners,
    disruptors: monitors watch before anything happens, disruptors come last)."""
    entries: list[ActorEntry] = sorted(prof.actors, key=lambda a: _ORDER[a.kind])
    return SupervisorSpec(
        children=tuple(
            ChildSpec(
                id=a.id,
                kind=a.kind,
                plugin=a.plugin,
                config=a.raw_config,
                restart=Restart(a.restart),
                shutdown_s=a.shutdown_s,
            )
            for a in entries
        ),
        flags=prof.supervisor,
        seed=prof.campaign.seed,
    )


def tree_spec(prof: Profile, *, run_dir: Path, run_id: str, defer_clock: bool = False) -> TreeSpec:
    """The run tree of a run of ``prof``: its actors, its guard and its disruptors' reverts."""
    return TreeSpec(
        supervisor=supervisor_spec(prof),
        broker=BrokerSpec(
            max_down=prof.guard.max_down,
            revert=reverter_for_profile(prof),
            defer_clock=defer_clock,
            collect=collector_for_profile(prof),
            quorum=prof.guard.quorum_rules(),
        ),
        run_dir=run_dir,
        run_id=run_id,
    )


class RunTree:
    """One run's recorder, broker and supervisor: :meth:`open`, :meth:`start`, then
    :meth:`stop` (the actors) and :meth:`close` (everything), or :meth:`run` in between."""

    def __init__(self, spec: TreeSpec) -> None:
        self.spec = spec
        self._recorder: RecorderHandle | None = None
        self._lock = threading.Lock()  # guards _broker and _gate_reason
        self._broker: FaultBroker | None = None
        self._gate_reason: str | None = None
        self._supervisor: Supervisor | None = None
        self._stopped: RunOutcome | None = None
        self.report: BrokerReport | None = None

    # -- starting, top-down -------------------------------------------------------------------

    def open(
        self, writer: LedgerWriter, *, on_error: Callable[[RecorderFailed], object] | None = None
    ) -> RecorderHandle:
        """Start the recorder (it owns ``writer``): the first node up, the last one down."""
        if self._recorder is not None:
            raise RuntimeError("this run tree's recorder is already open")
        self._recorder = RecorderHandle.start(writer, on_error=on_error)
        return self._recorder

    def start(self, sink: TreeSink | None = None) -> None:
        """Start the broker, then the supervisor and its children (in order, each ready
        before the next). ``sink``: what they write to; default the recorder (the campaign
        passes its tap over it). Raises PluginError if a child does not start."""
        if self._recorder is None:
            raise RuntimeError("open the run tree's recorder before starting its actors")
        to: TreeSink = sink if sink is not None else self._recorder
        b = self.spec.broker
        broker = FaultBroker(to, max_down=b.max_down, revert=b.revert, policy=b.policy,
                             collect=b.collect, quorum=b.quorum)  # fmt: skip
        # the quorum guard counts what the cluster monitors report: it sees their states
        watched = RecordTap(to, broker.observe, QUORUM_TAGS) if b.quorum else to
        sup = Supervisor(
            self.spec.supervisor,
            watched,
            run_dir=self.spec.run_dir,
            run_id=self.spec.run_id,
            observer=broker.observe,
        )
        broker.attach(sup.send)
        with self._lock:
            if self._broker is not None:
                raise RuntimeError("this run tree's actors were already started")
            self._broker, self._supervisor = broker, sup
            closed = self._gate_reason
        if closed is not None:  # a stop came before the broker: no fault from it either
            broker.close_gate(closed)
        broker.start(deferred=b.defer_clock)
        sup.start()

    # -- while it runs --------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._supervisor is not None

    @property
    def broker(self) -> FaultBroker:
        if self._broker is None:
            raise RuntimeError("the run tree's actors are not started")
        return self._broker

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            raise RuntimeError("the run tree's actors are not started")
        return self._supervisor

    def set_clock(self, clock: ChaosClock) -> None:
        """Fix when the fault windows start; every disruptor gets it (now, or when it asks)."""
        self.broker.set_clock(clock)

    def close_gate(self, reason: str) -> None:
        """A stop is decided: the broker refuses every fault from now on, also if it is only
        started later. Thread-safe; returns once every grant sent before it is out."""
        with self._lock:
            if self._gate_reason is None:
                self._gate_reason = reason
            broker = self._broker
        if broker is not None:
            broker.close_gate(reason)

    def active_leases(self) -> int:
        return len(self._broker.active()) if self._broker is not None else 0

    @property
    def ended_by_itself(self) -> RunOutcome | None:
        """How the run ended when it did so before :meth:`stop` (escalation, a child that did
        not start, every child ended); None while it runs, before it starts, after a stop."""
        if self._stopped is not None or self._supervisor is None:
            return None
        return self._supervisor.outcome

    def run(
        self,
        *,
        duration_s: float | None = None,
        stop_event: threading.Event | None = None,
        on_started: Callable[[Supervisor], None] | None = None,
    ) -> tuple[RunOutcome, BrokerReport]:
        """Start the actors, run until ``duration_s`` passes, ``stop_event`` is set or the run
        ends by itself, then :meth:`stop` them. Raises EscalationError if the supervisor gave
        up (after the stop: every revert is recorded), PluginError if a child did not start.
        The recorder stays open: :meth:`close` it."""
        reason = StopReason.INTERRUPT
        try:
            self.start()
            if on_started is not None:
                on_started(self.supervisor)
            reason = self.supervisor.wait(duration_s, stop_event=stop_event)
        finally:
            outcome = self.stop(reason)
        assert outcome is not None  # started: stop() stopped it
        assert self.report is not None
        raise_if_escalated(outcome)
        return outcome, self.report

    # -- stopping, bottom-up --------------------------------------------------------------------

    def stop(self, reason: StopReason) -> RunOutcome | None:
        """Stop every child (reverse order; each disruptor reverts what it holds), then let
        the broker revert whatever is still held. None if the actors never started.
        Idempotent; the recorder stays open."""
        if self._broker is None or self._supervisor is None:
            return None
        outcome = self._stopped
        if outcome is None:
            began_s = time.monotonic()
            try:
                outcome = self._stopped = self._supervisor.stop(reason)
            finally:
                self.report = self._broker.close(self.spec.broker.close_timeout_s)
                if self.report.failed:
                    log.critical(
                        "%d fault(s) could not be reverted: %s",
                        len(self.report.failed),
                        ", ".join(lease.what for lease in self.report.failed),
                    )
            log.info("actors stopped in %.1f s", time.monotonic() - began_s)
        return outcome

    def close(self, reason: StopReason = StopReason.INTERRUPT) -> int:
        """Stop the actors if they still run (``reason``), then close the recorder last:
        flush, fsync, close the ledger. Returns the records written. Idempotent."""
        try:
            self.stop(reason)
        finally:
            written = 0
            if self._recorder is not None:
                written = self._recorder.close(timeout_s=self.spec.recorder_close_s)
        return written
