"""Fault leases: one mutable record per ``lease_id``, filled as the lifecycle messages pass.

See :mod:`osha.messages.fault` for the lifecycle. Times are run times (seconds). The actual
inject time comes from ``fault.injected.actual_wall_s`` (when the injection *started*), moved
to the monotonic clock with that message's own envelope offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from osha.messages import (
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

    @property
    def status(self) -> str:
        if self.refused:
            return "refused"
        if self.reverted_s is not None:
            return "reverted"
        if self.injected_s is not None or self.inject_error or self.revert_attempts:
            return "unreverted"
        return "planned"


class FaultTable:
    """Every lease of the run, in the order it first appeared."""

    def __init__(self) -> None:
        self.records: dict[str, FaultRecord] = {}

    def _get(self, lease_id: str) -> FaultRecord:
        rec = self.records.get(lease_id)
        if rec is None:
            rec = self.records[lease_id] = FaultRecord(lease_id)
        return rec

    def feed(self, msg: Message, t: float, offset: float) -> None:
        """One fault message at run time ``t``; ``offset`` turns a wall time into run time."""
        if isinstance(msg, FaultLease):
            rec = self._get(msg.lease_id)
            rec.holder, rec.plugin, rec.action = msg.holder, msg.plugin, msg.action
            rec.node, rec.resource = msg.node, msg.resource
            rec.planned_s = msg.planned_wall_s + offset
        elif isinstance(msg, FaultInjected):
            rec = self._get(msg.lease_id)
            rec.action = rec.action or msg.action
            rec.node = rec.node or msg.node
            rec.resource = rec.resource or msg.resource
            rec.injected_s = min(msg.actual_wall_s + offset, t)
            if rec.planned_s is None:
                rec.planned_s = msg.planned_wall_s + offset
        elif isinstance(msg, FaultInjectFailed):
            rec = self._get(msg.lease_id)
            rec.action = rec.action or msg.action
            rec.node = rec.node or msg.node
            rec.resource = rec.resource or msg.resource
            rec.inject_error = msg.error
        elif isinstance(msg, FaultRefused):
            rec = self._get(msg.lease_id)
            rec.holder, rec.action = msg.holder, msg.action
            rec.node, rec.resource = msg.node, msg.resource
            rec.refused = msg.reason or "refused"
        elif isinstance(msg, FaultRevertAttempted):
            self._get(msg.lease_id).revert_attempts += 1
        elif isinstance(msg, FaultReverted):
            rec = self._get(msg.lease_id)
            if rec.reverted_s is None:
                rec.reverted_s = t
                rec.revert_began_s = t - max(msg.elapsed_s, 0.0)
                rec.reverted_by = msg.by
            rec.revert_attempts = max(rec.revert_attempts, msg.attempt)
        elif isinstance(msg, FaultRevertFailed):
            rec = self._get(msg.lease_id)
            rec.revert_error = msg.error
            rec.revert_final = rec.revert_final or msg.final
            rec.revert_attempts = max(rec.revert_attempts, msg.attempt)
        elif isinstance(msg, FaultReleased):
            rec = self._get(msg.lease_id)
            rec.released = True
            rec.holder = rec.holder or msg.holder

    def injected(self) -> list[FaultRecord]:
        """The faults that were injected, in inject order."""
        done = [r for r in self.records.values() if r.injected_s is not None]
        done.sort(key=lambda r: (r.injected_s, r.lease_id))
        return done
