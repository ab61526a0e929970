"""Messages about faults: the plan, durable leases, injection, revert and release.

The life of one fault, in ledger order::

    fault.planned          the disruptor's timeline, one record per planned fault
    fault.lease            the broker granted a lease (fsynced before the grant is sent)
      or fault.refused     the guard refused it (max_down, quorum), or it was attempted before
    fault.injected         the disruptor injected it (planned and actual wall times)
      or fault.inject_failed  the injection failed; it is never retried
    fault.revert_attempted one per attempt (by the holder, the broker, or `osha faults recover`)
    fault.reverted         the target is back as it was
      or fault.revert_failed  with the reason; retried with backoff until the lease's deadline
    fault.released         the broker forgets the lease (it no longer counts for the guard)

A fault that never heals by itself (``process stop``, ``process freeze``) also has a dead-man
switch on its node (:mod:`osha.faults.deadman`), recorded with three more tags (old ledgers
have none; a reader that does not know them skips them)::

    fault.deadman_armed         before the inject: the node reverts by itself at the deadline
    fault.deadman_renew_failed  a heartbeat failed (``ended``: the node refused it, the hold ends)
    fault.deadman_collected     after a revert: what the node did (disarmed, or reverted itself)

A lease is *unrevoked* while the ledger has a ``fault.lease`` and no ``fault.reverted`` for its
``lease_id``: ``osha faults recover RUN_DIR`` reverts exactly those.

``fault.sync``/``fault.synced``, ``fault.request``/``fault.grant`` and
``fault.release``/``fault.ack`` are control frames (request and reply) between a disruptor and
the broker, not records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from osha.messages._base import Message, message

__all__ = [
    "FAULT_RECORDS",
    "FaultAck",
    "FaultDeadmanArmed",
    "FaultDeadmanCollected",
    "FaultDeadmanRenewFailed",
    "FaultGrant",
    "FaultInjectFailed",
    "FaultInjected",
    "FaultLease",
    "FaultPlanned",
    "FaultRefused",
    "FaultRelease",
    "FaultReleased",
    "FaultRequest",
    "FaultRevertAttempted",
    "FaultRevertFailed",
    "FaultReverted",
    "FaultSync",
    "FaultSynced",
    "Lease",
    "RevertBy",
]

RevertBy = Literal["holder", "broker", "recover"]
"""Who reverted: the disruptor that holds the lease, the broker in the supervisor process (the
holder crashed, or the run is ending), or ``osha faults recover`` (osha itself died)."""


# -- records ------------------------------------------------------------------------------------


@message("fault.planned")
@dataclass(frozen=True, slots=True)
class FaultPlanned(Message):
    """One planned fault of a disruptor's timeline. ``planned_offset_s`` counts from the chaos
    start (``chaos_start_wall_s``)."""

    index: int
    round: int
    action: str
    node: str
    resource: str
    planned_offset_s: float
    down_s: float
    chaos_start_wall_s: float


@dataclass(frozen=True, slots=True)
class Lease:
    """One fault's lease: what (``action`` on ``resource``), where (``node`` at ``address``, in
    ``groups``), when (``planned_wall_s``, held ``down_s``), how to revert (``plugin`` and
    ``revert``) and the deadline (``revert_by_wall_s``: reverts are retried until then).

    A record nested in ``fault.lease`` and ``fault.request``, declared once here: the codec
    sends its fields inline, in this order, where the message has it.

    ``revert`` is plain data the plugin needs to undo the fault (e.g. a container's state
    before it), never a secret: credentials come from the plugin's config.
    """

    lease_id: str
    holder: str
    plugin: str
    index: int
    action: str
    node: str
    address: str
    resource: str
    groups: tuple[str, ...]
    down_s: float
    planned_wall_s: float
    revert_by_wall_s: float
    revert: dict[str, Any]

    @property
    def what(self) -> str:
        """A short human description: ``stop nova-scheduler@ctl-1``."""
        where = f"{self.resource}@{self.node}" if self.resource else self.node
        return f"{self.action} {where}"


@message("fault.lease")
@dataclass(frozen=True, slots=True)
class FaultLease(Message):
    """A granted, durable lease (:class:`Lease`), fsynced before the grant is sent.
    ``guard_note``: what the grant overrode (the holder's ``allow_quorum_loss``), with the
    quorum guard's arithmetic; "" when nothing was."""

    lease: Lease
    guard_note: str = ""


@message("fault.refused")
@dataclass(frozen=True, slots=True)
class FaultRefused(Message):
    """The broker refused a lease: the guard (``limit`` names the max_down key, or
    ``quorum.<cluster>`` with the arithmetic in ``reason``) or a fault that an earlier
    incarnation of the holder already attempted (never retried)."""

    lease_id: str
    holder: str
    index: int
    action: str
    node: str
    resource: str
    reason: str
    limit: str = ""
    active: tuple[str, ...] = ()


@message("fault.injected")
@dataclass(frozen=True, slots=True)
class FaultInjected(Message):
    """The fault is in place. ``planned_wall_s`` was the plan; ``actual_wall_s`` is when the
    injection started."""

    lease_id: str
    index: int
    action: str
    node: str
    resource: str
    planned_wall_s: float
    actual_wall_s: float
    detail: str = ""


@message("fault.inject_failed")
@dataclass(frozen=True, slots=True)
class FaultInjectFailed(Message):
    """The injection failed. A fault is never retried automatically; the lease is still
    reverted (the injection may have half-happened)."""

    lease_id: str
    index: int
    action: str
    node: str
    resource: str
    error: str


@message("fault.revert_attempted")
@dataclass(frozen=True, slots=True)
class FaultRevertAttempted(Message):
    """A revert attempt starts (``attempt`` counts from 1)."""

    lease_id: str
    attempt: int
    by: RevertBy


@message("fault.reverted")
@dataclass(frozen=True, slots=True)
class FaultReverted(Message):
    """The target is back as it was before the fault."""

    lease_id: str
    attempt: int
    by: RevertBy
    detail: str
    elapsed_s: float


@message("fault.revert_failed")
@dataclass(frozen=True, slots=True)
class FaultRevertFailed(Message):
    """A revert attempt failed. ``final``: no more attempts (the deadline passed); the fault
    is still in place and needs an operator (or ``osha faults recover``)."""

    lease_id: str
    attempt: int
    by: RevertBy
    error: str
    final: bool
    retry_in_s: float = 0.0


@message("fault.released")
@dataclass(frozen=True, slots=True)
class FaultReleased(Message):
    """The broker no longer counts this lease. ``reverted`` False: released unreverted (only at
    the very end of a run, after the last revert failed; recover will try again)."""

    lease_id: str
    holder: str
    reverted: bool
    by: RevertBy


@message("fault.deadman_armed")
@dataclass(frozen=True, slots=True)
class FaultDeadmanArmed(Message):
    """The lease's dead-man switch runs on ``node`` (watchdog ``pid``, detached by
    ``detach``) under ``key``: it reverts the fault by itself ``ttl_s`` after this, on the
    node's clock, unless the holder renews it. Written before the inject."""

    lease_id: str
    node: str
    key: str
    pid: int
    detach: str
    ttl_s: float


@message("fault.deadman_renew_failed")
@dataclass(frozen=True, slots=True)
class FaultDeadmanRenewFailed(Message):
    """A heartbeat of the holder did not renew the switch. ``ended``: the node refused it (the
    switch already fired, or is gone), so the hold ended early; else the transport failed and
    the next heartbeat tries again (the node reverts at its deadline if none lands)."""

    lease_id: str
    node: str
    error: str
    ended: bool


@message("fault.deadman_collected")
@dataclass(frozen=True, slots=True)
class FaultDeadmanCollected(Message):
    """After a revert, ``by`` disarmed the switch and recorded what the node did: ``state``
    ``absent`` (disarmed before its deadline, or nothing left), ``reverted`` (the node ran the
    revert itself, exit ``revert_status``), ``dead`` (its watchdog was killed), ``reverting``,
    or ``error`` (the node could not be asked: ``error`` says why). ``log_tail``: the node's
    log of the switch."""

    lease_id: str
    node: str
    by: RevertBy
    state: str
    revert_status: int | None = None
    log_tail: str = ""
    error: str = ""


FAULT_RECORDS: tuple[type[Message], ...] = (
    FaultLease,
    FaultRefused,
    FaultInjected,
    FaultInjectFailed,
    FaultRevertAttempted,
    FaultReverted,
    FaultRevertFailed,
    FaultReleased,
)
"""The records of a fault's life after its plan (lease to release), in the order above."""


# -- control frames between a disruptor and the broker ------------------------------------------


@message("fault.sync")
@dataclass(frozen=True, slots=True)
class FaultSync(Message):
    """Disruptor → broker, at start: when did chaos start, and which of my faults are done?"""

    request_id: str
    holder: str


@message("fault.synced")
@dataclass(frozen=True, slots=True)
class FaultSynced(Message):
    """Broker → disruptor: the run's chaos start and the fault indices this holder (any
    incarnation) already asked a lease for: those are never attempted again.

    A soak repeats the timeline: cycles ``first_cycle .. first_cycle + cycles - 1``, cycle
    ``k``'s window at ``chaos_start_wall_s + (k - first_cycle) * cycle_s`` (see
    :class:`osha.schedule.ChaosClock`). A single run is one cycle."""

    request_id: str
    chaos_start_wall_s: float
    done: tuple[int, ...]
    cycle_s: float = 0.0
    first_cycle: int = 0
    cycles: int = 1


@message("fault.request")
@dataclass(frozen=True, slots=True)
class FaultRequest(Message):
    """Disruptor → broker: please grant this ``lease``. ``wait_s``: how long the disruptor
    waits for the grant (0: not said); a request the broker holds back longer (the soak's
    chaos clock is held) is refused, never granted late to a holder that gave up on it.
    ``allow_quorum_loss``: the quorum guard lets it through (the grant's lease says so)."""

    request_id: str
    lease: Lease
    wait_s: float = 0.0
    allow_quorum_loss: bool = False


@message("fault.grant")
@dataclass(frozen=True, slots=True)
class FaultGrant(Message):
    """Broker → disruptor: the lease is durable (``granted``) or refused (``reason``)."""

    request_id: str
    lease_id: str
    granted: bool
    reason: str = ""


@message("fault.release")
@dataclass(frozen=True, slots=True)
class FaultRelease(Message):
    """Disruptor → broker: this lease is reverted (or the holder gave up reverting it)."""

    request_id: str
    lease_id: str
    reverted: bool


@message("fault.ack")
@dataclass(frozen=True, slots=True)
class FaultAck(Message):
    """Broker → disruptor: the release was handled."""

    request_id: str
    lease_id: str
