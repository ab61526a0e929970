"""Compare two analyses side by side: the same metrics, A, B and the delta (B - A).

Subjects are paired by name: targets by (target, monitor), runners by id, faults by their
label and occurrence (the 2nd ``kill nova-scheduler@ctl-1`` of A against the 2nd of B), SLOs
by result name. A subject present on one side only shows an empty other side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from osha.analysis._result import Analysis
from osha.analysis.model import FaultReport, RunnerReport, TargetReport
from osha.messages import Phase

__all__ = [
    "Comparison",
    "Row",
    "compare",
    "fault_downtime_s",
    "fault_recovery_s",
    "injected",
    "occurrences",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Row:
    """One metric of one subject on both sides. ``better`` says which way is good."""

    section: str
    subject: str
    metric: str
    unit: str
    a: float | None
    b: float | None
    better: str  # "lower" or "higher"

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def change(self) -> str:
        """``better``, ``worse`` or ``same`` (``""`` when a side is missing)."""
        d = self.delta
        if d is None:
            return ""
        if abs(d) < 1e-9:
            return "same"
        return "better" if (d < 0) == (self.better == "lower") else "worse"


@dataclass(frozen=True, slots=True)
class Comparison:
    a: Analysis
    b: Analysis
    rows: tuple[Row, ...]


def _num(obj: object, attr: str) -> float | None:
    """``obj.attr`` as a float, None if ``obj`` is None or the value is None."""
    if obj is None:
        return None
    value = getattr(obj, attr)
    return None if value is None else float(value)


def occurrences(items: Iterable[T], key: Callable[[T], str]) -> dict[str, T]:
    """``items`` by ``key(item)``, in order; the 2nd item with the same key is ``"KEY (2)"``,
    the 3rd ``"KEY (3)"``: how subjects are paired across runs (here and in
    :mod:`osha.analysis.aggregate`)."""
    out: dict[str, T] = {}
    seen: dict[str, int] = {}
    for item in items:
        k = key(item)
        seen[k] = seen.get(k, 0) + 1
        out[k if seen[k] == 1 else f"{k} ({seen[k]})"] = item
    return out


def _pairs(
    a: Iterable[object], b: Iterable[object], key: Callable[[object], str]
) -> list[tuple[str, object | None, object | None]]:
    left, right = occurrences(a, key), occurrences(b, key)
    keys = list(left) + [k for k in right if k not in left]
    return [(k, left.get(k), right.get(k)) for k in keys]


def _target_rows(a: Analysis, b: Analysis) -> list[Row]:
    rows = []

    def key(t: object) -> str:
        assert isinstance(t, TargetReport)
        return f"{t.target} by {t.monitor}"

    for name, ta, tb in _pairs(a.targets, b.targets, key):
        ra = ta if isinstance(ta, TargetReport) else None
        rb = tb if isinstance(tb, TargetReport) else None
        rows += [
            Row("targets", name, "downtime", "s", _num(ra, "downtime_s"), _num(rb, "downtime_s"),
                "lower"),
            Row("targets", name, "outages", "", _num(ra, "episode_count"),
                _num(rb, "episode_count"), "lower"),
            Row("targets", name, "availability", "", _num(ra, "availability"),
                _num(rb, "availability"), "higher"),
        ]  # fmt: skip
    return rows


def _runner_rows(a: Analysis, b: Analysis) -> list[Row]:
    rows = []

    def key(r: object) -> str:
        assert isinstance(r, RunnerReport)
        return r.runner

    def p95(r: RunnerReport | None, phase: Phase) -> float | None:
        stats = next((p for p in r.phases if p.phase == phase), None) if r else None
        return stats.p95_s if stats else None

    def mttr(r: RunnerReport | None) -> float | None:
        return None if r is None else max((s.length_s for s in r.degraded), default=0.0)

    def ratio(r: RunnerReport | None) -> float | None:
        if r is None:
            return None
        return max((s.degradation_ratio or 1.0 for s in r.degraded), default=1.0)

    for name, xa, xb in _pairs(a.runners, b.runners, key):
        ra = xa if isinstance(xa, RunnerReport) else None
        rb = xb if isinstance(xb, RunnerReport) else None
        rows += [
            Row("runners", name, "success", "", _num(ra, "success"), _num(rb, "success"), "higher"),
            Row("runners", name, "baseline mean", "s", _num(ra, "baseline_mean_s"),
                _num(rb, "baseline_mean_s"), "lower"),
            Row("runners", name, "chaos p95", "s", p95(ra, Phase.CHAOS), p95(rb, Phase.CHAOS),
                "lower"),
            Row("runners", name, "MTTR (longest)", "s", mttr(ra), mttr(rb), "lower"),
            Row("runners", name, "degradation ratio", "", ratio(ra), ratio(rb), "lower"),
        ]  # fmt: skip
    return rows


def injected(a: Analysis) -> list[FaultReport]:
    """The faults of ``a`` that were injected, in order."""
    return [f for f in a.faults if f.injected_s is not None]


def fault_recovery_s(f: FaultReport) -> float | None:
    """A fault's time to recover: the longest of its targets' (0.0 if it took none down);
    None if one of them never recovered."""
    if any(not t.recovered for t in f.targets):
        return None
    return max((t.recovery_s or 0.0 for t in f.targets), default=0.0)


def fault_downtime_s(f: FaultReport) -> float:
    """A fault's target downtime: the sum over the targets it took down."""
    return sum(t.downtime_s for t in f.targets)


def _fault_rows(a: Analysis, b: Analysis) -> list[Row]:
    rows = []

    def key(f: object) -> str:
        assert isinstance(f, FaultReport)
        return f.label

    def recovery(f: FaultReport | None) -> float | None:
        return None if f is None else fault_recovery_s(f)

    def downtime(f: FaultReport | None) -> float | None:
        return None if f is None else fault_downtime_s(f)

    for name, xa, xb in _pairs(injected(a), injected(b), key):
        fa = xa if isinstance(xa, FaultReport) else None
        fb = xb if isinstance(xb, FaultReport) else None
        rows += [
            Row("faults", name, "detection", "s", _num(fa, "detection_s"), _num(fb, "detection_s"),
                "lower"),
            Row("faults", name, "time to recover", "s", recovery(fa), recovery(fb), "lower"),
            Row("faults", name, "target downtime", "s", downtime(fa), downtime(fb), "lower"),
        ]  # fmt: skip
    return rows


def compare(a: Analysis, b: Analysis) -> Comparison:
    """Pair the metrics of two analyses."""
    rows = [
        Row("verdict", "run", "exit code", "", float(a.verdict.exit_code),
            float(b.verdict.exit_code), "lower"),
    ]  # fmt: skip
    rows += _target_rows(a, b) + _runner_rows(a, b) + _fault_rows(a, b)
    slo_a = {r.name: r for r in a.verdict.results}
    slo_b = {r.name: r for r in b.verdict.results}
    for name in list(slo_a) + [n for n in slo_b if n not in slo_a]:
        ra, rb = slo_a.get(name), slo_b.get(name)
        better = "higher" if name.startswith("min_") else "lower"
        rows.append(Row("slo", name, "value", "", _num(ra, "value"), _num(rb, "value"), better))
    return Comparison(a, b, tuple(rows))
