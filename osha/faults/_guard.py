"""The blast-radius guard: ``[guard] max_down = { controller = 1 }``, and the quorum guard
(``[guard] quorum``, :mod:`osha.faults._quorum`) behind it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from osha.faults._lease import Lease
from osha.faults._quorum import QuorumGuard
from osha.messages.monitor import StateChange
from osha.profile import QuorumRule

__all__ = ["Guard", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a lease is refused: the ``limit`` key, and the leases already counted against it.
    ``overridden``: the quorum guard would refuse it, but its holder allows quorum loss: it
    is granted, and ``reason`` goes into the lease's record."""

    limit: str
    reason: str
    active: tuple[str, ...]
    overridden: bool = False


class Guard:
    """Counts *all* active leases, of every disruptor, against ``max_down``.

    A key of ``max_down`` is a group (``controller``: at most N of its nodes disrupted in any
    way, node or service or container) or a service or container name (``nova-scheduler``:
    at most N of its instances disrupted). A node counts once however many faults it has.
    """

    def __init__(
        self, max_down: Mapping[str, int], quorum: Mapping[str, QuorumRule] | None = None
    ) -> None:
        bad = {k: v for k, v in max_down.items() if v < 0}
        if bad:
            raise ValueError(f"max_down values must be >= 0: {bad}")
        self.max_down = dict(max_down)
        self.quorum = QuorumGuard(quorum or {})

    def observe(self, msg: StateChange) -> None:
        """A monitor's state change: the quorum guard's picture of its clusters."""
        self.quorum.states.observe(msg)

    def check(
        self, active: Iterable[Lease], new: Lease, *, allow_quorum_loss: bool = False
    ) -> Refusal | None:
        """None if ``new`` may be granted alongside ``active``; else the refusal (which an
        ``allow_quorum_loss`` holder overrides for a quorum rule)."""
        current = list(active)
        for key, limit in sorted(self.max_down.items()):
            if not _counts(key, new):
                continue
            hit = [lease for lease in current if _counts(key, lease)]
            nodes = {lease.node for lease in hit} | {new.node}
            if len(nodes) > limit:
                return Refusal(
                    limit=key,
                    reason=(
                        f"max_down {key} = {limit}: {new.what} would make {len(nodes)} "
                        f"disrupted ({', '.join(sorted(nodes))})"
                    ),
                    active=tuple(f"{lease.lease_id} {lease.what}" for lease in hit),
                )
        if not self.quorum.rules:
            return None
        q = self.quorum.check(current, new, allow_loss=allow_quorum_loss)
        if not q.limit:
            return None
        return Refusal(q.limit, q.refusal or q.note, q.active, overridden=not q.refusal)


def _counts(key: str, lease: Lease) -> bool:
    return key in lease.groups or key in (lease.resource, lease.node)
