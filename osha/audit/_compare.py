"""The comparison of an audit after the campaign with the one before it, and the attribution
of what is new to the fault whose window it appeared in. Pure functions over recorded
findings: the live verdict and ``osha report`` on the ledger agree by construction.

- An item found after the campaign that the audit before it also found (same audit, kind and
  resource id) is **pre-existing**: not blamed on the run, whatever its state now.
- An item found only after is **new**; if the audit before it did not complete (or did not
  run), the origin of everything it finds is **unknown**, judged as new (it cannot be shown
  to be older than the run).
- An item found only before is **healed** (reported, never a failure).
- A new item whose ``since_s`` (when the cloud says it entered its state) falls inside a
  fault's window, widened by ``grace_s`` after the revert, is **attributed** to that fault;
  of several, the one that started last. Without ``since_s`` it is not attributed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from osha.messages.audit import AuditFinding

__all__ = ["Compared", "FaultWindow", "Judged", "Origin", "attribute", "compare"]


class Origin(enum.StrEnum):
    """Whether an item found after the campaign was there before it."""

    NEW = "new"
    PRE_EXISTING = "pre-existing"
    UNKNOWN = "unknown"  # the audit before did not complete: judged as new


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """A fault's window, wall clock: from its inject to its revert (None: never reverted)."""

    label: str
    start_s: float
    end_s: float | None


@dataclass(frozen=True, slots=True)
class Judged:
    """An item found after the campaign: its origin, when an audit first saw it (wall
    clock), and the fault it is tied to (empty: none)."""

    finding: AuditFinding
    origin: Origin
    first_seen_s: float
    fault: str = ""

    @property
    def counts_as_new(self) -> bool:
        return self.origin is not Origin.PRE_EXISTING


@dataclass(frozen=True, slots=True)
class Compared:
    """One audit's items after the campaign, judged, and those it no longer finds."""

    after: tuple[Judged, ...]
    healed: tuple[AuditFinding, ...]

    @property
    def new(self) -> tuple[Judged, ...]:
        return tuple(j for j in self.after if j.counts_as_new)


def _key(f: AuditFinding) -> tuple[str, str, str]:
    return f.audit, f.item.kind, f.item.resource_id


def attribute(since_s: float | None, windows: Sequence[FaultWindow], grace_s: float) -> str:
    """The label of the fault window ``since_s`` falls in (widened by ``grace_s`` after its
    revert; an unreverted window is open), the latest-starting one of several; empty when
    none or when ``since_s`` is unknown."""
    if since_s is None:
        return ""
    hits = [
        w for w in windows
        if w.start_s <= since_s and (w.end_s is None or since_s <= w.end_s + grace_s)
    ]  # fmt: skip
    return max(hits, key=lambda w: w.start_s).label if hits else ""


def compare(
    before: Iterable[AuditFinding] | None,
    after: Iterable[AuditFinding],
    *,
    windows: Sequence[FaultWindow] = (),
    grace_s: float = 0.0,
) -> Compared:
    """Judge ``after`` against ``before`` (None: the audit before did not complete)."""
    seen_before = {_key(f): f for f in before} if before is not None else None
    judged: list[Judged] = []
    found_after: set[tuple[str, str, str]] = set()
    for f in after:
        key = _key(f)
        if key in found_after:
            continue  # a listing may repeat an item across pages: count it once
        found_after.add(key)
        if seen_before is None:
            origin, first_s = Origin.UNKNOWN, f.wall_s
        elif key in seen_before:
            origin, first_s = Origin.PRE_EXISTING, seen_before[key].wall_s
        else:
            origin, first_s = Origin.NEW, f.wall_s
        fault = "" if origin is Origin.PRE_EXISTING else attribute(f.item.since_s, windows, grace_s)
        judged.append(Judged(f, origin, first_s, fault))
    healed = tuple(
        f for key, f in (seen_before or {}).items() if key not in found_after
    )  # fmt: skip
    return Compared(tuple(judged), healed)
