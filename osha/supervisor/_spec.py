"""Supervision as data: restart types, strategies, child and supervisor specs, outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from osha.plugin import Kind

__all__ = [
    "ChildSpec",
    "Restart",
    "RunOutcome",
    "StopReason",
    "Strategy",
    "SupervisorFlags",
    "SupervisorSpec",
]


class Restart(enum.StrEnum):
    """When a child that ended is started again (Erlang/OTP restart types)."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after an abnormal end (a crash, not exit code 0)
    TEMPORARY = "temporary"  # never


class Strategy(enum.StrEnum):
    """Which children restart when one crashes (Erlang/OTP strategies)."""

    ONE_FOR_ONE = "one_for_one"  # the crashed child only
    ONE_FOR_ALL = "one_for_all"  # every child: the others are stopped first
    REST_FOR_ONE = "rest_for_one"  # the crashed child and those started after it


class StopReason(enum.StrEnum):
    """Why a supervised run ended (``run.stopped.reason``)."""

    DURATION = "duration"
    INTERRUPT = "interrupt"  # Ctrl-C
    SIGNAL = "signal"  # SIGTERM
    REQUESTED = "requested"  # request_stop() from code
    COMPLETED = "completed"  # every child ended and none will be restarted
    ESCALATED = "escalated"  # restarts exceeded the intensity
    START_FAILED = "start_failed"  # a child did not become ready when the run started


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One supervised child: which plugin runs under which id, and how it is restarted."""

    id: str
    kind: Kind
    plugin: str
    config: dict[str, Any] = field(default_factory=dict)
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.id or self.id != self.id.strip() or "/" in self.id:
            raise ValueError(f"child id {self.id!r} must be a non-empty name without '/'")
        if self.shutdown_s <= 0:
            raise ValueError(f"child {self.id!r}: shutdown_s must be > 0, not {self.shutdown_s}")
        if not isinstance(self.restart, Restart):
            raise TypeError(f"child {self.id!r}: restart must be a Restart, not {self.restart!r}")


@dataclass(frozen=True, slots=True)
class SupervisorFlags:
    """The supervisor's flags (Erlang/OTP ``SupFlags``); the profile's ``[supervisor]`` table.

    More than ``intensity`` restarts within ``period_s`` escalates: every child is stopped and
    the run ends with :class:`~osha.errors.EscalationError`. The first restart within the
    period has no delay; the n-th waits ``backoff_initial_s * 2**(n-2)``, at most
    ``backoff_max_s``. A child that sends no frame for ``heartbeat_timeout_s`` is hung: it is
    killed and restarted. A child not ready within ``start_timeout_s`` did not start. A child
    sends its batched events every ``batch_interval_s``.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 5
    period_s: float = 30.0
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 5.0
    heartbeat_interval_s: float = 0.5
    heartbeat_timeout_s: float = 3.0
    # spawn, imports and the plugin's setup: took > 15 s on a 2-core host at load 17
    start_timeout_s: float = 60.0
    batch_interval_s: float = 0.005

    def __post_init__(self) -> None:
        if self.intensity < 0 or self.period_s <= 0:
            raise ValueError("need intensity >= 0 and period_s > 0")
        if not 0 < self.heartbeat_interval_s < self.heartbeat_timeout_s:
            raise ValueError("need 0 < heartbeat_interval_s < heartbeat_timeout_s")
        if self.backoff_initial_s < 0 or self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("need 0 <= backoff_initial_s <= backoff_max_s")
        if self.start_timeout_s <= 0 or self.batch_interval_s <= 0:
            raise ValueError("need start_timeout_s > 0 and batch_interval_s > 0")
        if not isinstance(self.strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy, not {self.strategy!r}")

    def backoff_s(self, restarts_in_period: int) -> float:
        """The delay before the n-th restart within the period (n counts from 1)."""
        if restarts_in_period <= 1:
            return 0.0
        return min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** (restarts_in_period - 2))


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """What to supervise and how: the ordered children, the flags, and the run's seed (each
    child gets a seed derived from it and its id)."""

    children: tuple[ChildSpec, ...] = ()
    flags: SupervisorFlags = SupervisorFlags()
    seed: int = 0

    def __post_init__(self) -> None:
        ids = [c.id for c in self.children]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate child id(s): {', '.join(dupes)}")


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a supervised run ended."""

    reason: StopReason
    restarts: int
    error: str = ""
    escalated_child: str = ""

    @property
    def escalated(self) -> bool:
        return self.reason is StopReason.ESCALATED
