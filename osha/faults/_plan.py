"""The planned fault timeline of a profile, checked against the guard: what ``osha faults
plan`` and ``osha campaign start --dry-run`` print, and what each soak cycle plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osha import profile
from osha.faults._guard import Guard
from osha.faults._lease import Lease
from osha.faults._plugins import fault_class
from osha.faults.disruptor import load_hosts
from osha.plugin import offline
from osha.schedule import child_seed

__all__ = ["PlanRow", "plan_rows"]


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One planned fault of a profile, with the guard's verdict for it."""

    offset_s: float
    disruptor: str
    index: int
    round: int
    action: str
    node: str
    resource: str
    down_s: float
    refused: str  # "" if the guard would let it through

    def render(self) -> str:
        what = f"{self.resource}@{self.node}" if self.resource else self.node
        line = (
            f"T+{self.offset_s:10.3f}s  {self.disruptor:<20} #{self.index:<3} "
            f"{self.action:<11} {what:<32} down {self.down_s:g}s"
        )
        return f"{line}  REFUSED: {self.refused}" if self.refused else line


def plan_rows(prof: profile.Profile, seed: int) -> list[PlanRow]:
    """Every planned fault of every disruptor of ``prof`` with campaign seed ``seed``, in time
    order, each checked against the guard as if the faults before it were held for their
    ``down_s``. Reads the inventory; touches no node."""
    rows: list[tuple[PlanRow, tuple[str, ...]]] = []
    for entry in prof.actors:
        if entry.kind != "disruptor":
            continue
        cls = fault_class(entry.plugin)
        if cls is None:
            continue  # a disruptor without a schedule plans nothing
        actor_seed = child_seed(seed, entry.id)
        plugin = offline(cls, entry.config, actor_id=entry.id, seed=actor_seed)
        hosts = load_hosts(entry.config)
        for p in cls.timeline(entry.config, actor_seed):
            row = PlanRow(
                p.offset_s, entry.id, p.index, p.round, plugin.action(), p.node,
                plugin.resource(), p.down_s, "",
            )  # fmt: skip
            # a role (``role:vip-holder``) is resolved when due: a node of the target group
            groups = (entry.config.target.group,) if p.node not in hosts else hosts[p.node].groups
            rows.append((row, groups))
    rows.sort(key=lambda r: (r[0].offset_s, r[0].disruptor, r[0].index))
    guard = Guard(prof.guard.max_down)
    held: list[tuple[float, Lease]] = []
    out: list[PlanRow] = []
    for row, groups in rows:
        held = [(end, lease) for end, lease in held if end > row.offset_s]
        lease = Lease(
            f"{row.disruptor}/{row.index}", row.disruptor, "", row.index, row.action, row.node,
            "", row.resource, groups, row.down_s, row.offset_s, 0.0, {},
        )  # fmt: skip
        refusal = guard.check([lease for _, lease in held], lease)
        if refusal is None:
            held.append((row.offset_s + row.down_s, lease))
            out.append(row)
        else:
            out.append(PlanRow(**{**_fields(row), "refused": refusal.reason}))
    return out


def _fields(row: PlanRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in PlanRow.__dataclass_fields__}
