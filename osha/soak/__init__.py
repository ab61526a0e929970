"""Long unattended runs (soak): self-chaos, and the wiring of self-monitoring, the disk-space
floor and self-chaos around a supervised run.

- :class:`SelfChaos`: SIGKILL a random actor every N s (``--self-chaos-every-s``);
- :class:`SoakGuards`: starts :class:`~osha.selfmon.SelfMonitor` (RSS/CPU, disk floor) and
  :class:`SelfChaos` for a running :class:`~osha.supervisor.Supervisor`, stops them first.
"""

from __future__ import annotations

from osha.soak.guards import SoakGuards, SoakOptions
from osha.soak.selfchaos import SelfChaos

__all__ = ["SelfChaos", "SoakGuards", "SoakOptions"]
