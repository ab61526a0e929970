#!/usr/bin/env python3
"""The figures a soak is accepted on, from its ledger: cycles ok, overruns, faults injected and
reverted, osha's own kills and restarts, its main-process RSS at cycles 5, 100, 250 and the
last, and the RSS slope per hour (:func:`osha.soak.soak_figures`).

The >= 2 h lab soak (500 cycles of 15 s, self-chaos every 20 s), then its figures:

    flock -w 3600 /var/lib/osha-lab/.test-session.lock \\
      .venv/bin/osha campaign start profiles/lab-soak.toml --cycles 500 \\
      --self-chaos-every-s 20 --plain --ledger-dir runs
    .venv/bin/python scripts/soak_figures.py runs/<run-id>.osha

Usage: scripts/soak_figures.py RUN_DIR [RUN_DIR...]; exit 2 if one is not a soak's ledger.
"""

from __future__ import annotations

import sys
from pathlib import Path

from osha.errors import OshaError
from osha.soak import soak_figures


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    for run in argv:
        try:
            print(soak_figures(Path(run)).render())
        except (OshaError, ValueError) as exc:
            hint = getattr(exc, "hint", "") or "pass a run directory of a soak (runs/<id>.osha)"
            print(f"error: {run}: {getattr(exc, 'message', exc)}\nhint: {hint}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
