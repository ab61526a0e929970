"""How the analysis computes its metrics: the knobs, with the community's defaults.

The sliding-window defaults (window 21, k = 4, warm-up 10, clusters with gaps of at most 6
and at least 3 windows wide) are those of the OpenStack performance-docs "Reliability testing,
version 2" test plan, as implemented by its reference tool (rally-runners ``analytics.py``:
``WINDOW_SIZE``, ``DEGRADATION_THRESHOLD``, ``WARM_UP_CUTOFF``, ``MAX_CLUSTER_GAP``,
``MIN_CLUSTER_WIDTH``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["AnalysisOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisOptions:
    """Parameters of the metrics. Every field has a documented default.

    - ``window``: iterations in the sliding mean of a runner's operation duration (21);
    - ``k``: a window is degraded when its mean exceeds baseline mean + ``k``·sd (4);
    - ``warm_up``: first iterations of each runner left out of its baseline (10);
    - ``cluster_max_gap``: good windows (or good iterations, for error clusters) allowed inside
      one degraded stretch or one error cluster before it splits (6);
    - ``cluster_min_width``: a degraded stretch spans at least this many windows beyond its
      first (3), so that one noisy window is not a degradation;
    - ``steady_s``: a target is *steadily* healthy again once it has stayed up this long (10 s);
      an outage that starts sooner after the previous one ends belongs to the same recovery;
    - ``attribution_s``: how long after its revert (or the end of the run, if never reverted)
      a fault still owns new outages and degradations (60 s);
    - ``clock_slack_s``: tolerance when comparing times converted between the wall and the
      monotonic clock (0.1 s);
    - ``max_episodes``: outages kept in detail per target; totals stay exact beyond it (10,000);
    - ``max_plot_points``: good iterations per runner kept for the plot, evenly strided (20,000);
    - ``live_at_wall_s``: judge a run that is still going, as of this wall time: a fault still
      held within its revert deadline is ``held`` (in flight, e.g. a soak cycle's overrun),
      not ``unreverted`` (a soak's ``abort_on_breach`` judgement; None: the run is over);
    - ``accept_damaged``: judge the intact part of a damaged ledger as if it were whole (the
      verdict says so); by default a damaged ledger is never a pass (False).
    """

    window: int = 21
    k: float = 4.0
    warm_up: int = 10
    cluster_max_gap: int = 6
    cluster_min_width: int = 3
    steady_s: float = 10.0
    attribution_s: float = 60.0
    clock_slack_s: float = 0.1
    max_episodes: int = 10_000
    max_plot_points: int = 20_000
    live_at_wall_s: float | None = None
    accept_damaged: bool = False

    def __post_init__(self) -> None:
        for name in ("k", "steady_s", "attribution_s", "clock_slack_s"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)}: must be a finite number")
        if self.window < 1:
            raise ValueError(f"window={self.window}: must be at least 1")
        if self.k < 0 or self.warm_up < 0:
            raise ValueError("k and warm_up must be >= 0")
        if self.cluster_max_gap < 0 or self.cluster_min_width < 0:
            raise ValueError("cluster_max_gap and cluster_min_width must be >= 0")
        if self.steady_s < 0 or self.attribution_s < 0 or self.clock_slack_s < 0:
            raise ValueError("steady_s, attribution_s and clock_slack_s must be >= 0")
        if self.max_episodes < 1 or self.max_plot_points < 1:
            raise ValueError("max_episodes and max_plot_points must be at least 1")
