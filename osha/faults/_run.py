"""Wiring the broker into a supervised run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from osha.child import RecordSink
from osha.errors import EscalationError
from osha.faults._broker import BrokerReport, FaultBroker, LeaseSink
from osha.faults._plugins import reverter_for_profile
from osha.faults._revert import RetryPolicy
from osha.profile import Profile
from osha.supervisor import RunOutcome, StopReason, Supervisor, SupervisorSpec

__all__ = ["broker_for_profile", "run_with_broker"]

log = logging.getLogger("osha.faults")


class _Sink(RecordSink, LeaseSink, Protocol):
    """The recorder handle: both protocols at once."""


def broker_for_profile(
    prof: Profile, sink: LeaseSink, *, policy: RetryPolicy | None = None
) -> FaultBroker:
    """The broker of a run of ``prof``: its guard and its disruptors' revert logic."""
    return FaultBroker(
        sink, max_down=prof.guard.max_down, revert=reverter_for_profile(prof), policy=policy
    )


def run_with_broker(
    spec: SupervisorSpec,
    sink: _Sink,
    broker: FaultBroker,
    *,
    duration_s: float | None = None,
    stop_event: threading.Event | None = None,
    run_dir: Path | None = None,
    run_id: str | None = None,
    on_started: Callable[[Supervisor], None] | None = None,
    close_timeout_s: float = 120.0,
) -> tuple[RunOutcome, BrokerReport]:
    """:func:`osha.supervisor.run_supervised`, with ``broker`` granting leases and reverting.

    After the children stop (each reverts what it holds in its teardown), the broker reverts
    whatever is still held, before this returns: call it before closing the recorder.
    """
    sup = Supervisor(spec, sink, run_dir=run_dir, run_id=run_id, observer=broker.observe)
    broker.attach(sup.send)
    broker.start()
    reason = StopReason.INTERRUPT
    try:
        sup.start()
        try:
            if on_started is not None:
                on_started(sup)
            reason = sup.wait(duration_s, stop_event=stop_event)
        finally:
            outcome = sup.stop(reason)
    finally:
        report = broker.close(close_timeout_s)
    if report.failed:
        log.critical(
            "%d fault(s) could not be reverted: %s",
            len(report.failed),
            ", ".join(lease.what for lease in report.failed),
        )
    if outcome.escalated:
        raise EscalationError(
            f"the supervisor gave up: {outcome.error}",
            hint="the ledger holds every actor.crashed record; fix the cause, then run again",
        )
    return outcome, report
