"""The fault lease (:class:`~osha.messages.fault.Lease`, declared with the messages that carry
it) and what a disruptor plugin provides to revert one."""

from __future__ import annotations

from typing import Any, Protocol

from osha.messages.fault import Lease

__all__ = ["Lease", "Revertible"]


class Revertible(Protocol):
    """What core calls on a disruptor plugin's *class* to undo a lease: the supervisor process
    after the disruptor crashed, or ``osha faults recover`` after osha died.
    :class:`osha.faults.disruptor.FaultDisruptor` provides it as a classmethod.

    ``revert_lease`` is idempotent (reverting a fault that is not in place is a no-op) and
    uses only its arguments: it opens its own connections. It returns a one-line detail, or
    raises (any exception is a failed attempt, retried until the lease's deadline).
    """

    def revert_lease(self, config: Any, lease: Lease) -> str: ...
