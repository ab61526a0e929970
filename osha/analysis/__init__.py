"""Analysis: replay a ledger into HA metrics and judge them against SLOs.

The metrics follow the OpenStack performance-docs test plan "OpenStack reliability testing,
version 2" (service downtime, MTTR, absolute and relative performance degradation, with the
sliding-window method of its reference tool), extended with detection time, availability and
per-target time to recover; each is defined where it is computed:

- detection time, time to recover: :mod:`osha.analysis._impact`;
- service downtime and its ± bound, availability: :class:`~osha.analysis.model.Episode`,
  :mod:`osha.analysis._targets`;
- runner baseline, downtime, MTTR (sliding window), degradation: :mod:`osha.analysis._runners`;
- soak cycles (per-cycle faults, outages, MTTR, availability, osha's RSS) and their trends:
  :mod:`osha.analysis._cycles`;
- clocks and bounds: :mod:`osha.analysis.model`; SLOs and the verdict: :mod:`osha.analysis.slo`;
- a run still being written, judged again and again, each record read once (a soak's
  ``abort_on_breach``): :class:`LiveJudge`;
- repeated runs of one profile, per fault n, mean, sd and 95 % t-interval, and the runs a
  target half-width needs: :mod:`osha.analysis.aggregate`.

Usage (this is what the campaign does at its verdict phase)::

    from osha.analysis import analyze
    verdict = analyze(run_dir, slo=spec).verdict
    verdict.exit_code, verdict.summary, verdict.slos_dict()
"""

from __future__ import annotations

from osha.analysis._cycles import rss_slope_per_h, trend
from osha.analysis._live import LiveJudge
from osha.analysis._result import Analysis, analyze, recorded_slo
from osha.analysis._vips import VipMove
from osha.analysis.compare import Comparison, Row, compare
from osha.analysis.model import (
    ActorReport,
    CycleRow,
    Detection,
    Episode,
    FaultReport,
    FaultStatus,
    PhaseSpan,
    PhaseStats,
    RecoveryFrom,
    RunInfo,
    RunnerImpact,
    RunnerReport,
    SoakSummary,
    Stretch,
    TargetImpact,
    TargetReport,
)
from osha.analysis.options import AnalysisOptions
from osha.analysis.slo import (
    SloError,
    SloResult,
    SloSpec,
    Verdict,
    apply_overrides,
    load_slo_file,
    slo_from_table,
)

__all__ = [
    "ActorReport",
    "Analysis",
    "AnalysisOptions",
    "Comparison",
    "CycleRow",
    "Detection",
    "Episode",
    "FaultReport",
    "FaultStatus",
    "LiveJudge",
    "PhaseSpan",
    "PhaseStats",
    "RecoveryFrom",
    "Row",
    "RunInfo",
    "RunnerImpact",
    "RunnerReport",
    "SloError",
    "SloResult",
    "SloSpec",
    "SoakSummary",
    "Stretch",
    "TargetImpact",
    "TargetReport",
    "Verdict",
    "VipMove",
    "analyze",
    "apply_overrides",
    "compare",
    "load_slo_file",
    "recorded_slo",
    "rss_slope_per_h",
    "slo_from_table",
    "trend",
]
