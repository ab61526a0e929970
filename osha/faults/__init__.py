"""Fault leases, the blast-radius guard, guaranteed revert, and recovery after a crash.

- :class:`Lease`: what, where, when, how to revert, and by when; written to the ledger and
  fsynced *before* a disruptor injects.
- :class:`FaultBroker`: runs in the supervisor's process; grants or refuses leases
  (:class:`Guard`: ``[guard] max_down``, and ``[guard] quorum`` from the cluster monitors'
  states, :mod:`osha.faults._quorum`), and reverts the leases of a disruptor that crashed,
  and whatever is still held when the run ends.
- :func:`revert_with_retry`: every attempt recorded; backoff until the lease's deadline; loud.
- :func:`recover`: ``osha faults recover RUN_DIR`` after osha itself was killed.
- The run tree (:mod:`osha.runtree`) wires the broker between the recorder and the
  supervisor.
- :func:`plan_rows`: a profile's planned fault timeline, checked against the guard.
- :mod:`osha.faults.disruptor`: the disruptor contract plugins derive from
  (:class:`~osha.faults.disruptor.FaultConfig`, :class:`~osha.faults.disruptor.FaultDisruptor`,
  :func:`~osha.faults.disruptor.load_hosts`); :class:`Revertible` is what core calls on a
  plugin class to undo a lease, :func:`fault_class` finds one by its plugin name.
- :mod:`osha.faults.deadman`: the dead-man switch, a watchdog on the node that reverts a fault
  at its deadline unless renewed (for faults that never heal by themselves).
"""

from osha.faults._broker import BrokerReport, FaultBroker, LeaseSink, Reverter, Sender
from osha.faults._guard import Guard, Refusal
from osha.faults._lease import Lease, Revertible
from osha.faults._plan import PlanRow, plan_rows
from osha.faults._plugins import (
    collector_for_profile,
    fault_class,
    plugin_collector,
    plugin_reverter,
    reverter_for_profile,
)
from osha.faults._recover import RecoverItem, RecoverReport, recover, unrevoked
from osha.faults._revert import RetryPolicy, revert_with_retry
from osha.faults._switch import Collector

__all__ = [
    "BrokerReport",
    "Collector",
    "FaultBroker",
    "Guard",
    "Lease",
    "LeaseSink",
    "PlanRow",
    "RecoverItem",
    "RecoverReport",
    "Refusal",
    "RetryPolicy",
    "Reverter",
    "Revertible",
    "Sender",
    "collector_for_profile",
    "fault_class",
    "plan_rows",
    "plugin_collector",
    "plugin_reverter",
    "recover",
    "revert_with_retry",
    "reverter_for_profile",
    "unrevoked",
]
