"""The soak's live judgement, in a child process: ``python -m osha.soak.judge RUN_DIR AT_WALL_S
SLO...`` prints ``{"breached": [names]}``: the results of the named objectives of the ``[slo]``
recorded in the ledger that fail, judged as of ``AT_WALL_S`` (a fault held within its revert
deadline then is in flight, not unreverted: :attr:`osha.analysis.AnalysisOptions.live_at_wall_s`).

The campaign's cycle loop (:mod:`osha.campaign.soak`) runs it at every cycle's end for
``abort_on_breach``: the analysis of a ledger that grows for days must not grow the long-lived
main process, and only the names come back through the pipe (reading the whole JSON report
there, a document that grows every cycle, was the main process's linear memory growth). This
module imports only the analysis, so the child starts in a fraction of a second.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from osha.analysis import AnalysisOptions, analyze

__all__ = ["judge_main"]


def judge_main(argv: list[str]) -> int:
    """The child's entry: ``RUN_DIR AT_WALL_S SLO...``; prints the breached names as JSON."""
    run_dir, at_wall_s, slos = Path(argv[0]), float(argv[1]), set(argv[2:])
    verdict = analyze(run_dir, options=AnalysisOptions(live_at_wall_s=at_wall_s)).verdict
    breached = sorted(r.name for r in verdict.results if r.slo in slos and not r.passed)
    sys.stdout.write(json.dumps({"breached": breached}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(judge_main(sys.argv[1:]))
