"""The analysis's results about the load: a runner over the whole run, per phase, in each
degraded stretch or error cluster, and what one fault did to it (re-exported by
:mod:`osha.analysis.model`, whose notes on time and bounds hold here too)."""

from __future__ import annotations

from dataclasses import dataclass

from osha.analysis.degradation import AtomicBaseline, AtomicDegradation
from osha.analysis.shortfall import BaselineShortfall
from osha.messages import Phase

__all__ = ["PhaseStats", "RunnerImpact", "RunnerReport", "Stretch"]


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
    #: the starts of the iterations the stop cut off, in order (``runner.unfinished``: they
    #: never ended, so they have no duration and count neither as ok nor as failed)
    unfinished: tuple[float, ...] = ()

    @property
    def success(self) -> float | None:
        return (self.iterations - self.failures) / self.iterations if self.iterations else None
