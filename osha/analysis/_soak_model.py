"""The analysis's results about a soak: one row per cycle and the trends over them
(re-exported by :mod:`osha.analysis.model`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CycleRow", "SoakSummary"]


@dataclass(frozen=True, slots=True)
class CycleRow:
    """One soak cycle, from its ``soak.cycle`` start to its end record.

    An outage belongs to the cycle in which it started: ``targets_down`` and ``downtime_s``
    count the outages that started inside the cycle (an outage that runs past the cycle's end
    still adds its whole downtime to it; one still open at the end of the analysed run counts
    until then). Outage edges are the same estimates as the targets' (midway between the
    neighbouring observations). A fault belongs to the cycle whose ``[start, end)`` holds its
    actual inject time: ``recovery_s`` is taken from those faults' target impacts.
    """

    cycle: int
    start_s: float
    end_s: float | None  # None: the ledger ends inside the cycle
    ok: bool | None  # the campaign's judgement, and no revert failed; None: unfinished
    detail: str  # the end record's detail
    planned_faults: int
    injected: int
    reverted: int
    revert_failed: int  # reverts that failed for good (``final``): the fault stayed in place
    crashes: int  # actor.crashed, self-chaos kills included
    self_chaos_kills: int
    targets_down: int  # targets (per monitor) with an outage that started in the cycle
    downtime_s: float  # the sum of those outages' downtime
    #: time to recover (MTTR): the longest :attr:`TargetImpact.recovery_s` of the faults
    #: injected in the cycle (from a fault's revert, or from its inject for a self-healing
    #: fault, until the target is steadily up); 0.0 if none of them took a target down; None if
    #: unfinished or a target one of them took down never recovered (by the end of the run)
    recovery_s: float | None
    #: 1 - bad target-seconds inside the cycle / (targets x the cycle's length); None if
    #: unfinished or no target is monitored
    availability: float | None
    osha_rss_bytes: int | None  # osha's main process: its last osha.resources in the cycle
    #: faults still held at the cycle's end within their revert deadline (not a breach), and
    #: how long the soak waited for their reverts with the chaos clock held
    overruns: int = 0
    overrun_wait_s: float = 0.0
    #: how late the cycle started (the clock was held past its start), and how many of its
    #: faults were skipped because their disruptor stopped waiting for a grant meanwhile
    late_s: float = 0.0
    skipped: int = 0

    @property
    def duration_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class SoakSummary:
    """The cycles of a soak and their trends: least-squares slopes per cycle over the finished
    cycles (None with fewer than two values), so a long soak shows whether recovery slows
    down, downtime grows or availability drifts, and whether osha itself leaks memory."""

    cycles: tuple[CycleRow, ...]
    cycles_ok: int
    cycles_failed: int
    cycles_unfinished: int
    cycles_unrecovered: int  # finished, no MTTR: a target its faults took down never recovered
    mttr_mean_s: float | None  # over the finished, recovered cycles
    mttr_max_s: float | None
    mttr_trend_s: float | None  # seconds per cycle
    downtime_trend_s: float | None  # seconds per cycle
    availability_trend: float | None  # fraction per cycle (x 100: percentage points)
    #: osha's main RSS from ``rss_from_cycle`` (the 5th cycle, after warm-up; the 1st when
    #: there are five or fewer) to ``rss_to_cycle`` (the last with a sample)
    rss_from_cycle: int | None
    rss_to_cycle: int | None
    rss_growth_bytes: int | None
    #: the least-squares slope of those samples (each cycle's last) over the cycles' end times
    rss_slope_bytes_per_h: float | None = None
    overruns: int = 0  # over every cycle
    skipped: int = 0  # faults skipped while the clock was held
