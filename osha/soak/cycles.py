"""Per-cycle metrics of a soak, replayed from its ledger in one pass (bounded: one row per
cycle, one open outage per target).

A cycle is the stretch between ``soak.cycle`` start and end records. For each cycle:

- faults injected, reverted and failed to revert (``fault.*``);
- actor crashes (``actor.crashed``), of them self-chaos kills (``osha.self_chaos``);
- targets that went down (``monitor.state``) and the summed downtime;
- ``recovery_s`` (the cycle's time to recover, MTTR in the OpenStack reliability-testing
  sense): from the cycle's last fault revert until every target that went down in the cycle
  is up again; ``None`` if a target was still down at the cycle's end;
- osha's own main-process RSS at the cycle's end (the last ``osha.resources`` of ``main``).

:func:`trend` fits a least-squares slope per cycle, so the report can say whether MTTR grows or
availability drifts over hundreds of cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from osha.ledger import LedgerReader
from osha.messages import (
    ActorCrashed,
    FaultInjected,
    FaultReverted,
    FaultRevertFailed,
    Resources,
    SelfChaosKill,
    SoakCycle,
    StateChange,
)
from osha.wire import decode, peek_tag

__all__ = ["CycleRow", "cycle_rows", "trend"]

_TAGS = frozenset(
    {
        SoakCycle.TAG,
        FaultInjected.TAG,
        FaultReverted.TAG,
        FaultRevertFailed.TAG,
        ActorCrashed.TAG,
        SelfChaosKill.TAG,
        StateChange.TAG,
        Resources.TAG,
    }
)
_BAD = frozenset({"down", "unreachable"})


@dataclass(slots=True)
class CycleRow:
    cycle: int
    start_wall_s: float
    end_wall_s: float | None = None
    ok: bool = True
    injected: int = 0
    reverted: int = 0
    revert_failed: int = 0
    crashes: int = 0
    self_chaos_kills: int = 0
    targets_down: int = 0
    downtime_s: float = 0.0
    recovery_s: float | None = None
    osha_rss_bytes: int | None = None
    _last_revert_wall_s: float | None = None
    _down_since: dict[str, float] = field(default_factory=dict)
    _last_up_wall_s: float | None = None


def cycle_rows(run_dir: Path) -> list[CycleRow]:
    """Every soak cycle of a ledger, in order (empty for a ledger that is not a soak)."""
    rows: list[CycleRow] = []
    current: CycleRow | None = None
    down_since: dict[str, float] = {}  # across cycles: an outage may span a cycle boundary
    for payload in LedgerReader(run_dir).payloads():
        if peek_tag(payload) not in _TAGS:
            continue
        msg = decode(payload)
        if isinstance(msg, SoakCycle):
            if msg.phase == "start":
                current = CycleRow(msg.cycle, msg.wall_s)
                rows.append(current)
            elif current is not None and msg.cycle == current.cycle:
                _close(current, msg, down_since)
                current = None
        elif current is not None:
            _count(current, msg, down_since)
        elif isinstance(msg, StateChange):
            _track(down_since, msg)
    return rows


def trend(values: list[float]) -> float | None:
    """The least-squares slope of ``values`` per step (None with fewer than two)."""
    n = len(values)
    if n < 2:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def _track(down_since: dict[str, float], msg: StateChange) -> tuple[str, float] | None:
    """Update open outages; returns (target, downtime) when one closes."""
    key = f"{msg.sender}/{msg.target}"
    if msg.state in _BAD and key not in down_since:
        down_since[key] = msg.wall_s
    elif msg.state == "up" and key in down_since:
        return key, msg.wall_s - down_since.pop(key)
    return None


def _count(row: CycleRow, msg: object, down_since: dict[str, float]) -> None:
    if isinstance(msg, FaultInjected):
        row.injected += 1
    elif isinstance(msg, FaultReverted):
        row.reverted += 1
        row._last_revert_wall_s = msg.wall_s
    elif isinstance(msg, FaultRevertFailed):
        row.revert_failed += 1
    elif isinstance(msg, ActorCrashed):
        row.crashes += 1
    elif isinstance(msg, SelfChaosKill):
        row.self_chaos_kills += 1
    elif isinstance(msg, Resources):
        if msg.process == "main":
            row.osha_rss_bytes = msg.rss_bytes
    elif isinstance(msg, StateChange):
        was_down = f"{msg.sender}/{msg.target}" in down_since
        closed = _track(down_since, msg)
        if msg.state in _BAD and not was_down:
            row.targets_down += 1
        if closed is not None:
            row.downtime_s += closed[1]
            row._last_up_wall_s = msg.wall_s


def _close(row: CycleRow, msg: SoakCycle, down_since: dict[str, float]) -> None:
    row.end_wall_s = msg.wall_s
    row.ok = msg.ok and row.revert_failed == 0
    if down_since:
        row.recovery_s = None  # still down at the cycle's end
    elif row._last_revert_wall_s is None or row._last_up_wall_s is None:
        row.recovery_s = 0.0
    else:
        row.recovery_s = round(max(0.0, row._last_up_wall_s - row._last_revert_wall_s), 3)
