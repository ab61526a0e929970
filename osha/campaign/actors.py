"""The campaign's actors: one supervisor for every monitor, disruptor and runner, with the
fault broker wired in.

Start order is monitors, runners, disruptors (so monitors watch before anything happens, and
disruptors come last); stop order is the reverse: disruptors revert what they hold, runners
abort their workloads (Rally: ``rally task abort``), monitors see the end.

**When disruptors strike.** Every disruptor asks the broker for the chaos start
(``fault.sync`` → ``fault.synced.chaos_start_wall_s``) and schedules its faults from it. The
campaign fixes that instant *before* any child starts: the end of the baseline, ``baseline_s``
after the actors are started. So disruptors run from the baseline on, but their first fault
comes at ``chaos start + start_s`` at the earliest; a stop before the chaos start stops them
before they strike.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from osha.faults import BrokerReport, FaultBroker, broker_for_profile
from osha.profile import ActorEntry, Profile
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

    def start(self, chaos_start_wall_s: float) -> None:
        """Start the broker with the chaos start fixed, then every child (in order, each
        ready before the next). Raises PluginError if a child does not start."""
        self.broker.start()
        # The broker's clock starts at start(); the campaign's chaos starts after the
        # baseline. Set before any child exists, so every fault.synced carries it.
        self.broker.chaos_start_wall_s = chaos_start_wall_s
        self._started = True
        self.supervisor.start()

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
