"""Supervision of actor processes, declared as data (Erlang/OTP style).

A :class:`SupervisorSpec` lists ordered :class:`ChildSpec` s with their restart type and
shutdown timeout, plus the strategy, the intensity and period, the backoff and the heartbeat.
:func:`run_supervised` (or :class:`Supervisor`) runs them: each child in its own fresh OS
process (:mod:`osha.actorhost`), owned by a handle actor (:mod:`osha.child`), supervised by a
pykka actor. Every start, crash, restart, stop and escalation is a record in the ledger.

Usage::

    spec = SupervisorSpec(children=(ChildSpec("tick", "monitor", "ticker"),))
    outcome = run_supervised(spec, sink, duration_s=10.0, run_dir=Path("run"))
"""

from osha.supervisor._actor import ChildInfo, ChildState, child_seed
from osha.supervisor._run import Supervisor, raise_if_escalated, run_supervised
from osha.supervisor._spec import (
    ChildSpec,
    Restart,
    RunOutcome,
    StopReason,
    Strategy,
    SupervisorFlags,
    SupervisorSpec,
)

__all__ = [
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "Restart",
    "RunOutcome",
    "StopReason",
    "Strategy",
    "Supervisor",
    "SupervisorFlags",
    "SupervisorSpec",
    "child_seed",
    "raise_if_escalated",
    "run_supervised",
]
