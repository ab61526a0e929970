"""The disruptor plugins: ``process``, ``node`` and ``container``, on :class:`FaultDisruptor`.

Every fault is leased (durably, before it is injected), held, and reverted: see
:mod:`actors.disruptors._base` and :mod:`osha.faults`.
"""

from actors.disruptors._base import FaultConfig, FaultDisruptor

__all__ = ["FaultConfig", "FaultDisruptor"]
