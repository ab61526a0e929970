"""The results of an analysis: plain frozen dataclasses, ready for the report renderers.
The run, its targets and its faults are here; the runners' results are in
:mod:`osha.analysis._runner_model` and a soak's in :mod:`osha.analysis._soak_model`, both
re-exported here.

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
from osha.analysis._runner_model import PhaseStats, RunnerImpact, RunnerReport, Stretch
from osha.analysis._soak_model import CycleRow, SoakSummary
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
    guard_note: str = ""  # granted over the quorum guard (allow_quorum_loss): its arithmetic

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
        """What is known of an unconfirmed inject, in run seconds, and the quorum rule a
        grant overrode; "" when neither."""
        if not self.unconfirmed:
            return self.guard_note
        took = f"+{self.takeover_s:.3f} s" if self.takeover_s is not None else "never"
        done = (f"reverted it at +{self.reverted_s:.3f} s" if self.reverted_s is not None
                else "did NOT revert it")  # fmt: skip
        return (
            f"inject unconfirmed: {self.holder} was killed at +{self.holder_lost_s or 0.0:.3f} s,"
            f" after its grant at +{self.granted_s or 0.0:.3f} s and before it recorded the "
            f"inject; the broker took over at {took} and {done}"
        ) + (f"; {self.guard_note}" if self.guard_note else "")

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
