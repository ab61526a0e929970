"""The blast-radius guard: ``[guard] max_down = { controller = 1 }``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from osha.faults._lease import Lease

__all__ = ["Guard", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a lease is refused: the ``limit`` key, and the leases already counted against it."""

    limit: str
    reason: str
    active: tuple[str, ...]


class Guard:
    """Counts *all* active leases, of every disruptor, against ``max_down``.

    A key of ``max_down`` is a group (``controller``: at most N of its nodes disrupted in any
    way, node or service or container) or a service or container name (``nova-scheduler``:
    at most N of its instances disrupted). A node counts once however many faults it has.
    """

    def __init__(self, max_down: Mapping[str, int]) -> None:
        bad = {k: v for k, v in max_down.items() if v < 0}
        if bad:
            raise ValueError(f"max_down values must be >= 0: {bad}")
        self.max_down = dict(max_down)

    def check(self, active: Iterable[Lease], new: Lease) -> Refusal | None:
        """None if ``new`` may be granted alongside ``active``; else the refusal."""
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
        return None


def _counts(key: str, lease: Lease) -> bool:
    return key in lease.groups or key in (lease.resource, lease.node)
