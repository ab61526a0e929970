"""The holder's side of the dead-man switch (:mod:`osha.faults.deadman`): arm before the
inject, renew while holding, collect after the revert.

For the faults that never heal by themselves (a plugin says which with
:meth:`~osha.faults.disruptor.FaultDisruptor.switch_command`). The cadence:

- **arm** before the inject with ``ttl = revert_by - now``: the node reverts by the lease's
  deadline (``revert_by_wall_s``, recorded in the lease) if nobody renews it;
- **renew** every ``min(ttl / 3, 10 s)`` while the fault is held, each time to three cadences
  from now, never past ``revert_by``: two missed heartbeats still leave one cadence before the
  node reverts; if osha is ``kill -9``-ed, the node reverts within three cadences;
- **collect** after every successful revert (holder, broker or ``osha faults recover``):
  disarm, and record what the node did (``fault.deadman_collected``).

The switch's key on the node is unique per run (``<lease_id>/<random>``, in the lease's
``revert`` data), since lease ids repeat across runs and a switch that fired and was not
collected refuses a re-arm on purpose.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from osha.faults._lease import Lease
from osha.faults.deadman import DeadmanError, Runner, State, Status, Watchdog, expiry_bound_s
from osha.faults.deadman import arm as arm_watchdog
from osha.messages import (
    FaultDeadmanArmed,
    FaultDeadmanCollected,
    FaultDeadmanRenewFailed,
    Message,
)
from osha.messages.fault import RevertBy

__all__ = [
    "CUT_OFF",
    "KEY",
    "MAX_EVERY_S",
    "Collector",
    "Renewable",
    "arm",
    "collect",
    "disarm",
    "hold_renewing",
    "new_key",
    "renew_every_s",
]

log = logging.getLogger("osha.faults")

M = TypeVar("M", bound=Message)

KEY = "deadman"  # the switch's key on the node, in ``lease.revert``
#: in ``lease.revert``, true when the fault cuts osha off from the node (a link down on osha's
#: own path): no renew can land, so the hold renews nothing and the node reverts at revert_by
CUT_OFF = "cuts_osha_off"
MAX_EVERY_S = 10.0  # the longest heartbeat: a kill -9 leaves the fault at most 3 of these
_MIN_TTL_S = 1.0  # a renew closer to revert_by than this is skipped: the node reverts then
_MAX_TTL_S = 86_400.0  # the switch's limit; a longer hold is renewed long before it
_REVERTING_POLL_S = 1.0  # a remote poll while the node's own revert runs


class Emit(Protocol):
    def __call__(self, cls: type[M], /, **fields: Any) -> M: ...


class Renewable(Protocol):
    """What the heartbeat needs of a :class:`~osha.faults.deadman.Watchdog`."""

    @property
    def armed(self) -> Status | None: ...

    def renew(self, ttl_s: float) -> Status: ...


Collector = Callable[[Lease], Status | None]
"""Disarms a lease's switch after its revert and says what the node did (None: no switch)."""


def new_key(lease_id: str) -> str:
    """A key for ``lease_id``'s switch, unique per run."""
    return f"{lease_id}/{secrets.token_hex(6)}"


def renew_every_s(first_ttl_s: float) -> float:
    """The heartbeat: a third of the ttl armed first (``down_s`` plus the revert window), at
    most :data:`MAX_EVERY_S`, at least 1 s."""
    return max(_MIN_TTL_S, min(MAX_EVERY_S, first_ttl_s / 3))


def arm(run: Runner, lease: Lease, command: str, emit: Emit, *, state_dir: str) -> Watchdog:
    """Arm the switch of ``lease`` (key in ``lease.revert``) to run ``command`` at the lease's
    ``revert_by``; recorded (``fault.deadman_armed``). Raises :class:`DeadmanError`."""
    key = str(lease.revert[KEY])
    ttl_s = min(_MAX_TTL_S, max(_MIN_TTL_S, lease.revert_by_wall_s - time.time()))
    watchdog = arm_watchdog(run, key, command, ttl_s, state_dir=state_dir)
    emit(FaultDeadmanArmed, lease_id=lease.lease_id, node=lease.node, key=key,
         pid=watchdog.pid or 0, detach=watchdog.armed.detach if watchdog.armed else "",
         ttl_s=ttl_s)  # fmt: skip
    return watchdog


def hold_renewing(
    watchdog: Renewable, lease: Lease, wait: Callable[[float], bool], emit: Emit
) -> None:
    """Hold the fault for ``down_s`` (or until ``wait`` says the actor stops), renewing the
    switch every :func:`renew_every_s` (none for a fault that cuts osha off: :data:`CUT_OFF`).
    A renew the node refuses (it reverted by itself, or the switch is gone) is recorded and
    ends the hold; a transport failure is recorded and the next heartbeat tries again."""
    if lease.revert.get(CUT_OFF):  # each renew would only wait for its SSH timeout
        log.info("%s cuts osha off from %s: no renews; the node reverts it at revert_by",
                 lease.what, lease.node)  # fmt: skip
        wait(lease.down_s)
        return
    armed = watchdog.armed.remaining_s if watchdog.armed else None
    every_s = renew_every_s(armed if armed is not None else lease.down_s)
    end_s = time.monotonic() + lease.down_s
    while True:  # bounded: down_s, and each pass waits every_s (>= 1 s) or returns
        left_s = end_s - time.monotonic()
        if left_s <= 0 or wait(min(every_s, left_s)) or end_s <= time.monotonic():
            return
        ttl_s = min(3 * every_s, lease.revert_by_wall_s - time.time())
        if ttl_s < _MIN_TTL_S:
            continue  # revert_by is near: the node reverts then, as armed
        try:
            watchdog.renew(ttl_s)
        except DeadmanError as exc:
            emit(FaultDeadmanRenewFailed, lease_id=lease.lease_id, node=lease.node,
                 error=_text(exc), ended=True)  # fmt: skip
            log.warning("%s: the node refused the dead-man renew; the hold ends: %s",
                        lease.what, exc.message)  # fmt: skip
            return
        except Exception as exc:  # noqa: BLE001 - the transport: recorded, renewed next beat
            emit(FaultDeadmanRenewFailed, lease_id=lease.lease_id, node=lease.node,
                 error=_text(exc), ended=False)  # fmt: skip


def disarm(run: Runner, key: str, *, state_dir: str) -> Status:
    """Disarm ``key``'s switch on the node; if its own revert runs now, wait for its end
    (at most the time a revert may take: :func:`expiry_bound_s` of the node's poll)."""
    watchdog = Watchdog.attach(run, key, state_dir=state_dir)
    until_s = time.monotonic() + expiry_bound_s(60.0)
    status = watchdog.disarm()
    while status.state is State.REVERTING and time.monotonic() < until_s:  # bounded by until_s
        time.sleep(_REVERTING_POLL_S)  # a remote poll interval, not a test synchronisation
        status = watchdog.disarm()
    return status


def collect(lease: Lease, collector: Collector, emit: Emit, by: RevertBy) -> None:
    """After a successful revert of ``lease``: disarm its switch, if any, and record what the
    node did. Never raises: a node that cannot be asked is recorded (``state = "error"``)."""
    if KEY not in lease.revert:
        return
    try:
        status = collector(lease)
    except Exception as exc:  # noqa: BLE001 - recorded; the fault itself is reverted already
        log.error("%s: could not collect its dead-man switch: %s", lease.what, exc)
        emit(FaultDeadmanCollected, lease_id=lease.lease_id, node=lease.node, by=by,
             state="error", error=_text(exc))  # fmt: skip
        return
    if status is None:
        return
    if status.state is State.REVERTED:
        log.warning("%s: the node had reverted it by itself at its deadline (exit %s)",
                    lease.what, status.revert_status)  # fmt: skip
    emit(FaultDeadmanCollected, lease_id=lease.lease_id, node=lease.node, by=by,
         state=status.state.value, revert_status=status.revert_status,
         log_tail=status.log[-2000:])  # fmt: skip


def _text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:2000]
