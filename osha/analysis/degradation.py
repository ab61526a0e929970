"""Degradation with its 95 % confidence interval: a stretch's mean duration against the
baseline's, for a runner's whole iterations and for each of its atomic actions.

The method is the OpenStack performance-docs "Reliability testing, version 2" one, as its
reference tool (rally-runners ``analytics.py``, ``calculate_degradation_area``) computes it,
the difference between two means (onlinestatbook, "Difference between Two Means"):

- baseline: ``n_b`` durations, mean ``m_b``, variance ``v_b``; stretch: ``n_s``, ``m_s``,
  ``v_s`` (population variances, divided by n, as numpy's ``var`` in the reference);
- **absolute degradation** ``d = m_s - m_b``, standard error ``se = √(v_s/n_s + v_b/n_b)``,
  ``n_b + n_s - 2`` degrees of freedom; its 95 % interval is ``d ± t(0.975, dof)·se``;
- **relative degradation** ``r = m_s / m_b``, its interval ``r ± t(0.975, dof)·se / m_b``.

Student's t comes from :mod:`osha.analysis.student`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from osha.analysis.student import t_quantile

__all__ = ["AtomicBaseline", "AtomicDegradation", "MeanDifference", "Moments"]

CONFIDENCE = 0.95


@functools.lru_cache(maxsize=4096)
def _t_factor(dof: int) -> float:
    """The two-sided ``CONFIDENCE`` quantile of Student's t: about 0.5 ms a computation, and
    a report asks for the same few degrees of freedom again and again (a runner's baseline
    count plus its stretches' sizes)."""
    return t_quantile((1.0 + CONFIDENCE) / 2.0, dof)


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and population standard deviation of some durations."""

    count: int
    mean_s: float
    std_s: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Moments:
        """Their moments (at least one value)."""
        if not values:
            raise ValueError("the moments of no value")
        mean = math.fsum(values) / len(values)
        var = math.fsum((v - mean) ** 2 for v in values) / len(values)
        return cls(len(values), mean, math.sqrt(var))


@dataclass(frozen=True, slots=True)
class MeanDifference:
    """A stretch's mean against the baseline's, with the half-widths of their 95 % intervals
    (None when the degrees of freedom are fewer than one)."""

    mean_s: float
    degradation_s: float
    degradation_bound_s: float | None
    degradation_ratio: float | None  # None: the baseline mean is not positive
    degradation_ratio_bound: float | None

    @classmethod
    def between(cls, base: Moments, stretch: Moments) -> MeanDifference:
        diff = stretch.mean_s - base.mean_s
        dof = base.count + stretch.count - 2
        half: float | None = None
        if dof >= 1:
            se = math.sqrt(stretch.std_s**2 / stretch.count + base.std_s**2 / base.count)
            half = _t_factor(dof) * se
        positive = base.mean_s > 0
        return cls(
            mean_s=stretch.mean_s,
            degradation_s=diff,
            degradation_bound_s=half,
            degradation_ratio=stretch.mean_s / base.mean_s if positive else None,
            degradation_ratio_bound=half / base.mean_s if positive and half is not None else None,
        )


@dataclass(frozen=True, slots=True)
class AtomicBaseline:
    """One atomic action of a runner (``nova.boot_server``) in the baseline: its good
    iterations after the warm-up that carry it."""

    action: str
    count: int
    mean_s: float | None  # None: fewer than two values
    std_s: float | None


@dataclass(frozen=True, slots=True)
class AtomicDegradation:
    """One atomic action in a degraded stretch, against its own baseline: ``boot_server``
    tripled (ratio 3.0) while ``delete_server`` did not move (ratio about 1, its interval
    holding 1)."""

    action: str
    iterations: int  # the stretch's good iterations that carry the action
    mean_s: float | None
    degradation_s: float | None  # absolute: mean - baseline mean
    degradation_bound_s: float | None  # ± half-width of its 95 % t-interval
    degradation_ratio: float | None  # relative: mean / baseline mean
    degradation_ratio_bound: float | None

    @classmethod
    def of(cls, action: str, base: Moments | None, values: Sequence[float]) -> AtomicDegradation:
        if not values:
            return cls(action, 0, None, None, None, None, None)
        stretch = Moments.of(values)
        if base is None or base.count < 2:
            return cls(action, stretch.count, stretch.mean_s, None, None, None, None)
        d = MeanDifference.between(base, stretch)
        return cls(action, stretch.count, d.mean_s, d.degradation_s, d.degradation_bound_s,
                   d.degradation_ratio, d.degradation_ratio_bound)  # fmt: skip
