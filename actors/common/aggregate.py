"""Per-interval summaries: many observations in, one compact message per target out.

Monitors observe often (every 0.2 s, per target) but must not write every observation to the
ledger. :class:`Aggregator` counts observations, failures and latencies per target and, when
flushed, emits one ``monitor.sample`` per target that had observations (count, failures,
latency min/median/max). :class:`MetricAggregator` does the same for named numeric series
(``monitor.metric``), e.g. Nagios performance data.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field

from osha.messages.monitor import Metric, Sample
from osha.plugin import PluginContext

__all__ = ["Aggregator", "MetricAggregator", "SampleSummary"]


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
