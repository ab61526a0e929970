"""The fault lease: what, where, when, how to revert, and by when."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from osha.messages import FaultLease, FaultRequest

__all__ = ["Lease", "Revertible"]


@dataclass(frozen=True, slots=True)
class Lease:
    """One fault's lease, as the ledger's ``fault.lease`` holds it.

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

    @classmethod
    def of(cls, msg: FaultLease | FaultRequest) -> Lease:
        """The lease a ``fault.lease`` record or a ``fault.request`` describes."""
        return cls(**{f.name: getattr(msg, f.name) for f in dataclasses.fields(cls)})

    def fields(self) -> dict[str, Any]:
        """The lease's fields, to build a ``fault.lease`` or ``fault.request`` from."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def what(self) -> str:
        """A short human description: ``stop nova-scheduler@ctl-1``."""
        where = f"{self.resource}@{self.node}" if self.resource else self.node
        return f"{self.action} {where}"


class Revertible(Protocol):
    """What core calls on a disruptor plugin's *class* to undo a lease: the supervisor process
    after the disruptor crashed, or ``osha faults recover`` after osha died.
    :class:`osha.faults.disruptor.FaultDisruptor` provides it as a classmethod.

    ``revert_lease`` is idempotent (reverting a fault that is not in place is a no-op) and
    uses only its arguments: it opens its own connections. It returns a one-line detail, or
    raises (any exception is a failed attempt, retried until the lease's deadline).
    """

    def revert_lease(self, config: Any, lease: Lease) -> str: ...
