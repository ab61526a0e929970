"""A runner baseline too short for the sliding-window method, and by how much.

The method (see :mod:`osha.analysis._runners`) leaves out the first ``warm_up`` iterations of
a runner and needs ``window`` good iterations after them in the baseline; with fewer, the
report's baseline, MTTR and degradation of that runner are missing or unreliable. A
:class:`BaselineShortfall` says so with the numbers an operator needs: how many iterations the
baseline held, how many the method needs, and how long ``baseline_s`` must be at the runner's
pace (seconds per iteration, observed in a run or assumed before one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ASSUMED_PACE_S", "BaselineShortfall", "shortfall"]

#: seconds per iteration assumed by ``osha campaign validate`` when no ledger gives a runner's
#: pace: about one Rally boot-and-delete of a tiny server on the lab at concurrency 2
ASSUMED_PACE_S = 3.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineShortfall:
    """``iterations`` (the warm-up included) fell short of ``warm_up + window``."""

    iterations: int
    warm_up: int
    window: int
    pace_s: float | None  # seconds per iteration; None: no iteration to measure it on
    baseline_s: float | None  # the baseline's length (s); None: unknown
    pace_source: str = "observed"  # "observed" or "assumed", for the sentence

    @property
    def needed(self) -> int:
        return self.warm_up + self.window

    @property
    def suggested_baseline_s(self) -> float | None:
        """The ``baseline_s`` that holds ``needed`` iterations at ``pace_s`` (whole seconds):
        the current length plus the missing iterations' time, or all of them if the length is
        unknown."""
        if self.pace_s is None:
            return None
        missing = self.needed - self.iterations
        if self.baseline_s is None:
            return float(math.ceil(self.needed * self.pace_s))
        return float(math.ceil(self.baseline_s + missing * self.pace_s))

    @property
    def text(self) -> str:
        head = (
            f"baseline: {self.iterations} iterations, the method needs >= {self.needed} "
            f"(warm-up {self.warm_up} + window {self.window})"
        )
        advice = self.suggested_baseline_s
        if advice is None or self.pace_s is None:
            return (
                f"{head}: no iteration to measure its pace: lengthen baseline_s or lower --window"
            )
        return (
            f"{head}: make baseline_s >= ~{advice:g} s at the {self.pace_source} "
            f"{self.pace_s:.1f} s per iteration, or lower --window"
        )


def shortfall(
    iterations: int,
    *,
    warm_up: int,
    window: int,
    pace_s: float | None,
    baseline_s: float | None,
    pace_source: str = "observed",
) -> BaselineShortfall | None:
    """The shortfall of a baseline of ``iterations`` (warm-up included), or None if enough."""
    if iterations >= warm_up + window:
        return None
    return BaselineShortfall(
        iterations=iterations,
        warm_up=warm_up,
        window=window,
        pace_s=pace_s,
        baseline_s=baseline_s,
        pace_source=pace_source,
    )
