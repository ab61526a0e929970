"""Per-target state machines: ``monitor.state`` changes in, outages and availability out.

One :class:`TargetTracker` per (monitor, target). Memory is constant per target apart from the
list of outages, which is capped (``AnalysisOptions.max_episodes``; totals stay exact).

States, by the one rule the live picture shares (:data:`osha.messages.BAD_STATES`): ``up`` is
good; ``down`` and ``unreachable`` are bad; ``unknown`` is blind: the monitor cannot see the
target (it just started, its probe cannot run, or it crashed: the analysis turns every target
of a crashed or stopped monitor ``unknown`` at that moment). Time spent
``unknown`` counts neither as up nor as down (availability = up / (up + bad)); an outage that
runs into a blind stretch lasts until the next ``up`` observation, and its bound says how
little is known about its end.
"""

from __future__ import annotations

import copy

from osha.analysis.model import Episode, TargetReport
from osha.messages import State, is_bad

__all__ = ["TargetTracker"]


class TargetTracker:
    """The state of one target as one monitor reports it. Times are run times (seconds)."""

    __slots__ = (
        "blind",
        "bound_sum",
        "count",
        "down_s",
        "down_sum",
        "ep_first_bad",
        "ep_last_bad",
        "ep_last_good",
        "ep_reported",
        "ep_worst",
        "episodes",
        "first_seen",
        "last_bad_evidence",
        "last_seen",
        "last_up_evidence",
        "max_episodes",
        "monitor",
        "sample_failures",
        "samples",
        "segments",
        "since",
        "state",
        "target",
        "unknown_s",
        "up_s",
    )

    def __init__(self, monitor: str, target: str, max_episodes: int) -> None:
        self.monitor = monitor
        self.target = target
        self.max_episodes = max_episodes
        self.state = State.UNKNOWN
        self.since: float | None = None  # estimated start of the current state
        self.first_seen: float | None = None
        self.last_seen = 0.0
        self.up_s = 0.0
        self.down_s = 0.0
        self.unknown_s = 0.0
        self.last_up_evidence: float | None = None
        self.last_bad_evidence: float | None = None
        self.samples = 0
        self.sample_failures = 0
        self.episodes: list[Episode] = []
        self.segments: list[tuple[float, State]] = []  # (estimated start, state), for timelines
        self.count = 0
        self.down_sum = 0.0
        self.bound_sum = 0.0
        # the open outage, if any (ep_first_bad is not None)
        self.ep_first_bad: float | None = None
        self.ep_last_bad = 0.0
        self.ep_last_good: float | None = None
        self.ep_reported = 0.0
        self.ep_worst = State.DOWN
        self.blind = False

    # -- input ------------------------------------------------------------------------------

    def sample(self, t: float, count: int, failures: int) -> None:
        """A ``monitor.sample`` summary recorded at ``t``: evidence for blind stretches."""
        self.samples += count
        self.sample_failures += failures
        self.last_seen = max(self.last_seen, t)
        if failures and is_bad(self.state):
            self.last_bad_evidence = t
        elif failures < count and self.state == State.UP:
            self.last_up_evidence = t

    def change(
        self, state: State, last_good: float | None, first_bad: float, reported: float
    ) -> None:
        """A ``monitor.state`` change: the new ``state`` was first observed at ``first_bad``;
        the last observation in the old state was ``last_good`` (None if there was none)."""
        at = first_bad if last_good is None else (last_good + first_bad) / 2
        self._account(at)
        if self.first_seen is None:
            self.first_seen = first_bad
        self.last_seen = max(self.last_seen, first_bad)
        old = self.state
        if is_bad(state):
            self._to_bad(state, old, last_good, first_bad, reported)
        elif state == State.UP:
            if self.ep_first_bad is not None:
                if is_bad(old) and last_good is not None:
                    last_bad = max(self.ep_last_bad, last_good)
                else:
                    last_bad = self._bad_evidence()
                self._close(last_bad, first_bad)
            self.last_up_evidence = first_bad
        elif is_bad(old) and self.ep_first_bad is not None:  # unknown: blind from now on
            if last_good is not None:
                self.ep_last_bad = max(self.ep_last_bad, last_good)
            self.blind = True
        elif old == State.UP and last_good is not None:  # unknown after up
            self.last_up_evidence = last_good
        self.state = state
        self.since = at
        self._segment(at, state)

    def _segment(self, at: float, state: State) -> None:
        if len(self.segments) < 3 * self.max_episodes:
            self.segments.append((at, state))

    def _to_bad(
        self, state: State, old: State, last_good: float | None, first_bad: float, reported: float
    ) -> None:
        if self.ep_first_bad is None:
            self.ep_first_bad = first_bad
            self.ep_last_bad = first_bad
            self.ep_reported = reported
            self.ep_worst = state
            self.blind = False
            if old == State.UP:
                self.ep_last_good = last_good
            else:  # from unknown: the last time it was known good, if ever
                self.ep_last_good = self.last_up_evidence
                self.blind = self.last_up_evidence is not None
        else:  # still in the same outage (down → unreachable, or back from a blind stretch)
            if old == State.UNKNOWN:
                self.blind = True
            elif last_good is not None:
                self.ep_last_bad = max(self.ep_last_bad, last_good)
            self.ep_last_bad = max(self.ep_last_bad, first_bad)
            if state == State.UNREACHABLE:
                self.ep_worst = state
        self.last_bad_evidence = first_bad

    def blind_at(self, t: float) -> None:
        """The monitor crashed or stopped at ``t``: the target is ``unknown`` from then on."""
        if self.state == State.UNKNOWN:
            return
        self._account(t)
        if is_bad(self.state) and self.ep_first_bad is not None:
            self.ep_last_bad = self._bad_evidence(before=t)
            self.blind = True
        self.state = State.UNKNOWN
        self.since = t
        self._segment(t, State.UNKNOWN)

    # -- output -----------------------------------------------------------------------------

    def report_at(
        self, end: float, *, episodes: bool = True, segments: bool = False
    ) -> TargetReport:
        """The report :meth:`finish` would give at ``end``, the tracker left as it is (a
        live judgement reads on afterwards). Without ``episodes`` (``segments``) the report's
        episodes (segments) are empty; its totals (count, downtime, time up) stay exact."""
        twin = copy.copy(self)
        twin.episodes = self.episodes[:] if episodes else []
        twin.segments = self.segments[:] if segments else []
        return twin.finish(end)

    def finish(self, end: float) -> TargetReport:
        """Close the books at ``end`` (the end of the analysed run) and report."""
        self._account(end)
        if self.ep_first_bad is not None:
            last_bad = end if is_bad(self.state) else self._bad_evidence(before=end)
            self._close(last_bad, None)
        first = self.first_seen if self.first_seen is not None else end
        return TargetReport(
            monitor=self.monitor,
            target=self.target,
            first_seen_s=first,
            last_seen_s=max(self.last_seen, first),
            up_s=self.up_s,
            bad_s=self.down_s,
            unknown_s=self.unknown_s,
            final_state=self.state,
            episodes=tuple(self.episodes),
            episode_count=self.count,
            downtime_s=self.down_sum,
            downtime_bound_s=self.bound_sum,
            samples=self.samples,
            sample_failures=self.sample_failures,
            segments=tuple(self.segments),
        )

    # -- internals --------------------------------------------------------------------------

    def _account(self, until: float) -> None:
        if self.since is None:
            return
        span = max(0.0, until - self.since)
        if self.state == State.UP:
            self.up_s += span
        elif is_bad(self.state):
            self.down_s += span
        else:
            self.unknown_s += span
        self.since = max(self.since, until)

    def _bad_evidence(self, before: float | None = None) -> float:
        best = self.ep_last_bad
        evidence = self.last_bad_evidence
        if evidence is not None and (before is None or evidence <= before):
            best = max(best, evidence)
        return best

    def _close(self, last_bad: float, first_good: float | None) -> None:
        assert self.ep_first_bad is not None
        episode = Episode(
            first_bad_s=self.ep_first_bad,
            last_bad_s=max(last_bad, self.ep_first_bad),
            last_good_s=self.ep_last_good,
            first_good_s=first_good,
            worst=self.ep_worst,
            blind=self.blind,
            reported_s=self.ep_reported,
        )
        self.count += 1
        self.down_sum += episode.downtime_s
        self.bound_sum += episode.bound_s
        if len(self.episodes) < self.max_episodes:
            self.episodes.append(episode)
        self.ep_first_bad = None
        self.ep_last_good = None
        self.blind = False
