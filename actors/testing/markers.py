"""``marker``: faults without a cloud, for tests and benchmarks. A fault is a marker file.

The ``marker`` disruptor goes through the whole fault machinery of a real disruptor (targets
from an inventory, the schedule, durable leases from the broker, inject, hold, revert with
retries, release; the broker's revert after a crash) but its fault is a file
``<markers>/<resource>@<node>`` (``<markers>/<node>`` without a ``resource``) that exists
while the fault is held. ``inject_s`` and ``revert_s`` make
the inject and the revert take that long (a graceful ``systemctl stop`` takes seconds), so a
soak can overrun its cycle without a lab.

The ``marker`` monitor watches the same folder: each of its ``targets`` (a file name, like
``nova-scheduler@ctl-1``) is ``down`` while that file exists, ``up`` otherwise. It reports a
``monitor.sample`` per target per poll and a ``monitor.state`` on every change, as a
node-side monitor does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.monitors import StateTracker
from osha.faults import Lease
from osha.faults.disruptor import FaultConfig, FaultDisruptor
from osha.messages import Sample, State
from osha.plugin import Monitor, MonitorConfig

__all__ = ["MarkerConfig", "MarkerDisruptor", "MarkerMonitor", "MarkerWatchConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkerConfig(FaultConfig):
    """``markers``: the folder of the marker files (created if missing); ``resource``: what
    the fault names on its node (the file is ``<resource>@<node>``); ``inject_s`` and
    ``revert_s``: how long the inject and each revert attempt take."""

    markers: str = "markers"
    resource: str = ""
    inject_s: float = 0.0
    revert_s: float = 0.0

    def __post_init__(self) -> None:
        if self.inject_s < 0 or self.revert_s < 0:
            raise ValueError("inject_s and revert_s must be >= 0")


class MarkerDisruptor(FaultDisruptor[MarkerConfig]):
    """Marks a node by creating ``<markers>/<resource>@<node>``; reverting deletes the file.
    No node is touched: for tests and benchmarks of the fault machinery (leases, holds,
    reverts).

    Plus the keys of every disruptor (``target``, ``schedule``, ``inventory``, ...; see
    ``actors.disruptors.FaultConfig``).

    Profile::

        [[disruptors]]
        id = "mark"
        plugin = "marker"
        markers = "/tmp/osha-markers"
        resource = "nova-conductor"
        revert_s = 2.5
        target = { group = "controller", pick = "random" }
        schedule = { start_s = 1, times = 1, down_s = 2 }
    """

    config_type = MarkerConfig
    plugin_name = "marker"

    def action(self) -> str:
        return "mark"

    def resource(self) -> str:
        return self.config.resource

    def inject(self, lease: Lease) -> str:
        self.ctx.wait(self.config.inject_s)
        path = _marker(self.config, lease)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return f"created {path.name}"

    @classmethod
    def revert_lease(cls, config: Any, lease: Lease) -> str:
        threading.Event().wait(config.revert_s)  # a slow revert, as a graceful stop/start
        path = _marker(config, lease)
        path.unlink(missing_ok=True)
        return f"deleted {path.name}"


def _marker(config: MarkerConfig, lease: Lease) -> Path:
    name = f"{lease.resource}@{lease.node}" if lease.resource else lease.node
    return Path(config.markers) / name


@dataclass(frozen=True, slots=True)
class MarkerWatchConfig(MonitorConfig):
    """``markers``: the folder the ``marker`` disruptor writes; ``targets``: the marker file
    names watched (``<resource>@<node>`` or ``<node>``)."""

    markers: str = "markers"
    targets: tuple[str, ...] = ()


class MarkerMonitor(Monitor[MarkerWatchConfig]):
    """A target is down while its file ``<markers>/<target>`` exists: the monitor of the
    ``marker`` disruptor's faults (tests and benchmarks; no node is touched).

    Profile::

        [[monitors]]
        id = "markers"
        plugin = "marker"
        markers = "/tmp/osha-markers"
        targets = ["nova-conductor@ctl-1", "nova-conductor@ctl-2"]
        interval_s = 0.2
    """

    config_type = MarkerWatchConfig

    def setup(self) -> None:
        self.tracker = StateTracker(self.ctx)

    def poll(self) -> None:
        folder = Path(self.config.markers)
        for target in self.config.targets:
            down = (folder / target).exists()
            self.ctx.emit(Sample, target=target, count=1, failures=int(down))
            self.tracker.emit(target, State.DOWN if down else State.UP, time.monotonic())
