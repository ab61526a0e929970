"""``osha campaign validate``'s pace check: will each runner's baseline be long enough for the
sliding-window method (warm-up + window iterations, see :mod:`osha.analysis.shortfall`)?

A runner's pace (seconds per iteration) comes from a previous run's ledger when the operator
gives one (``--pace-from LEDGER``), else from a stated assumption
(:data:`~osha.analysis.shortfall.ASSUMED_PACE_S`). Only a warning: the profile stays valid.
"""

from __future__ import annotations

import math
from pathlib import Path

from osha.analysis import AnalysisOptions, analyze
from osha.analysis.shortfall import ASSUMED_PACE_S, shortfall
from osha.profile import Profile

__all__ = ["baseline_warnings"]

ASSUMPTION = (
    f"assumed {ASSUMED_PACE_S:g} s per iteration, about one Rally boot-and-delete of a tiny "
    "server on the lab: give --pace-from LEDGER to use a previous run's pace"
)


def baseline_warnings(prof: Profile, pace_from: Path | None) -> list[str]:
    """One warning per runner whose baseline cannot reach the method's needs at its pace."""
    runners = prof.of_kind("runner")
    if not runners:
        return []
    paces: dict[str, float] = {}
    if pace_from is not None:
        paces = {r.runner: r.pace_s for r in analyze(pace_from).runners if r.pace_s}
    opts = AnalysisOptions()
    baseline_s = prof.campaign.baseline_s
    out = []
    for entry in runners:
        pace_s = paces.get(entry.id)
        if pace_s is not None:
            source, note = "observed", f"pace from {pace_from}"
        else:
            source, note = "assumed", ASSUMPTION
            if pace_from is not None:
                note = f"runner {entry.id} is not in {pace_from}: {ASSUMPTION}"
            pace_s = ASSUMED_PACE_S
        short = shortfall(
            math.floor(baseline_s / pace_s),
            warm_up=opts.warm_up,
            window=opts.window,
            pace_s=pace_s,
            baseline_s=baseline_s,
            pace_source=source,
        )
        if short is not None:
            out.append(
                f"runner {entry.id}, with baseline_s = {baseline_s:g} s: {short.text} ({note})"
            )
    return out
