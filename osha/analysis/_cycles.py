"""Soak cycles: per-cycle metrics, fed message by message by the analysis's one pass.

A cycle is the stretch between a ``soak.cycle`` start record and the end record of the same
cycle. For each cycle, :class:`CycleTable` counts:

- the faults injected, reverted and failed to revert (``fault.*``);
- actor crashes (``actor.crashed``) and, of them, self-chaos kills (``osha.self_chaos``);
- the targets that went down (``monitor.state``) and the downtime of those outages, with the
  targets' own edge estimates (midway between the neighbouring observations);
- the availability inside the cycle: 1 - bad target-seconds / (targets x its length);
- osha's own main-process RSS at the cycle's end (its last ``osha.resources`` of ``main``);
- what its ``soak.cycle`` records say of the chaos clock: the overruns at its end and the wait
  for them, how late it started and how many of its faults were skipped meanwhile.

The time to recover (MTTR) of a cycle is not counted in the pass: :meth:`CycleTable.finish`
takes it from the per-fault reports (:func:`osha.analysis._impact.fault_reports`), as the
longest time to recover of a target that a fault injected in the cycle took down (from the
revert, or from the inject for a self-healing fault). A fault belongs to the cycle whose
``[start, end)`` holds its actual inject time, found by bisection over the cycle starts.

Memory is one row per cycle plus the open outages (one per target at most), never the records.
:func:`trend` fits a least-squares slope per cycle, so that a report can say whether MTTR grows
or availability drifts over hundreds of cycles.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from osha.analysis.model import CycleRow, FaultReport, SoakSummary
from osha.messages import (
    ActorCrashed,
    FaultInjected,
    FaultReverted,
    FaultRevertFailed,
    Message,
    Resources,
    SelfChaosKill,
    SoakCycle,
    State,
    StateChange,
    is_bad,
)

__all__ = ["RSS_FROM_CYCLE", "CycleTable", "rss_slope_per_h", "summarize", "trend"]

#: osha's RSS growth is measured from this cycle on (1-based): the first ones warm up caches.
RSS_FROM_CYCLE = 5


@dataclass(slots=True)
class _Cycle:
    """A cycle while it is being filled."""

    cycle: int
    start_s: float
    planned_faults: int
    end_s: float | None = None
    ok: bool | None = None
    detail: str = ""
    injected: int = 0
    reverted: int = 0
    revert_failed: int = 0
    crashes: int = 0
    self_chaos_kills: int = 0
    targets_down: int = 0
    downtime_s: float = 0.0
    slowest_s: float = 0.0  # the longest time to recover of its faults' targets
    unrecovered: bool = False  # a target one of its faults took down never recovered
    bad_s: float = 0.0  # bad target-seconds inside the cycle
    targets: int = 0  # targets known at its end
    rss_bytes: int | None = None
    late_s: float = 0.0
    skipped: int = 0
    overruns: int = 0
    overrun_wait_s: float = 0.0
    down: set[tuple[str, str]] = field(default_factory=set)  # emptied when it ends

    def row(self) -> CycleRow:
        length = None if self.end_s is None else self.end_s - self.start_s
        recovery = None if length is None or self.unrecovered else self.slowest_s
        availability = None
        if length is not None and length > 0 and self.targets:
            availability = min(1.0, max(0.0, 1.0 - self.bad_s / (self.targets * length)))
        return CycleRow(
            cycle=self.cycle,
            start_s=self.start_s,
            end_s=self.end_s,
            ok=self.ok,
            detail=self.detail,
            planned_faults=self.planned_faults,
            injected=self.injected,
            reverted=self.reverted,
            revert_failed=self.revert_failed,
            crashes=self.crashes,
            self_chaos_kills=self.self_chaos_kills,
            targets_down=self.targets_down,
            downtime_s=self.downtime_s,
            recovery_s=recovery,
            availability=availability,
            osha_rss_bytes=self.rss_bytes,
            overruns=self.overruns,
            overrun_wait_s=self.overrun_wait_s,
            late_s=self.late_s,
            skipped=self.skipped,
        )


class CycleTable:
    """Every soak cycle of the run, in the order they started. Feed it the ``soak.cycle``,
    ``fault.*``, ``actor.crashed``, ``osha.self_chaos``, ``monitor.state`` and
    ``osha.resources`` messages with :meth:`feed` (others are ignored), then call
    :meth:`finish` once."""

    def __init__(self) -> None:
        self.cycles: list[_Cycle] = []
        self.current: _Cycle | None = None
        # open outages, across cycles (one may span a cycle boundary): (start, its cycle)
        self._open: dict[tuple[str, str], tuple[float, _Cycle | None]] = {}
        self._known: set[tuple[str, str]] = set()  # every target seen, for availability

    def feed(self, msg: Message, t: float) -> None:
        """One message at run time ``t`` (other messages are ignored)."""
        if isinstance(msg, StateChange):
            self._state(msg, t)
        elif isinstance(msg, SoakCycle):
            self._cycle(msg, t)
        elif (cur := self.current) is None:
            return
        elif isinstance(msg, FaultInjected):
            cur.injected += 1
        elif isinstance(msg, FaultReverted):
            cur.reverted += 1
        elif isinstance(msg, FaultRevertFailed) and msg.final:
            cur.revert_failed += 1  # a failed attempt that is retried fails nothing yet
        elif isinstance(msg, ActorCrashed):
            cur.crashes += 1
        elif isinstance(msg, SelfChaosKill):
            cur.self_chaos_kills += 1
        elif isinstance(msg, Resources) and msg.process == "main":
            cur.rss_bytes = msg.rss_bytes

    def finish(self, end_s: float, faults: Sequence[FaultReport]) -> SoakSummary | None:
        """Close the books at ``end_s`` (the end of the analysed run); None if no cycle.

        ``faults`` are the run's fault reports: each cycle's MTTR is the longest time to
        recover of the targets that the faults injected in it took down."""
        if not self.cycles:
            return None
        if self.current is not None:
            self._end(self.current, None)
        for start, origin in self._open.values():  # still down: counts until the end
            if origin is not None:
                origin.downtime_s += max(0.0, end_s - start)
        self._recoveries(faults)
        return summarize([c.row() for c in self.cycles])

    # -- internals --------------------------------------------------------------------------

    def _recoveries(self, faults: Sequence[FaultReport]) -> None:
        """Give each fault's target impacts to the cycle whose ``[start, end)`` holds its
        inject (an unfinished cycle lasts until the next start)."""
        starts = [c.start_s for c in self.cycles]  # in ledger order: sorted
        for f in faults:
            if f.injected_s is None or not f.targets:
                continue
            i = bisect_right(starts, f.injected_s) - 1
            if i < 0:
                continue  # before the first cycle
            cyc = self.cycles[i]
            if cyc.end_s is not None and f.injected_s >= cyc.end_s:
                continue  # between two cycles
            for imp in f.targets:
                if not imp.recovered or imp.recovery_s is None:
                    cyc.unrecovered = True
                else:
                    cyc.slowest_s = max(cyc.slowest_s, imp.recovery_s)

    def _cycle(self, msg: SoakCycle, t: float) -> None:
        if msg.phase == "start":
            if self.current is not None:  # a new start without an end: that one is unfinished
                self._end(self.current, None)
            self.current = _Cycle(msg.cycle, t, msg.planned_faults)
            self.current.late_s, self.current.skipped = msg.late_s, msg.skipped
            self.cycles.append(self.current)
        elif msg.phase == "end" and self.current is not None and msg.cycle == self.current.cycle:
            self._end(self.current, msg, t)

    def _end(self, cur: _Cycle, msg: SoakCycle | None, t: float = 0.0) -> None:
        self.current = None
        cur.targets_down = len(cur.down)
        cur.down = set()
        if msg is None:  # unfinished: the campaign never judged it
            return
        cur.end_s = t
        cur.ok = msg.ok and cur.revert_failed == 0
        cur.detail = msg.detail
        cur.overruns, cur.overrun_wait_s = msg.overruns, msg.overrun_wait_s
        cur.targets = len(self._known)
        for start, _origin in self._open.values():
            cur.bad_s += max(0.0, t - max(start, cur.start_s))

    def _state(self, msg: StateChange, t: float) -> None:
        key = (msg.sender, msg.target)
        self._known.add(key)
        shift = t - msg.mono_s  # monotonic -> run time
        first = msg.first_bad_mono_s + shift
        at = first if msg.last_good_mono_s is None else (msg.last_good_mono_s + shift + first) / 2
        cur = self.current
        if is_bad(msg.state):
            if key not in self._open:
                self._open[key] = (at, cur)
                if cur is not None:
                    cur.down.add(key)
        elif msg.state == State.UP:  # ``unknown`` ends no outage (as for the targets)
            opened = self._open.pop(key, None)
            if opened is None:
                return
            start, origin = opened
            if origin is not None:
                origin.downtime_s += max(0.0, at - start)
            if cur is not None:
                cur.bad_s += max(0.0, at - max(start, cur.start_s))


def trend(values: Sequence[float], xs: Sequence[float] | None = None) -> float | None:
    """The least-squares slope of ``values`` over ``xs`` (default 0, 1, 2, ...): the change per
    step. None with fewer than two points or when every ``x`` is the same."""
    n = len(values)
    if n < 2:
        return None
    x = list(range(n)) if xs is None else list(xs)
    if len(x) != n:
        raise ValueError(f"trend: {n} values but {len(x)} x positions")
    mean_x = sum(x) / n
    mean_y = sum(values) / n
    den = sum((xi - mean_x) ** 2 for xi in x)
    if den == 0:
        return None
    return sum((xi - mean_x) * (v - mean_y) for xi, v in zip(x, values, strict=True)) / den


def rss_slope_per_h(rows: Sequence[CycleRow]) -> float | None:
    """The least-squares slope, in bytes per hour, of osha's main RSS over ``rows`` (each
    cycle's last sample, at the cycle's end). None with fewer than two."""
    points = [(r.end_s, r.osha_rss_bytes) for r in rows]
    known = [(t, b) for t, b in points if t is not None and b is not None]
    per_s = trend([b for _t, b in known], [t for t, _b in known])
    return None if per_s is None else per_s * 3600.0


def summarize(rows: Sequence[CycleRow]) -> SoakSummary:
    """The counts and trends of a soak's cycles (see :class:`~osha.analysis.SoakSummary`)."""
    finished = [r for r in rows if r.end_s is not None]
    recovered = [(r.cycle, r.recovery_s) for r in finished if r.recovery_s is not None]
    mttr = [v for _c, v in recovered]
    avail = [(r.cycle, r.availability) for r in finished if r.availability is not None]
    # osha's RSS: from the 5th cycle (the 1st if there are no more than 5) to the last sample
    skip = RSS_FROM_CYCLE - 1 if len(rows) > RSS_FROM_CYCLE else 0
    rss = [
        (i, r.cycle, r.osha_rss_bytes) for i, r in enumerate(rows) if r.osha_rss_bytes is not None
    ]
    first = next((s for s in rss if s[0] >= skip), None)
    growth = from_cycle = to_cycle = slope = None
    if first is not None and rss[-1][0] > first[0]:
        growth = rss[-1][2] - first[2]
        from_cycle, to_cycle = first[1], rss[-1][1]
        slope = rss_slope_per_h(rows[first[0] :])
    return SoakSummary(
        cycles=tuple(rows),
        cycles_ok=sum(r.ok is True for r in rows),
        cycles_failed=sum(r.ok is False for r in rows),
        cycles_unfinished=sum(r.end_s is None for r in rows),
        cycles_unrecovered=sum(r.recovery_s is None for r in finished),
        mttr_mean_s=sum(mttr) / len(mttr) if mttr else None,
        mttr_max_s=max(mttr, default=None),
        mttr_trend_s=trend(mttr, [c for c, _v in recovered]),
        downtime_trend_s=trend([r.downtime_s for r in finished], [r.cycle for r in finished]),
        availability_trend=trend([v for _c, v in avail], [c for c, _v in avail]),
        rss_from_cycle=from_cycle,
        rss_to_cycle=to_cycle,
        rss_growth_bytes=growth,
        rss_slope_bytes_per_h=slope,
        overruns=sum(r.overruns for r in rows),
        skipped=sum(r.skipped for r in rows),
    )
