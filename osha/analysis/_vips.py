"""VIP moves (``monitor.vip_moved``): which node held a virtual IP before and after, and when.

A move is its own record (the ``vip`` monitor writes it): the report lists each with the time
the old holder was last seen with the address and the time the new one was first seen, in run
seconds; the failover took at most the difference.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from osha.messages import VipMoved

__all__ = ["VipMove", "VipMoveLog"]

#: a soak may move its VIPs for days: the latest moves are kept (all are counted)
_KEEP = 10_000


@dataclass(frozen=True, slots=True)
class VipMove:
    """One move of ``address`` (``target``, e.g. ``vip:internal``) from ``from_node`` to
    ``to_node``: last seen on the old holder at ``last_seen_s``, first on the new one at
    ``first_seen_s`` (run seconds; the monitor polls, so the move happened in between)."""

    target: str
    address: str
    from_node: str
    to_node: str
    last_seen_s: float
    first_seen_s: float
    monitor: str

    @property
    def within_s(self) -> float:
        """The move took at most this long (the two observations' distance)."""
        return self.first_seen_s - self.last_seen_s


class VipMoveLog:
    """The ledger pass's collector of ``monitor.vip_moved`` records."""

    TAG = VipMoved.TAG

    def __init__(self) -> None:
        self.moves: deque[VipMove] = deque(maxlen=_KEEP)
        self.count = 0

    def feed(self, msg: VipMoved, t: float) -> None:
        """One record at run time ``t``; its own times are on the sender's monotonic clock,
        the envelope's, so run time is theirs minus the envelope's offset ``mono_s - t``."""
        t0 = msg.mono_s - t
        self.count += 1
        self.moves.append(
            VipMove(
                target=msg.target,
                address=msg.address,
                from_node=msg.from_node,
                to_node=msg.to_node,
                last_seen_s=msg.last_seen_mono_s - t0,
                first_seen_s=msg.first_seen_mono_s - t0,
                monitor=msg.sender,
            )
        )
