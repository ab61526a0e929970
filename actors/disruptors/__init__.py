"""The disruptor plugins: ``process``, ``node`` and ``container``, on
:class:`osha.faults.disruptor.FaultDisruptor`.

Every fault is leased (durably, before it is injected), held, and reverted: see
:mod:`osha.faults.disruptor` and :mod:`osha.faults`.
"""
