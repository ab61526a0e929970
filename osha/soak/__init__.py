"""Long unattended runs (soak): self-chaos, the guards of a run, and per-cycle metrics.

- :class:`SelfChaos`: SIGKILL a random actor every N s (``--self-chaos-every-s``);
- :class:`SoakGuards`: starts :class:`~osha.selfmon.SelfMonitor` (RSS/CPU, disk floor) and
  :class:`SelfChaos` for a running :class:`~osha.supervisor.Supervisor`, stops them first;
- :func:`cycle_rows` / :func:`trend`: per-cycle metrics replayed from a soak's ledger (computed
  by the analysis's pass: :attr:`osha.analysis.Analysis.soak`);
- :func:`soak_figures`: the figures a soak is accepted on (cycles, overruns, faults, osha's
  own kills and restarts, its RSS at cycles 5/100/250/last and the slope per hour).

The cycles themselves are run by :mod:`osha.campaign.soak`, the status file is the campaign's
``status.json`` (:mod:`osha.campaign.control`), resume is :mod:`osha.campaign.resume`, and
raw-sample retention lives with the ledger (:mod:`osha.ledger.retention`).
"""

from __future__ import annotations

from osha.soak.cycles import CycleRow, cycle_rows, trend
from osha.soak.figures import SoakFigures, soak_figures
from osha.soak.guards import SoakGuards, SoakOptions
from osha.soak.selfchaos import SelfChaos

__all__ = [
    "CycleRow",
    "SelfChaos",
    "SoakFigures",
    "SoakGuards",
    "SoakOptions",
    "cycle_rows",
    "soak_figures",
    "trend",
]
