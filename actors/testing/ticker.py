"""``ticker``: a monitor that emits synthetic samples, for tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

from actors.testing.commands import TestFlood
from osha.messages import Message, Sample
from osha.plugin import Monitor, MonitorConfig

__all__ = ["TickerConfig", "TickerMonitor"]


@dataclass(frozen=True, slots=True)
class TickerConfig(MonitorConfig):
    """``targets``: the target names to report; ``burst``: samples per target per poll."""

    targets: tuple[str, ...] = ("tick@local",)
    burst: int = 1


class TickerMonitor(Monitor[TickerConfig]):
    """Emits ``burst`` ``monitor.sample`` records per target every ``interval_s``; on a
    ``test.flood`` command it emits ``count`` samples as fast as it can (the core benchmark).

    Profile::

        [[monitors]]
        id = "tick"
        plugin = "ticker"
        interval_s = 0.5
        targets = ["nova-api@ctl-1", "neutron-server@ctl-1"]
        burst = 1
    """

    config_type = TickerConfig

    def poll(self) -> None:
        emit = self.ctx.emit
        for _ in range(self.config.burst):
            for target in self.config.targets:
                emit(Sample, target=target, count=1, failures=0, latency_median_s=0.0)

    def on_command(self, command: Message) -> None:
        if not isinstance(command, TestFlood):
            super().on_command(command)
            return
        emit = self.ctx.emit
        target = self.config.targets[0] if self.config.targets else "tick@local"
        for _ in range(command.count):
            emit(Sample, target=target, count=1, failures=0)
