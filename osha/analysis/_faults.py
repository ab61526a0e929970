"""Fault leases: one mutable record per ``lease_id``, filled as the lifecycle messages pass.

See :mod:`osha.messages.fault` for the lifecycle. Times are run times (seconds). The actual
inject time comes from ``fault.injected.actual_wall_s`` (when the injection *started*), moved
to the monotonic clock with that message's own envelope offset.

**Unconfirmed injects.** A holder killed after its grant and before it recorded the inject's
outcome (``fault.injected`` or ``fault.inject_failed``) leaves a fault that may or may not be
in place. The record keeps what is known: the grant, the holder's crash, when the broker took
over (its first revert attempt) and when the fault was reverted.

**Held, in flight.** :meth:`FaultRecord.status_at` judges a run that is still going: a fault
not reverted, whose revert has not failed for good and whose deadline (``revert_by_wall_s``)
is still ahead, is ``held`` (in flight, e.g. a cycle's overrun), not ``unreverted``.
"""

from __future__ import annotations

from dataclasses import dataclass

from osha.analysis._kinds import FaultStatus
from osha.messages import (
    ActorCrashed,
    FaultInjected,
    FaultInjectFailed,
    FaultLease,
    FaultRefused,
    FaultReleased,
    FaultRevertAttempted,
    FaultReverted,
    FaultRevertFailed,
    Message,
)

__all__ = ["FaultRecord", "FaultTable"]


@dataclass(slots=True)
class FaultRecord:
    lease_id: str
    holder: str = ""
    plugin: str = ""
    action: str = ""
    node: str = ""
    resource: str = ""
    planned_s: float | None = None
    injected_s: float | None = None
    inject_error: str = ""
    refused: str = ""
    reverted_s: float | None = None
    # when the successful revert began (its ``elapsed_s`` before ``reverted_s``): the
    # reference of the time to recover, since a start command returns only once it is done
    revert_began_s: float | None = None
    reverted_by: str = ""
    revert_attempts: int = 0
    revert_error: str = ""
    revert_final: bool = False
    released: bool = False
    released_unreverted: bool = False  # the broker gave it up at the end of the run
    granted_s: float | None = None  # when its lease was granted (``fault.lease``)
    revert_by_wall_s: float | None = None  # the lease's revert deadline (wall clock)
    holder_lost_s: float | None = None  # the holder crashed before confirming the inject
    takeover_s: float | None = None  # the first revert attempt by the broker (or recover)
    guard_note: str = ""  # the quorum rule its holder overrode (allow_quorum_loss)

    @property
    def status(self) -> str:
        return self.status_at(None)

    def status_at(self, live_at_wall_s: float | None) -> FaultStatus:
        """The status; with ``live_at_wall_s`` (judging a run still going), a fault still
        held within its revert deadline is ``held``, not ``unreverted``. ``failed``: its
        inject failed before any lease was granted (e.g. no grant in time), so nothing was
        injected and there is nothing to revert."""
        if self.refused:
            return FaultStatus.REFUSED
        if self.reverted_s is not None:
            return FaultStatus.REVERTED
        if self.inject_error and self.granted_s is None and not self.revert_attempts:
            return FaultStatus.FAILED
        if self.injected_s is not None or self.inject_error or self.revert_attempts:
            in_flight = (
                live_at_wall_s is not None
                and self.revert_by_wall_s is not None
                and live_at_wall_s < self.revert_by_wall_s
                and not self.revert_final
                and not self.released_unreverted
            )
            return FaultStatus.HELD if in_flight else FaultStatus.UNREVERTED
        return FaultStatus.PLANNED


class FaultTable:
    """Every lease of the run, in the order it first appeared."""

    def __init__(self) -> None:
        self.records: dict[str, FaultRecord] = {}
        self._open: dict[str, set[str]] = {}  # holder -> its leases not yet released
        #: when not None, every lease a message touched, in order (a live judgement re-reads
        #: only these: :class:`osha.analysis.LiveJudge`); the caller empties it
        self.touched: dict[str, None] | None = None

    def _get(self, lease_id: str) -> FaultRecord:
        if self.touched is not None:
            self.touched[lease_id] = None
        rec = self.records.get(lease_id)
        if rec is None:
            rec = self.records[lease_id] = FaultRecord(lease_id)
        return rec

    def feed(self, msg: Message, t: float, offset: float) -> None:
        """One fault message (or a holder's ``actor.crashed``) at run time ``t``; ``offset``
        turns a wall time into run time."""
        if isinstance(msg, FaultLease):
            self._lease(msg, t, offset)
        elif isinstance(msg, ActorCrashed):
            for lease_id in self._open.pop(msg.actor_id, set()):
                rec = self._get(lease_id)
                if rec.injected_s is None and not rec.inject_error:
                    rec.holder_lost_s = t
        elif isinstance(msg, FaultInjected | FaultInjectFailed):
            self._inject(msg, t, offset)
        elif isinstance(msg, FaultRefused):
            rec = self._get(msg.lease_id)
            rec.holder, rec.action = msg.holder, msg.action
            rec.node, rec.resource = msg.node, msg.resource
            rec.refused = msg.reason or "refused"
        elif isinstance(msg, FaultRevertAttempted | FaultReverted | FaultRevertFailed):
            self._revert(msg, t)
        elif isinstance(msg, FaultReleased):
            rec = self._get(msg.lease_id)
            rec.released = True
            rec.released_unreverted = not msg.reverted
            rec.holder = rec.holder or msg.holder
            self._open.get(rec.holder, set()).discard(msg.lease_id)

    def _lease(self, msg: FaultLease, t: float, offset: float) -> None:
        lease = msg.lease
        rec = self._get(lease.lease_id)
        rec.holder, rec.plugin, rec.action = lease.holder, lease.plugin, lease.action
        rec.node, rec.resource = lease.node, lease.resource
        rec.planned_s = lease.planned_wall_s + offset
        rec.granted_s = t
        rec.revert_by_wall_s = lease.revert_by_wall_s
        rec.guard_note = msg.guard_note
        self._open.setdefault(lease.holder, set()).add(lease.lease_id)

    def _inject(self, msg: FaultInjected | FaultInjectFailed, t: float, offset: float) -> None:
        rec = self._get(msg.lease_id)
        rec.action = rec.action or msg.action
        rec.node = rec.node or msg.node
        rec.resource = rec.resource or msg.resource
        if isinstance(msg, FaultInjectFailed):
            rec.inject_error = msg.error
            return
        rec.injected_s = min(msg.actual_wall_s + offset, t)
        if rec.planned_s is None:
            rec.planned_s = msg.planned_wall_s + offset

    def _revert(
        self, msg: FaultRevertAttempted | FaultReverted | FaultRevertFailed, t: float
    ) -> None:
        rec = self._get(msg.lease_id)
        if isinstance(msg, FaultRevertAttempted):
            rec.revert_attempts += 1
            if msg.by != "holder" and rec.takeover_s is None:
                rec.takeover_s = t
            return
        if isinstance(msg, FaultReverted) and rec.reverted_s is None:
            rec.reverted_s = t
            rec.revert_began_s = t - max(msg.elapsed_s, 0.0)
            rec.reverted_by = msg.by
        elif isinstance(msg, FaultRevertFailed):
            rec.revert_error = msg.error
            rec.revert_final = rec.revert_final or msg.final
        rec.revert_attempts = max(rec.revert_attempts, msg.attempt)

    def injected(self) -> list[FaultRecord]:
        """The faults that were injected, in inject order."""
        done = [r for r in self.records.values() if r.injected_s is not None]
        done.sort(key=lambda r: (r.injected_s, r.lease_id))
        return done
