"""The campaign's actors: one supervisor for every monitor, disruptor and runner, with the
fault broker wired in.

Start order is monitors, runners, disruptors (so monitors watch before anything happens, and
disruptors come last); stop order is the reverse: disruptors revert what they hold, runners
abort their workloads (Rally: ``rally task abort``), monitors see the end.

**When disruptors strike.** Every disruptor asks the broker for the chaos clock
(``fault.sync`` → ``fault.synced``: a :class:`~osha.schedule.ChaosClock`) and schedules its
faults from it, once, or once per cycle in a soak. The broker answers once the campaign fixes
the clock: after every actor has started and every runner is warm, ``baseline_s`` ahead (so
the baseline really lasts ``baseline_s``, however long the actors took to start). A stop
before that ends the disruptors' wait: nothing is planned or struck.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from osha.faults import BrokerReport, FaultBroker, broker_for_profile
from osha.profile import ActorEntry, Profile
from osha.schedule import ChaosClock
from osha.supervisor import (
    ChildSpec,
    Restart,
    RunOutcome,
    StopReason,
    Supervisor,
    SupervisorSpec,
)

__all__ = ["ActorSet", "supervisor_spec"]

log = logging.getLogger("osha.campaign")

_ORDER = {"monitor": 0, "runner": 1, "disruptor": 2}


def supervisor_spec(prof: Profile) -> SupervisorSpec:
    """The supervisor's spec: the profile's actors in campaign start order."""
    entries: list[ActorEntry] = sorted(prof.actors, key=lambda a: _ORDER[a.kind])
    return SupervisorSpec(
        children=tuple(
            ChildSpec(
                id=a.id,
                kind=a.kind,
                plugin=a.plugin,
                config=a.raw_config,
                restart=Restart(a.restart),
                shutdown_s=a.shutdown_s,
            )
            for a in entries
        ),
        flags=prof.supervisor,
        seed=prof.campaign.seed,
    )


class ActorSet:
    """The supervised actors of one campaign and their fault broker."""

    def __init__(self, prof: Profile, sink: Any, *, run_dir: Path, run_id: str) -> None:
        self.broker: FaultBroker = broker_for_profile(prof, sink)
        self.supervisor = Supervisor(
            supervisor_spec(prof),
            sink,
            run_dir=run_dir,
            run_id=run_id,
            observer=self.broker.observe,
        )
        self.broker.attach(self.supervisor.send)
        self._started = False
        self._stopped: RunOutcome | None = None
        self.report: BrokerReport | None = None

    def start(self) -> None:
        """Start the broker, its chaos clock not fixed yet, then every child (in order, each
        ready before the next). Raises PluginError if a child does not start."""
        self.broker.start(deferred=True)
        self._started = True
        self.supervisor.start()

    def set_clock(self, clock: ChaosClock) -> None:
        """Fix when the fault windows start; every disruptor gets it (now, or when it asks)."""
        self.broker.set_clock(clock)

    @property
    def ended_by_itself(self) -> RunOutcome | None:
        """How the run ended when it did so before :meth:`stop` (escalation, a child that did
        not start, every child ended); None while it runs or after our own stop."""
        return None if self._stopped is not None else self.supervisor.outcome

    def stop(self, reason: StopReason) -> RunOutcome | None:
        """Stop every child (reverse order; each disruptor reverts what it holds), then let
        the broker revert whatever is still held. Idempotent."""
        if not self._started:
            return None
        outcome = self._stopped
        if outcome is None:
            began_s = time.monotonic()
            try:
                outcome = self._stopped = self.supervisor.stop(reason)
            finally:
                self.report = self.broker.close()
            log.info("actors stopped in %.1f s", time.monotonic() - began_s)
        return outcome

    def active_leases(self) -> int:
        return len(self.broker.active())
