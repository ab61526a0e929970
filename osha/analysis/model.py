# Over 400 lines (442): the report's frozen result types only, one dataclass per fact, no
# logic; splitting them by section waits for issue 13 §4 (typed states in the analysis).
"""The results of an analysis: plain frozen dataclasses, ready for the report renderers.

**Time.** Every ``*_s`` time below (not a duration) is *run time*: seconds since the ledger
header, on the monotonic clock (``mono_s`` of the envelope). Monitors, disruptors and runners
run on the supervisor's machine, so their monotonic clocks are one clock; durations are
therefore immune to wall-clock steps (NTP). Times that a message carries on the wall clock
(``fault.injected.actual_wall_s``, ``runner.iteration.started_wall_s``) are moved to the
monotonic clock with the offset of the *same* message's envelope (``wall_s - mono_s``), so a
wall step between two messages cannot shift one against the other. For humans, a run time
``t`` is shown as the wall time ``RunInfo.started_wall_s + t``.

**Bounds.** A value ``x`` with ``bound`` ``b`` means the truth lies in ``[x - b, x + b]``:
monitors see a target only at sample instants, so each edge of an outage is known to lie
between the last observation before it and the first after it (``last_good``/``first_bad``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from osha.analysis._kinds import FaultStatus, RecoveryFrom
from osha.analysis.degradation import AtomicBaseline, AtomicDegradation
from osha.analysis.shortfall import BaselineShortfall
from osha.ledger.damage import LedgerDamage
from osha.messages import Phase, State

__all__ = [
    "ActorReport",
    "CycleRow",
    "Detection",
    "Episode",
    "FaultReport",
    "FaultStatus",
    "PhaseSpan",
    "PhaseStats",
    "RecoveryFrom",
    "RunInfo",
    "RunnerImpact",
    "RunnerReport",
    "SoakSummary",
    "Stretch",
    "TargetImpact",
    "TargetReport",
]


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    """A campaign phase (or a derived one: ``baseline``, ``chaos``, ``recovery``)."""

    name: Phase
    start_s: float
    end_s: float | None  # None: the phase never ended (the ledger stops inside it)
    ok: bool = True
    derived: bool = False  # True: no campaign.phase records, derived from the faults


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What the ledger says about the run as a whole."""

    run_id: str
    host: str
    osha_version: str
    seed: int
    profile_path: str
    started_wall_s: float
    end_s: float  # run time of the last record
    records: int
    complete: bool  # the run reached its end (run.stopped, or the campaign's teardown)
    aborted: bool
    abort_reason: str
    stop_reason: str  # run.stopped's reason, "" if absent
    tear: str  # the torn tail, as the reader describes it; "" if none
    corruptions: int
    phases: tuple[PhaseSpan, ...]
    recorded_verdict: dict[str, object] | None  # the campaign.verdict found in the ledger
    #: what was skipped, unreadable or missing (corrupt stretches, damaged records, sequence
    #: gaps, a damaged header, closed.json against the disk); empty for an intact ledger
    damage: LedgerDamage = field(default_factory=LedgerDamage)
    campaign_name: str = ""  # [campaign] name of the recorded profile; "" if none


@dataclass(frozen=True, slots=True)
class Episode:
    """One outage of a target: observations in a bad state (``down`` or ``unreachable``) from
    ``first_bad_s`` to ``last_bad_s``; ``last_good_s``/``first_good_s`` are the neighbouring
    good observations (None when there is none: bad from the first observation, or never
    recovered). Gaps where the monitor could not see (``unknown``, a restarted monitor) do not
    end an outage: only an ``up`` observation does, and the gap widens the bound instead."""

    first_bad_s: float
    last_bad_s: float
    last_good_s: float | None
    first_good_s: float | None
    worst: State  # down or unreachable
    blind: bool  # the monitor was blind (unknown) for part of it
    reported_s: float  # when the monitor recorded the change that opened it

    @property
    def recovered(self) -> bool:
        return self.first_good_s is not None

    @property
    def start_s(self) -> float:
        """Best estimate of when it started: midway between the last good and first bad."""
        lo = self.first_bad_s if self.last_good_s is None else self.last_good_s
        return (lo + self.first_bad_s) / 2

    @property
    def end_s(self) -> float:
        """Best estimate of when it ended (the last bad observation if never recovered)."""
        hi = self.last_bad_s if self.first_good_s is None else self.first_good_s
        return (self.last_bad_s + hi) / 2

    @property
    def downtime_s(self) -> float:
        """Service downtime: first error to last error, each widened by half the gap to the
        neighbouring good observation (the performance-docs estimate)."""
        return self.end_s - self.start_s

    @property
    def bound_s(self) -> float:
        """± precision: half the gap before the first error plus half the gap after the last."""
        lo = self.first_bad_s if self.last_good_s is None else self.last_good_s
        hi = self.last_bad_s if self.first_good_s is None else self.first_good_s
        return (self.first_bad_s - lo) / 2 + (hi - self.last_bad_s) / 2


@dataclass(frozen=True, slots=True)
class TargetReport:
    """One monitored target, as one monitor saw it over the whole run."""

    monitor: str
    target: str
    first_seen_s: float
    last_seen_s: float
    up_s: float
    bad_s: float
    unknown_s: float
    final_state: State
    episodes: tuple[Episode, ...]
    episode_count: int  # exact, even when ``episodes`` was capped
    downtime_s: float  # the sum of every episode's downtime
    downtime_bound_s: float
    samples: int  # observations summarised by monitor.sample
    sample_failures: int
    segments: tuple[tuple[float, str], ...] = ()  # (estimated start, state) for timelines

    @property
    def availability(self) -> float | None:
        """Time up / time observed (up or bad; ``unknown`` is not observed). None if never
        observed."""
        observed = self.up_s + self.bad_s
        return self.up_s / observed if observed > 0 else None


@dataclass(frozen=True, slots=True)
class Detection:
    """A monitor saw a fault: its first change to a bad state after the inject."""

    monitor: str
    target: str
    detection_s: float  # first bad observation - actual inject time
    reported_s: float  # when the state change was recorded - actual inject time
    state: State


@dataclass(frozen=True, slots=True)
class TargetImpact:
    """What one fault did to one target: downtime and time to recover (MTTR)."""

    monitor: str
    target: str
    episodes: int
    downtime_s: float
    downtime_bound_s: float
    recovered: bool
    recovery_s: float | None  # time to recover, from ``recovery_from``; None: never
    recovery_bound_s: float
    recovery_from: RecoveryFrom


@dataclass(frozen=True, slots=True)
class Stretch:
    """A runner's error cluster or degraded stretch, on iteration start times."""

    start_s: float
    end_s: float
    bound_s: float
    iterations: int
    first_s: float  # start time of its first iteration (for attribution to a fault)
    mean_duration_s: float | None = None  # degraded stretches: mean of their good iterations
    degradation_s: float | None = None  # absolute: mean - baseline mean
    degradation_ratio: float | None = None  # relative: mean / baseline mean
    window_span_s: float | None = None  # the raw sliding-window stretch (window centres)
    #: ± half-widths of the 95 % t-intervals of the absolute and relative degradation
    #: (:mod:`osha.analysis.degradation`)
    degradation_bound_s: float | None = None
    degradation_ratio_bound: float | None = None
    #: each atomic action of its good iterations against that action's baseline
    atomics: tuple[AtomicDegradation, ...] = ()

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class RunnerImpact:
    """What one fault did to one runner."""

    runner: str
    errors: int
    downtime_s: float
    downtime_bound_s: float
    mttr_s: float | None  # the degraded stretch's length; None: no degradation
    mttr_bound_s: float
    degradation_s: float | None
    degradation_ratio: float | None
    #: the worst degraded stretch's: ± 95 % t-interval half-widths, and its atomic actions
    degradation_bound_s: float | None = None
    degradation_ratio_bound: float | None = None
    atomics: tuple[AtomicDegradation, ...] = ()


@dataclass(frozen=True, slots=True)
class FaultReport:
    """One fault lease, its lifecycle and its impact."""

    lease_id: str
    holder: str
    plugin: str
    action: str
    node: str
    resource: str
    planned_s: float | None
    injected_s: float | None
    inject_error: str
    refused: str
    reverted_s: float | None
    reverted_by: str
    revert_attempts: int
    revert_error: str  # the last revert_failed error, "" if none
    released: bool
    #: reverted | unreverted | refused | planned | failed (no lease: nothing injected) | held
    #: (in flight, when a run still going is judged)
    status: FaultStatus
    overlaps: tuple[str, ...]  # the faults held at the same time as this one
    detections: tuple[Detection, ...]
    targets: tuple[TargetImpact, ...]
    runners: tuple[RunnerImpact, ...]
    granted_s: float | None = None  # its lease was granted
    holder_lost_s: float | None = None  # its holder crashed before confirming the inject
    takeover_s: float | None = None  # the broker (or recover) made its first revert attempt

    @property
    def unconfirmed(self) -> bool:
        """Granted, but its holder crashed before recording whether it injected."""
        return self.holder_lost_s is not None and self.injected_s is None and not (
            self.inject_error
        )

    @property
    def held_s(self) -> float | None:
        """How long the fault was in place: from its inject to its revert (None if one of
        them is unknown; see :attr:`held_at_most_s` for an unconfirmed inject)."""
        if self.injected_s is None or self.reverted_s is None:
            return None
        return self.reverted_s - self.injected_s

    @property
    def held_at_most_s(self) -> float | None:
        """An unconfirmed inject's bound: from its grant to its revert."""
        if not self.unconfirmed or self.granted_s is None or self.reverted_s is None:
            return None
        return self.reverted_s - self.granted_s

    @property
    def note(self) -> str:
        """What is known of an unconfirmed inject, in run seconds; "" otherwise."""
        if not self.unconfirmed:
            return ""
        took = f"+{self.takeover_s:.3f} s" if self.takeover_s is not None else "never"
        done = (f"reverted it at +{self.reverted_s:.3f} s" if self.reverted_s is not None
                else "did NOT revert it")  # fmt: skip
        return (
            f"inject unconfirmed: {self.holder} was killed at +{self.holder_lost_s or 0.0:.3f} s,"
            f" after its grant at +{self.granted_s or 0.0:.3f} s and before it recorded the "
            f"inject; the broker took over at {took} and {done}"
        )

    @property
    def label(self) -> str:
        """A short human name: ``kill nova-scheduler@ctl-1``."""
        where = f"{self.resource}@{self.node}" if self.resource else self.node
        return f"{self.action} {where}".strip()

    @property
    def detection_s(self) -> float | None:
        """The fastest detection over every monitor, None if no monitor saw it."""
        return min((d.detection_s for d in self.detections), default=None)


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """A runner's iterations in one phase: success rate and duration percentiles (good
    iterations only)."""

    phase: Phase
    iterations: int
    failures: int
    mean_s: float | None
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None

    @property
    def success(self) -> float | None:
        return (self.iterations - self.failures) / self.iterations if self.iterations else None


@dataclass(frozen=True, slots=True)
class RunnerReport:
    """One runner (by actor id) over the whole run."""

    runner: str
    workload: str
    iterations: int
    failures: int
    baseline_count: int
    baseline_mean_s: float | None
    baseline_std_s: float | None
    threshold_s: float | None  # baseline mean + k·sd
    phases: tuple[PhaseStats, ...]
    error_clusters: tuple[Stretch, ...]
    degraded: tuple[Stretch, ...]
    statuses: tuple[str, ...]
    #: (start, duration, ok) for plotting: every failure, good ones thinned to a bounded count
    points: tuple[tuple[float, float, bool], ...] = ()
    #: the last failure the runner recorded of its workload (Rally's own error: a crash, a
    #: failed validation, a context whose setup failed); "" if none
    failure: str = ""
    pace_s: float | None = None  # observed seconds per iteration in the baseline
    #: the baseline held fewer than warm-up + window iterations (None: enough)
    baseline_short: BaselineShortfall | None = None
    #: its atomic actions (Rally's ``nova.boot_server``...) in the baseline, in the order the
    #: workload first ran them; ``atomics_dropped`` names beyond the cap were not analysed
    atomics: tuple[AtomicBaseline, ...] = ()
    atomics_dropped: int = 0

    @property
    def success(self) -> float | None:
        return (self.iterations - self.failures) / self.iterations if self.iterations else None


@dataclass(frozen=True, slots=True)
class ActorReport:
    """Crashes and restarts of one supervised actor."""

    actor_id: str
    kind: str
    plugin: str
    starts: int
    crashes: int
    restarts: int
    crash_reasons: tuple[str, ...]
    escalated: bool


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
