"""Per-cycle metrics of a soak, for the soak's own tooling.

The computation lives in the analysis's one streaming pass (:mod:`osha.analysis._cycles`, fed
message by message like the fault table), so ``osha report`` and this module read the same
numbers: :attr:`osha.analysis.Analysis.soak` holds the rows and their trends. This module keeps
the soak-side names:

- :func:`cycle_rows`: every cycle of a ledger (one :class:`~osha.analysis.CycleRow` each);
- :func:`trend`: the least-squares slope per step (per cycle).

The analysis does not import :mod:`osha.soak` (its guards pull in the self-monitor and
signals), so the dependency runs one way only: soak -> analysis.
"""

from __future__ import annotations

from pathlib import Path

from osha.analysis import AnalysisOptions, CycleRow, SloSpec, analyze, trend

__all__ = ["CycleRow", "cycle_rows", "trend"]


def cycle_rows(run_dir: Path, options: AnalysisOptions | None = None) -> list[CycleRow]:
    """Every soak cycle of a ledger, in order (empty for a ledger that is not a soak).

    One full analysis pass (no objectives are judged, so a bad recorded ``[slo]`` table does
    not get in the way); use :func:`osha.analysis.analyze` directly to get the trends too."""
    soak = analyze(Path(run_dir), slo=SloSpec(), options=options).soak
    return [] if soak is None else list(soak.cycles)
