"""``noop``: a disruptor that injects nothing; it waits to be stopped."""

from __future__ import annotations

from osha.plugin import Disruptor, EmptyConfig

__all__ = ["NoopDisruptor"]


class NoopDisruptor(Disruptor[EmptyConfig]):
    """Does nothing until stopped: a placeholder disruptor for tests and dry runs.

    Profile::

        [[disruptors]]
        id = "noop"
        plugin = "noop"
    """

    config_type = EmptyConfig
