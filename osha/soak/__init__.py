"""Long unattended runs (soak): self-chaos, the guards of a run, per-cycle metrics and the
machine-readable status file.

- :class:`SelfChaos`: SIGKILL a random actor every N s (``--self-chaos-every-s``);
- :class:`SoakGuards`: starts :class:`~osha.selfmon.SelfMonitor` (RSS/CPU, disk floor) and
  :class:`SelfChaos` for a running :class:`~osha.supervisor.Supervisor`, stops them first;
- :func:`cycle_rows` / :func:`trend`: per-cycle metrics replayed from a soak's ledger;
- :class:`SoakStatus` / :func:`write_status`: the JSON status file, atomically replaced.

Raw-sample retention and resume live with the ledger (:mod:`osha.ledger.retention`,
:meth:`osha.ledger.LedgerWriter.resume`).
"""

from __future__ import annotations

from osha.soak.cycles import CycleRow, cycle_rows, trend
from osha.soak.guards import SoakGuards, SoakOptions
from osha.soak.selfchaos import SelfChaos
from osha.soak.status import CycleVerdict, NextFault, SoakStatus, read_status, write_status

__all__ = [
    "CycleRow",
    "CycleVerdict",
    "NextFault",
    "SelfChaos",
    "SoakGuards",
    "SoakOptions",
    "SoakStatus",
    "cycle_rows",
    "read_status",
    "trend",
    "write_status",
]
