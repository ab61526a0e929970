"""Runner iterations: compact storage, baseline, error clusters and the sliding-window method.

Each runner keeps its iterations as three compact arrays (start time, duration, ok): 17 bytes
an iteration, so a day of one iteration a second is about 1.5 MB; and each atomic action
(Rally's ``nova.boot_server``, ...) as one more array of 4-byte floats aligned with them (NaN
where an iteration did not run it): 4 bytes an iteration per action, at most ``MAX_ATOMICS``
actions a runner. Nothing else is kept.

The method follows the OpenStack performance-docs "Reliability testing, version 2" plan and
its reference implementation (rally-runners ``analytics.py``):

- **baseline**: the good iterations that started after the first ``warm_up`` iterations and
  ended before the first fault (or the chaos phase); their mean and standard deviation sd;
- **error clusters** (service downtime of a runner): failed iterations in start order, grouped
  while at most ``cluster_max_gap`` good iterations separate them; a cluster lasts from its
  first to its last error, each widened by half the gap to the neighbouring iteration, ± the
  sum of those halves;
- **degraded stretches** (MTTR of a runner): the sliding mean over ``window`` consecutive good
  iterations exceeds baseline mean + k·sd; degraded windows are grouped like clusters (gaps of
  at most ``cluster_max_gap`` windows, at least ``cluster_min_width`` windows beyond the
  first). The raw stretch runs between window centres (``window_span_s``), which blurs each
  edge by up to half a window; osha reports the stretch between the first and the last
  iteration inside it that exceed the threshold themselves, widened like an error cluster
  (MTTR ± bound). Its **absolute degradation** is the mean duration of its good iterations
  minus the baseline mean, its **relative degradation** their ratio, each with its 95 %
  t-interval (:mod:`osha.analysis.degradation`);
- **atomic actions**: each action's baseline (the baseline's iterations that ran it) and, in
  each degraded stretch, its degradation against that baseline with the same intervals.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeGuard

from osha.analysis.degradation import AtomicBaseline, AtomicDegradation, MeanDifference, Moments
from osha.analysis.model import PhaseSpan, PhaseStats, Stretch
from osha.analysis.options import AnalysisOptions
from osha.messages import RunnerIteration, RunnerStatus, RunnerUnfinished

__all__ = ["MAX_ATOMICS", "Baseline", "RunnerSeries", "clusters", "percentile", "series_of"]

#: atomic actions analysed per runner: a workload that names more (a scenario repeating an
#: action, each repeat named ``action (n)``) has the rest counted, not kept
MAX_ATOMICS = 32
_NAN = math.nan
_FLOAT32_MAX = 3.4e38


def _duration(value: object) -> TypeGuard[float]:
    """A number a float32 array can hold: finite, not a bool, not beyond float32's range."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and abs(value) < _FLOAT32_MAX)  # fmt: skip


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of sorted values, linearly interpolated (numpy's
    default method)."""
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def clusters(flags: Sequence[bool], max_gap: int, min_width: int) -> Iterator[tuple[int, int]]:
    """Index ranges ``(first, last)`` of True runs, merged over gaps of at most ``max_gap``
    Falses, keeping those with ``last - first >= min_width``."""
    start = end = -1
    for i, flag in enumerate(flags):
        if not flag:
            continue
        if start >= 0 and i - end - 1 > max_gap:
            if end - start >= min_width:
                yield start, end
            start = -1
        if start < 0:
            start = i
        end = i
    if start >= 0 and end - start >= min_width:
        yield start, end


class Baseline:
    """Mean and sd of the baseline's good iterations, the degradation threshold, and the
    moments of each atomic action over the same iterations."""

    __slots__ = ("atomics", "count", "mean", "moments", "std", "threshold")

    def __init__(
        self,
        durations: Sequence[float],
        k: float,
        atomics: Mapping[str, Moments | None] | None = None,
    ) -> None:
        self.count = len(durations)
        self.mean: float | None = None
        self.std: float | None = None
        self.threshold: float | None = None
        self.moments = Moments.of(durations) if self.count >= 2 else None
        if self.moments is not None:
            self.mean, self.std = self.moments.mean_s, self.moments.std_s
            self.threshold = self.mean + k * self.std
        #: each action's moments over the baseline's iterations that ran it (None: none did)
        self.atomics: dict[str, Moments | None] = dict(atomics or {})

    def atomic_reports(self) -> tuple[AtomicBaseline, ...]:
        out = []
        for name, m in self.atomics.items():
            if m is None or m.count < 2:
                out.append(AtomicBaseline(name, 0 if m is None else m.count, None, None))
            else:
                out.append(AtomicBaseline(name, m.count, m.mean_s, m.std_s))
        return tuple(out)


class RunnerSeries:
    """Every iteration of one runner, in compact arrays."""

    __slots__ = ("atomics", "atomics_dropped", "dur", "failures", "ok", "runner", "start",
                 "statuses", "unfinished", "workload")  # fmt: skip

    def __init__(self, runner: str, workload: str) -> None:
        self.runner = runner
        self.workload = workload
        self.start = array("d")
        self.dur = array("d")
        self.ok = array("b")
        self.failures = 0
        self.statuses: list[str] = []
        #: per action, its duration in each iteration (NaN: not run), in first-seen order;
        #: an array may lag behind the iterations until :meth:`sort` pads it
        self.atomics: dict[str, array[float]] = {}
        self.atomics_dropped: set[str] = set()
        #: the starts of the iterations the stop cut off (never ended: no duration, no outcome)
        self.unfinished: list[float] = []

    def add(
        self,
        start_s: float,
        duration_s: float,
        ok: bool,
        atomic: Mapping[str, object] | None = None,
    ) -> None:
        """One iteration; ``atomic`` its atomic actions' durations by name (a value that is
        not a finite number counts as not run)."""
        index = len(self.dur)
        self.start.append(start_s)
        self.dur.append(duration_s)
        self.ok.append(ok)
        if not ok:
            self.failures += 1
        if atomic:
            for name, value in atomic.items():
                values = self.atomics.get(name)
                # the usual case first: a float, an action seen in the previous iteration
                if values is not None and len(values) == index and type(value) is float and (
                    -_FLOAT32_MAX < value < _FLOAT32_MAX
                ):
                    values.append(value)
                else:
                    self._add_atomic(index, name, value)

    def _add_atomic(self, index: int, name: str, value: object) -> None:
        if not _duration(value):
            return
        values = self.atomics.get(name)
        if values is None:
            if len(self.atomics) >= MAX_ATOMICS:
                if len(self.atomics_dropped) < 10 * MAX_ATOMICS:  # bounded: a count
                    self.atomics_dropped.add(name)
                return
            values = self.atomics[name] = array("f")
        if len(values) < index:
            values.extend(array("f", [_NAN]) * (index - len(values)))
        values.append(value)

    def cut_off(self, start_s: float) -> None:
        """An iteration that started at ``start_s`` and never ended (``runner.unfinished``)."""
        self.unfinished.append(start_s)

    def status(self, status: str) -> None:
        if len(self.statuses) < 100:
            self.statuses.append(status)

    def sort(self) -> None:
        """Order by start time (iterations are recorded as they end, concurrently), and pad
        the atomic actions to every iteration."""
        n = len(self.dur)
        for values in self.atomics.values():
            if len(values) < n:
                values.extend(array("f", [_NAN]) * (n - len(values)))
        s = self.start
        if all(map(operator.le, s, itertools.islice(s, 1, None))):
            return
        order = sorted(range(len(s)), key=s.__getitem__)
        self.start = array("d", map(s.__getitem__, order))
        self.dur = array("d", map(self.dur.__getitem__, order))
        self.ok = array("b", map(self.ok.__getitem__, order))
        for name, values in self.atomics.items():
            self.atomics[name] = array("f", map(values.__getitem__, order))

    def atomic_values(self, indices: Sequence[int]) -> Iterator[tuple[str, array[float]]]:
        """Each action and its durations in the iterations at ``indices`` that ran it (after
        :meth:`sort`), one action at a time (a baseline can hold a million iterations)."""
        for name, values in self.atomics.items():
            yield name, array("d", itertools.filterfalse(math.isnan, map(values.__getitem__,
                                                                          indices)))  # fmt: skip

    def thinned(self, max_points: int) -> tuple[tuple[float, float, bool], ...]:
        """(start, duration, ok) for plotting: good iterations evenly strided down to
        ``max_points``, failures all kept (up to ``max_points``)."""
        good = len(self.dur) - self.failures
        step = max(1, -(-good // max_points))
        out: list[tuple[float, float, bool]] = []
        seen_good = bad = 0
        for t, d, ok in zip(self.start, self.dur, self.ok, strict=True):
            if ok:
                if seen_good % step == 0:
                    out.append((t, d, True))
                seen_good += 1
            elif bad < max_points:
                out.append((t, d, False))
                bad += 1
        return tuple(out)

    # -- metrics (after sort) ---------------------------------------------------------------

    def _baseline_indices(self, end_s: float, options: AnalysisOptions) -> array[int]:
        """The iterations of the baseline: good, after the warm-up, ended by ``end_s``."""
        w = options.warm_up
        ended = map(float(end_s).__ge__, map(operator.add, self.start[w:], self.dur[w:]))
        keep = map(operator.and_, self.ok[w:], ended)  # all in C: a million in ~50 ms
        return array("I", itertools.compress(range(w, len(self.dur)), keep))

    def baseline(self, end_s: float, options: AnalysisOptions) -> Baseline:
        chosen = self._baseline_indices(end_s, options)
        durations = array("d", map(self.dur.__getitem__, chosen))
        atomics = {name: Moments.of(v) if v else None for name, v in self.atomic_values(chosen)}
        return Baseline(durations, options.k, atomics)

    def baseline_size(self, end_s: float, options: AnalysisOptions) -> int:
        """Iterations the method had before ``end_s``: the warm-up ones that ended, whatever
        their outcome (it cuts them anyway), plus the good ones after them."""
        w = options.warm_up
        warm = sum(1 for t, d in zip(self.start[:w], self.dur[:w], strict=True) if t + d <= end_s)
        return warm + len(self._baseline_indices(end_s, options))

    def pace_s(self, end_s: float) -> float | None:
        """Seconds per iteration: the span from the first start to the last end of the
        iterations that ended by ``end_s`` (of all of them if none did), over their count."""
        for bound in (end_s, math.inf):
            count, first, last = 0, math.inf, -math.inf
            for t, d in zip(self.start, self.dur, strict=True):
                if t + d <= bound:
                    count += 1
                    first, last = min(first, t), max(last, t + d)
            if count:
                return (last - first) / count
        return None

    def phase_stats(self, phase: PhaseSpan, end_s: float) -> PhaseStats:
        stop = phase.end_s if phase.end_s is not None else end_s
        # sorted by start: the phase's iterations are one slice
        lo = bisect.bisect_left(self.start, phase.start_s)
        hi = max(lo, bisect.bisect_left(self.start, stop))
        ok = self.ok[lo:hi]
        good = sorted(itertools.compress(self.dur[lo:hi], ok))
        count = hi - lo
        failures = count - len(good)
        return PhaseStats(
            phase=phase.name,
            iterations=count,
            failures=failures,
            mean_s=math.fsum(good) / len(good) if good else None,
            p50_s=percentile(good, 50),
            p95_s=percentile(good, 95),
            p99_s=percentile(good, 99),
            max_s=good[-1] if good else None,
        )

    def error_clusters(self, options: AnalysisOptions) -> list[Stretch]:
        t = self.start
        flags = [not ok for ok in self.ok]
        out = []
        for a, b in clusters(flags, options.cluster_max_gap, 0):
            errors = sum(flags[a : b + 1])
            out.append(_stretch(t, a, b, errors))
        return out

    def degraded(self, base: Baseline, options: AnalysisOptions) -> list[Stretch]:
        """Degraded stretches by the sliding-window method (empty without a baseline)."""
        if base.threshold is None or base.moments is None:
            return []
        threshold, w, moments = base.threshold, options.window, base.moments
        times = array("d", (t for t, ok in zip(self.start, self.ok, strict=True) if ok))
        durs = array("d", (d for d, ok in zip(self.dur, self.ok, strict=True) if ok))
        good: array[int] | None = None  # good iteration -> its index, built if needed
        n = len(durs)
        if n < w:
            return []
        t_sum = math.fsum(times[:w])
        d_sum = math.fsum(durs[:w])
        centres = array("d", [t_sum / w])
        flags = [d_sum / w > threshold]
        for j in range(1, n - w + 1):
            t_sum += times[j + w - 1] - times[j - 1]
            d_sum += durs[j + w - 1] - durs[j - 1]
            centres.append(t_sum / w)
            flags.append(d_sum / w > threshold)
        out = []
        for a, b in clusters(flags, options.cluster_max_gap, options.cluster_min_width):
            first_i, last_i = a, b + w - 1
            hot = [i for i in range(first_i, last_i + 1) if durs[i] > threshold]
            if hot:
                first_i, last_i = hot[0], hot[-1]
                stretch = _stretch(times, first_i, last_i, len(hot))
            else:  # the mean is high but no single iteration is: keep the window span
                stretch = Stretch(centres[a], centres[b], 0.0, last_i - first_i + 1, times[a])
            inside = durs[first_i : last_i + 1]
            if good is None:
                good = array("I", (i for i, ok in enumerate(self.ok) if ok) if self.atomics else ())
            out.append(self._degraded_stretch(
                stretch, inside, moments=moments, base=base, indices=good[first_i : last_i + 1],
                window_span_s=centres[b] - centres[a]))  # fmt: skip
        return out

    def _degraded_stretch(
        self,
        edges: Stretch,
        inside: Sequence[float],
        *,
        moments: Moments,
        base: Baseline,
        indices: Sequence[int],
        window_span_s: float,
    ) -> Stretch:
        """``edges`` with the degradation of the good iterations ``inside`` it (at
        ``indices``) against the baseline, and that of each atomic action."""
        diff = MeanDifference.between(moments, Moments.of(inside))
        atomics = tuple(
            AtomicDegradation.of(name, base.atomics.get(name), values)
            for name, values in self.atomic_values(indices)
        )
        return Stretch(
            start_s=edges.start_s,
            end_s=edges.end_s,
            bound_s=edges.bound_s,
            iterations=len(inside),
            first_s=edges.first_s,
            mean_duration_s=diff.mean_s,
            degradation_s=diff.degradation_s,
            degradation_ratio=diff.degradation_ratio,
            window_span_s=window_span_s,
            degradation_bound_s=diff.degradation_bound_s,
            degradation_ratio_bound=diff.degradation_ratio_bound,
            atomics=atomics,
        )


def _stretch(t: Sequence[float], a: int, b: int, count: int) -> Stretch:
    """From item ``a`` to item ``b``, each edge widened by half the gap to its neighbour."""
    before = (t[a] - t[a - 1]) / 2 if a > 0 else 0.0
    after = (t[b + 1] - t[b]) / 2 if b + 1 < len(t) else 0.0
    return Stretch(t[a] - before, t[b] + after, before + after, count, t[a])


def series_of(runners: dict[str, RunnerSeries], msg: RunnerIteration | RunnerStatus
              | RunnerUnfinished) -> RunnerSeries:  # fmt: skip
    """The series of the runner that sent ``msg``, made at its first record."""
    series = runners.get(msg.sender)
    if series is None:
        series = runners[msg.sender] = RunnerSeries(msg.sender, msg.runner)
    return series
