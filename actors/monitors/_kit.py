"""The monitor kit: what every built-in monitor uses, and what a monitor plugin may use.

- :class:`StateTracker`: observations in, ``monitor.state`` changes out. It remembers, for
  every target, its current state and the time of the last observation in that state. When
  an observation disagrees, the change carries both bounds of the true transition: the last
  observation in the old state (``last_good_mono_s``) and the first in the new one
  (``first_bad_mono_s``). The first observation of a target is a change from ``unknown``
  with no lower bound, so the ledger always records the initial state.
- :class:`Aggregator` and :class:`MetricAggregator`: per-interval summaries. Monitors
  observe often (every 0.2 s, per target) but must not write every observation to the
  ledger: an aggregator counts observations, failures and latencies per target and, when
  flushed, emits one ``monitor.sample`` per target that had observations (count, failures,
  latency min/median/max); the metric one does the same for named numeric series
  (``monitor.metric``), e.g. Nagios performance data.
- :class:`SummaryConfig` and :class:`ReportCadence`: the poll cadence of those summaries,
  ``report_interval_s``, never more often than the monitor polls (``interval_s``).

A monitor polls, observes into the tracker and the aggregator, and flushes when the cadence
says so::

    def poll(self) -> None:
        now = time.monotonic()
        ok = self._probe()
        self.tracker.emit("endpoint:volumev3", State.UP if ok else State.DOWN, now)
        self.aggregator.add("endpoint:volumev3", ok=ok)
        if self.reports.due(now):
            self.aggregator.flush(self.ctx)
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field

from osha.messages.monitor import Metric, Sample, State, StateChange
from osha.plugin import MonitorConfig, PluginContext

__all__ = [
    "UNSENT",
    "Aggregator",
    "MetricAggregator",
    "ReportCadence",
    "SampleSummary",
    "StateTracker",
    "SummaryConfig",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryConfig(MonitorConfig):
    """Settings of a monitor that writes per-interval summaries: ``report_interval_s`` (how
    often ``monitor.sample``/``monitor.metric`` summaries are written)."""

    report_interval_s: float = 1.0


class ReportCadence:
    """When to flush the summaries: at the first poll, then every ``report_interval_s`` but
    never more often than every ``interval_s``. Not thread-safe: ask from the poll thread."""

    def __init__(self, report_interval_s: float, interval_s: float) -> None:
        self.period_s = max(report_interval_s, interval_s)
        self._next_mono_s = 0.0

    @classmethod
    def of(cls, config: SummaryConfig) -> ReportCadence:
        return cls(config.report_interval_s, config.interval_s)

    def due(self, now_mono_s: float | None = None) -> bool:
        """True (and the next report is one period later) if a report is due at
        ``now_mono_s`` (default: now)."""
        now = time.monotonic() if now_mono_s is None else now_mono_s
        if now < self._next_mono_s:
            return False
        self._next_mono_s = now + self.period_s
        return True


# -- state changes ------------------------------------------------------------------------


UNSENT: tuple[str, int, float, float] = ("", 0, 0.0, 0.0)
"""The envelope of a :class:`~osha.messages.monitor.StateChange` the tracker observed but has
not sent (``observe``): ``send`` emits its fields in a message stamped then."""


@dataclass(slots=True)
class _Entry:
    state: State
    last_seen_mono_s: float


class StateTracker:
    """Thread-safe. ``observe`` returns the change it caused, if any, as an unsent
    :class:`~osha.messages.monitor.StateChange` (envelope :data:`UNSENT`); ``emit`` also
    sends it through a plugin context."""

    def __init__(self, ctx: PluginContext | None = None) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def state(self, target: str) -> State:
        with self._lock:
            entry = self._entries.get(target)
            return entry.state if entry else State.UNKNOWN

    def states(self) -> dict[str, State]:
        with self._lock:
            return {t: e.state for t, e in self._entries.items()}

    def last_seen(self, target: str) -> float | None:
        with self._lock:
            entry = self._entries.get(target)
            return entry.last_seen_mono_s if entry else None

    def observe(
        self,
        target: str,
        state: State,
        at_mono_s: float,
        evidence: str = "",
        *,
        since_mono_s: float | None = None,
    ) -> StateChange | None:
        """Record that ``target`` was in ``state`` at ``at_mono_s``.

        ``since_mono_s`` is an earlier time at which the new state is known to hold already
        (e.g. the start time of a new process): it tightens ``first_bad_mono_s``, but never
        below the last observation in the old state.
        """
        with self._lock:
            entry = self._entries.get(target)
            if entry is None:
                self._entries[target] = _Entry(state, at_mono_s)
                return StateChange(*UNSENT, target, state, State.UNKNOWN, None, at_mono_s, evidence)
            if entry.state == state:
                entry.last_seen_mono_s = max(entry.last_seen_mono_s, at_mono_s)
                return None
            last_good = entry.last_seen_mono_s
            first_bad = at_mono_s
            if since_mono_s is not None:
                first_bad = min(at_mono_s, max(since_mono_s, last_good))
            first_bad = max(first_bad, last_good)
            previous = entry.state
            change = StateChange(*UNSENT, target, state, previous, last_good, first_bad, evidence)
            entry.state = state
            entry.last_seen_mono_s = at_mono_s
            return change

    def emit(
        self,
        target: str,
        state: State,
        at_mono_s: float,
        evidence: str = "",
        *,
        since_mono_s: float | None = None,
    ) -> StateChange | None:
        """``observe``, then emit the change (if any) as a ``monitor.state`` message."""
        change = self.observe(target, state, at_mono_s, evidence, since_mono_s=since_mono_s)
        if change is not None:
            self.send(change)
        return change

    def send(self, change: StateChange) -> None:
        """Emit an observed change, stamped now, through the context given at construction."""
        if self._ctx is None:
            raise RuntimeError("StateTracker was built without a plugin context; pass ctx=")
        self._ctx.emit(
            StateChange,
            target=change.target,
            state=change.state,
            previous=change.previous,
            last_good_mono_s=change.last_good_mono_s,
            first_bad_mono_s=change.first_bad_mono_s,
            evidence=change.evidence,
        )

    def touch(self, target: str, at_mono_s: float) -> None:
        """Record that ``target`` is still in its current state at ``at_mono_s`` (e.g. an
        agent's heartbeat that re-confirms everything it watches). No-op for new targets."""
        with self._lock:
            entry = self._entries.get(target)
            if entry is not None and at_mono_s > entry.last_seen_mono_s:
                entry.last_seen_mono_s = at_mono_s

    def forget(self, target: str) -> None:
        """Stop tracking a target (it left the inventory)."""
        with self._lock:
            self._entries.pop(target, None)


# -- per-interval summaries ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SampleSummary:
    target: str
    count: int
    failures: int
    latency_min_s: float | None
    latency_median_s: float | None
    latency_max_s: float | None


@dataclass(slots=True)
class _Bucket:
    count: int = 0
    failures: int = 0
    latencies_s: list[float] = field(default_factory=list)


class Aggregator:
    """Thread-safe accumulation of observations per target; ``drain`` empties it.

    ``max_latencies`` bounds the memory per target and interval: past it, latencies are
    still counted but only every other one is kept (the median stays representative).
    """

    def __init__(self, max_latencies: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._max = max_latencies

    def add(self, target: str, *, ok: bool, latency_s: float | None = None) -> None:
        with self._lock:
            bucket = self._buckets.get(target)
            if bucket is None:
                bucket = self._buckets[target] = _Bucket()
            bucket.count += 1
            if not ok:
                bucket.failures += 1
            if latency_s is not None:
                if len(bucket.latencies_s) >= self._max:
                    del bucket.latencies_s[::2]
                bucket.latencies_s.append(latency_s)

    def drain(self) -> list[SampleSummary]:
        """Summaries of everything added since the last drain, in target order."""
        with self._lock:
            buckets, self._buckets = self._buckets, {}
        out = []
        for target in sorted(buckets):
            b = buckets[target]
            lat = b.latencies_s
            out.append(
                SampleSummary(
                    target,
                    b.count,
                    b.failures,
                    min(lat) if lat else None,
                    statistics.median(lat) if lat else None,
                    max(lat) if lat else None,
                )
            )
        return out

    def flush(self, ctx: PluginContext) -> int:
        """Drain and emit one ``monitor.sample`` per target; return how many were emitted."""
        summaries = self.drain()
        for s in summaries:
            ctx.emit(
                Sample,
                target=s.target,
                count=s.count,
                failures=s.failures,
                latency_min_s=s.latency_min_s,
                latency_median_s=s.latency_median_s,
                latency_max_s=s.latency_max_s,
            )
        return len(summaries)


class MetricAggregator:
    """Thread-safe accumulation of numeric series per (target, name); ``flush`` emits
    one ``monitor.metric`` per series seen since the last flush."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], tuple[str, list[float]]] = {}

    def add(self, target: str, name: str, value: float, unit: str = "") -> None:
        with self._lock:
            key = (target, name)
            entry = self._series.get(key)
            if entry is None:
                self._series[key] = (unit, [value])
            elif len(entry[1]) < 10_000:
                entry[1].append(value)

    def flush(self, ctx: PluginContext) -> int:
        with self._lock:
            series, self._series = self._series, {}
        for (target, name), (unit, values) in sorted(series.items()):
            ctx.emit(
                Metric,
                target=target,
                name=name,
                unit=unit,
                count=len(values),
                last=values[-1],
                min=min(values),
                median=statistics.median(values),
                max=max(values),
            )
        return len(series)
