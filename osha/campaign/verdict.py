"""The verdict: the campaign's own ledger, judged by :func:`osha.analysis.analyze`.

The live verdict is computed exactly as ``osha report`` computes it, from the ledger (synced
first), so the two agree by construction: the same SLOs, values, summary and exit code. An
aborted campaign is one whose validate, preflight, load, baseline or chaos phase ended with
``ok = false`` (Ctrl-C, ``osha campaign stop``, escalation, a failed health gate): exit 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osha.analysis import SloSpec, analyze
from osha.report import render_verdict

__all__ = ["Judgement", "judge"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """What ``campaign.verdict`` records."""

    passed: bool
    exit_code: int
    slos: dict[str, Any]
    summary: str
    #: the SLO table exactly as ``osha report`` prints it (:func:`osha.report.render_verdict`)
    rendered: str = ""


def judge(run_dir: Path, slo: SloSpec | None) -> Judgement:
    """Judge the run's ledger against ``slo`` (None: the ``[slo]`` the ledger's header
    recorded, as ``osha report`` does)."""
    verdict = analyze(run_dir, slo=slo).verdict
    return Judgement(
        verdict.passed,
        verdict.exit_code,
        verdict.slos_dict(),
        verdict.summary,
        render_verdict(verdict),
    )
