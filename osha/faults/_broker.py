"""The fault broker: grants durable leases, enforces the guard, reverts what crashed actors left.

It runs in the supervisor's process, fed by the supervisor's ``observer`` (every control
message a child sends, and every record the supervisor writes), and answers through
``Supervisor.send``. One worker thread handles requests in arrival order, so the guard sees a
consistent set of active leases; reverts run in their own threads so that one slow or failing
revert never holds up the others.

Protocol with a disruptor (see :mod:`osha.messages.fault`):

1. ``fault.sync`` → ``fault.synced``: the chaos start and the fault indices the holder (any
   incarnation) already asked for. A restarted disruptor skips them: no fault is retried.
2. ``fault.request`` → guard → ``fault.refused``, or ``fault.lease`` written **and fsynced**
   (``sink.sync``) → ``fault.grant``. Only then does the disruptor inject.
3. ``fault.release`` (after the holder reverted) → ``fault.released``.
4. ``actor.crashed`` of a holder → the broker reverts its leases itself, with the plugin's
   ``revert_lease(config, lease)``, then collects their dead-man switches (``collect``).
5. :meth:`FaultBroker.close` (end of run, after the children stopped) reverts whatever is
   still active.

**The chaos gate** (:mod:`osha.faults._gate`): ``hold``, ``resume`` and ``close_gate`` (a stop
is decided); ``hold`` and ``close_gate`` return once every grant sent before them is out.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import pykka

from osha.errors import LedgerError
from osha.faults._gate import ChaosGate, GateAction, GateCommand, GateState, Parked
from osha.faults._guard import Guard
from osha.faults._lease import Lease
from osha.faults._revert import BrokerReport, RetryPolicy, RevertThreads
from osha.faults._switch import Collector
from osha.messages import (
    ActorCrashed,
    FaultAck,
    FaultGrant,
    FaultLease,
    FaultRefused,
    FaultRelease,
    FaultReleased,
    FaultRequest,
    FaultSync,
    FaultSynced,
    Message,
    StateChange,
    stamp,
)
from osha.messages.fault import RevertBy
from osha.profile import QuorumRule
from osha.schedule import ChaosClock

__all__ = ["BrokerReport", "FaultBroker", "LeaseSink", "Reverter", "Sender"]

log = logging.getLogger("osha.faults")

M = TypeVar("M", bound=Message)

SENDER = "faults"
_ATTACH_WAIT_S = 60.0  # a request that comes before attach() waits this long for a sender
#: How long ``hold``/``close_gate`` wait for the worker: a grant in flight ends within the
#: lease fsync (``sync_timeout_s``) and the reply to its holder.
_GATE_WAIT_S = 30.0


class LeaseSink(Protocol):
    """Where the broker records: the recorder handle (``write``, and ``sync`` that returns
    once everything written before is fsynced)."""

    def write(self, msg: Message) -> None: ...

    def sync(self, timeout_s: float = ...) -> int: ...


Sender = Callable[[str, Message], bool]
"""Sends a command to a child by id (``Supervisor.send``); False if it is not running."""

Reverter = Callable[[Lease], str]
"""Reverts any lease (dispatching on ``lease.plugin``); returns a detail or raises."""


class FaultBroker:
    """Usage (the run tree wires it; see :class:`osha.runtree.RunTree`)::

    broker = FaultBroker(recorder, max_down=prof.guard.max_down, revert=reverter)
    sup = Supervisor(spec, recorder, observer=broker.observe)
    broker.attach(sup.send)
    broker.start()
    sup.start(); ...; sup.stop()
    report = broker.close()          # reverts anything still held
    """

    def __init__(
        self,
        sink: LeaseSink,
        *,
        max_down: Mapping[str, int],
        revert: Reverter,
        quorum: Mapping[str, QuorumRule] | None = None,
        policy: RetryPolicy | None = None,
        sync_timeout_s: float = 10.0,
        collect: Collector | None = None,
    ) -> None:
        self._sink = sink
        self._guard = Guard(max_down, quorum)
        self._sync_timeout_s = sync_timeout_s
        self._reverts = RevertThreads(revert, self._record, policy or RetryPolicy(),
                                      self._reverted, collect)  # fmt: skip
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._lock = threading.Lock()  # guards _active and _attempted
        self._active: dict[str, Lease] = {}
        self._attempted: dict[str, set[int]] = {}
        self._queue: queue.Queue[Message | ChaosClock | GateCommand | None] = queue.Queue()
        self._gate = ChaosGate()
        self._unsynced: list[FaultSync] = []  # syncs waiting for a deferred clock
        self._send: Sender | None = None
        self._attached = threading.Event()
        self._worker = threading.Thread(target=self._run, name="osha-fault-broker", daemon=True)
        self._closed = False
        self.clock: ChaosClock | None = ChaosClock(time.time())
        self.report = BrokerReport()

    # -- wiring ------------------------------------------------------------------------------

    def attach(self, send: Sender) -> None:
        """Give the broker its way to answer children (``Supervisor.send``)."""
        self._send = send
        self._attached.set()

    def start(self, clock: ChaosClock | None = None, *, deferred: bool = False) -> None:
        """Start the worker. ``clock``: when the disruptors' fault windows start (every
        ``fault.synced`` carries it); default: one window, starting now. ``deferred``: no
        clock yet; each ``fault.sync`` is answered once :meth:`set_clock` fixes it (the
        campaign fixes the chaos start once every actor is up and every runner warm)."""
        self.clock = None if deferred else clock or ChaosClock(time.time())
        self._worker.start()

    def set_clock(self, clock: ChaosClock) -> None:
        """Fix the deferred clock; the waiting disruptors get their ``fault.synced`` now."""
        self._queue.put(clock)

    def hold(self, reason: str) -> None:
        """Hold back new grants (parked until :meth:`resume`). Returns once every grant sent
        before it is out."""
        self._gate_command(GateAction.HOLD, reason)

    def resume(self) -> int:
        """Grant what was held back, or refuse it (its holder stopped waiting): how many
        were refused (skipped). Returns once each is granted or refused."""
        return self._gate_command(GateAction.RESUME, "")

    def close_gate(self, reason: str) -> None:
        """A stop is decided: refuse every request from now on. Returns once every grant
        sent before it is out. Thread-safe; not from a signal handler (it waits)."""
        self._gate_command(GateAction.CLOSE, reason)

    def _gate_command(self, action: GateAction, reason: str) -> int:
        command = GateCommand(action, reason)
        if self._closed or not self._worker.is_alive():
            self._on_gate(command)  # no worker (not started, or closed): nothing in flight
        else:
            self._queue.put(command)
            if not command.done.wait(_GATE_WAIT_S):
                log.error("fault broker: %s of the chaos gate still queued after %g s (a "
                          "grant in flight is slow to send)", action.value,
                          _GATE_WAIT_S)  # fmt: skip
        return sum(command.refused)

    def observe(self, msg: Message) -> None:
        """The supervisor's observer (and a tap's, for ``monitor.state``: the quorum guard's
        picture): cheap, thread-safe, never blocks."""
        if isinstance(msg, StateChange):
            self._guard.observe(msg)
        elif isinstance(msg, FaultSync | FaultRequest | FaultRelease | ActorCrashed):
            self._queue.put(msg)

    @property
    def held_back(self) -> int:
        """How many requests the chaos gate holds back now."""
        return self._gate.parked

    def active(self) -> list[Lease]:
        """The leases that count for the guard now."""
        with self._lock:
            return list(self._active.values())

    def close(self, timeout_s: float = 120.0) -> BrokerReport:
        """Handle what is queued, revert every lease still active, wait for the reverts (at
        most ``timeout_s``), and report. Call it after the children are stopped."""
        if self._closed:
            return self.report
        self._closed = True
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout=timeout_s)
        for lease in self.active():
            self._reverts.start(lease, "broker")
        self._reverts.join(timeout_s)
        for lease in self.active():  # reverts that did not succeed in time
            self.report.failed.append(lease)
            self._record(FaultReleased, lease_id=lease.lease_id, holder=lease.holder,
                         reverted=False, by="broker")  # fmt: skip
        return self.report

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            msg = self._queue.get()
            if msg is None:
                return
            try:
                self._handle(msg)
            except Exception:  # the broker must outlive one bad message: logged, next one
                log.exception("fault broker: handling %s failed", getattr(msg, "TAG", msg))

    def _handle(self, msg: Message | ChaosClock | GateCommand) -> None:
        if isinstance(msg, GateCommand):
            self._on_gate(msg)
        elif isinstance(msg, ChaosClock):
            self.clock = msg
            waiting, self._unsynced = self._unsynced, []
            for sync in waiting:
                self._synced(sync, msg)
        elif isinstance(msg, FaultSync):
            if self.clock is None:
                self._unsynced.append(msg)
            else:
                self._synced(msg, self.clock)
        elif isinstance(msg, FaultRequest):
            self._on_request(msg)
        elif isinstance(msg, FaultRelease):
            self._on_release(msg)
        elif isinstance(msg, ActorCrashed):
            self._released(self._gate.drop_holder(msg.actor_id))
            for lease in self.active():
                if lease.holder == msg.actor_id:
                    log.warning("%s crashed holding %s: reverting it", msg.actor_id, lease.what)
                    self._revert_in_background(lease, "broker")

    def _synced(self, msg: FaultSync, clock: ChaosClock) -> None:
        with self._lock:
            done = tuple(sorted(self._attempted.get(msg.sender, set())))
        self._reply(msg.sender, FaultSynced, request_id=msg.request_id,
                    chaos_start_wall_s=clock.start_wall_s, done=done, cycle_s=clock.cycle_s,
                    first_cycle=clock.first_cycle, cycles=clock.cycles)  # fmt: skip

    def _on_request(self, msg: FaultRequest) -> None:
        lease = msg.lease
        if lease.holder != msg.sender:
            self._refuse(msg, lease, f"sender {msg.sender!r} asked for holder {lease.holder!r}")
            return
        with self._lock:
            attempted = self._attempted.setdefault(lease.holder, set())
            again = lease.index in attempted
            attempted.add(lease.index)
        if again:
            again_text = "an earlier incarnation already attempted this fault; never retried"
            self._refuse(msg, lease, again_text)
        elif self._gate.refusal():
            self._refuse(msg, lease, self._gate.refusal())
        elif self._gate.state is GateState.HELD:
            self._gate.park(msg)  # the guard checks it when the gate opens
        else:
            self._guarded_grant(msg, lease)

    def _guarded_grant(self, msg: FaultRequest, lease: Lease) -> None:
        """The guard checks ``lease`` against the leases active now; granted or refused."""
        with self._lock:
            refusal = self._guard.check(self._active.values(), lease,
                                        allow_quorum_loss=msg.allow_quorum_loss)  # fmt: skip
        if refusal is not None and not refusal.overridden:
            self._refuse(msg, lease, refusal.reason, refusal.limit, refusal.active)
        else:
            self._grant(msg, lease, refusal.reason if refusal else "")

    def _grant(self, msg: FaultRequest, lease: Lease, note: str = "") -> None:
        """Record the lease (with what the grant overrode), make it durable, then grant."""
        if note:
            log.warning("granted %s for %s: %s", lease.what, lease.holder, note)
        self._record(FaultLease, lease=lease, guard_note=note)
        began_s = time.monotonic()
        try:
            self._sink.sync(self._sync_timeout_s)
        except LedgerError as exc:
            log.error("lease %s is not durable (%s): refusing it", lease.lease_id, exc)
            self._answer(msg, False, f"the lease could not be made durable: {exc}")
            return
        self.report.lease_sync_s.append(time.monotonic() - began_s)
        with self._lock:
            self._active[lease.lease_id] = lease
        if not self._answer(msg, True):  # the holder is gone; it may have crashed after asking
            self._revert_in_background(lease, "broker")

    def _answer(self, msg: FaultRequest, granted: bool, reason: str = "") -> bool:
        return self._reply(msg.sender, FaultGrant, request_id=msg.request_id,
                           lease_id=msg.lease.lease_id, granted=granted, reason=reason)  # fmt: skip

    def _refuse(
        self,
        msg: FaultRequest,
        lease: Lease,
        reason: str,
        limit: str = "",
        active: tuple[str, ...] = (),
    ) -> None:
        log.warning("refused %s for %s: %s", lease.what, lease.holder, reason)
        self._record(FaultRefused, lease_id=lease.lease_id, holder=lease.holder,
                     index=lease.index, action=lease.action, node=lease.node,
                     resource=lease.resource, reason=reason, limit=limit,
                     active=active)  # fmt: skip
        self._answer(msg, False, reason)

    def _on_release(self, msg: FaultRelease) -> None:
        with self._lock:
            lease = self._active.get(msg.lease_id)
            mine = lease is not None and lease.holder == msg.sender
            if mine and msg.reverted:
                del self._active[msg.lease_id]
        if lease is not None and mine and msg.reverted:
            self._record(FaultReleased, lease_id=lease.lease_id, holder=lease.holder,
                         reverted=True, by="holder")  # fmt: skip
        elif lease is not None and mine:  # the holder gave up: still counted; retried at close
            log.error("%s gave up reverting %s; it stays counted", msg.sender, lease.what)
        self._reply(msg.sender, FaultAck, request_id=msg.request_id, lease_id=msg.lease_id)

    def _on_gate(self, command: GateCommand) -> None:
        command.refused.append(self._released(self._gate.apply(command)))
        command.done.set()

    def _released(self, parked: list[Parked]) -> int:
        """Requests let out of the gate, in arrival order: each checked by the guard and
        granted now, or refused with the gate's reason (counted)."""
        for item in parked:
            lease = item.request.lease
            if item.refusal:
                self._refuse(item.request, lease, item.refusal)
            else:
                self._guarded_grant(item.request, lease)
        return sum(bool(item.refusal) for item in parked)

    # -- reverts ---------------------------------------------------------------------------

    def _revert_in_background(self, lease: Lease, by: RevertBy) -> None:
        with self._lock:
            held = lease.lease_id in self._active
        if held:
            self._reverts.start(lease, by)

    def _reverted(self, lease: Lease, by: RevertBy) -> None:
        with self._lock:
            self._active.pop(lease.lease_id, None)
        self.report.reverted.append(lease)
        self.report.reverted_count += 1
        self._record(
            FaultReleased, lease_id=lease.lease_id, holder=lease.holder, reverted=True, by=by
        )

    # -- records and replies ---------------------------------------------------------------

    def _record(self, cls: type[M], /, **fields: Any) -> M:
        with self._seq_lock:
            self._seq += 1
            msg = stamp(cls, SENDER, self._seq, **fields)
            self._sink.write(msg)  # under the lock: the ledger sees this sender's seq in order
        return msg

    def _reply(self, child_id: str, cls: type[M], /, **fields: Any) -> bool:
        msg = stamp(cls, SENDER, 0, **fields)
        if not self._attached.wait(_ATTACH_WAIT_S) or self._send is None:
            log.error("fault broker: no sender attached; %s to %s is lost", cls.TAG, child_id)
            return False
        try:
            return self._send(child_id, msg)
        except (KeyError, pykka.ActorDeadError) as exc:  # unknown child, or the run is over
            log.warning("fault broker: cannot answer %s: %s", child_id, exc)
            return False
