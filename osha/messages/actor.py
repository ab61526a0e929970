"""Messages about actor processes: the child's control frames and the supervisor's records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from osha.messages._base import Message, message

__all__ = [
    "ActorBoot",
    "ActorCrashed",
    "ActorFailed",
    "ActorHeartbeat",
    "ActorHello",
    "ActorReady",
    "ActorRestarting",
    "ActorStarted",
    "ActorStop",
    "ActorStopped",
    "CrashReason",
    "SupervisorEscalated",
]

CrashReason = Literal["exit", "eof", "heartbeat", "failed", "wire", "start"]
"""Why a child ended: its process ``exit``-ed on its own; its pipe reached ``eof`` while the
process lived on; it missed its ``heartbeat`` (hung, then killed); its plugin ``failed``
(``actor.failed`` received); it sent a frame that does not decode (``wire``, then killed); or it
did not become ready in time at ``start``."""

ActorKind = Literal["monitor", "disruptor", "runner"]


# -- control frames between a child and its handle (not recorded) --------------------------


@message("actor.boot")
@dataclass(frozen=True, slots=True)
class ActorBoot(Message):
    """First frame from the parent to a new child: what to run and how to report.

    ``config`` is the plugin's config as plain data; the child builds the plugin's typed
    ``config_type`` from it.
    """

    actor_id: str
    kind: ActorKind
    plugin: str
    config: dict[str, Any]
    seed: int
    incarnation: int
    heartbeat_interval_s: float
    flush_interval_s: float = 0.005


@message("actor.hello")
@dataclass(frozen=True, slots=True)
class ActorHello(Message):
    """First frame of a child: who it is and which wire schema it speaks."""

    actor_id: str
    pid: int
    schema_version: int
    osha_version: str


@message("actor.ready")
@dataclass(frozen=True, slots=True)
class ActorReady(Message):
    """The child's plugin is set up and running."""

    actor_id: str


@message("actor.heartbeat")
@dataclass(frozen=True, slots=True)
class ActorHeartbeat(Message):
    """The child is alive. ``last_seq`` is the last event sequence number it sent."""

    last_seq: int


@message("actor.failed")
@dataclass(frozen=True, slots=True)
class ActorFailed(Message):
    """The plugin raised; the child reports the error, then exits non-zero."""

    actor_id: str
    error_type: str
    error: str
    traceback: str = ""


@message("actor.stop")
@dataclass(frozen=True, slots=True)
class ActorStop(Message):
    """Command to a child: tear the plugin down and exit cleanly."""

    reason: str = ""


# -- records written by the supervisor --------------------------------------------------------


@message("actor.started")
@dataclass(frozen=True, slots=True)
class ActorStarted(Message):
    """A child process started and said hello. ``incarnation`` counts from 1."""

    actor_id: str
    plugin: str
    kind: str
    pid: int
    incarnation: int
    config: dict[str, Any]


@message("actor.crashed")
@dataclass(frozen=True, slots=True)
class ActorCrashed(Message):
    """A child died or hung. ``signal`` is the signal number that ended it, if any."""

    actor_id: str
    pid: int
    incarnation: int
    reason: CrashReason
    exit_code: int | None
    signal: int | None
    last_error: str


@message("actor.restarting")
@dataclass(frozen=True, slots=True)
class ActorRestarting(Message):
    """The supervisor will start this child again after ``delay_s``."""

    actor_id: str
    restarts_in_period: int
    delay_s: float


@message("actor.stopped")
@dataclass(frozen=True, slots=True)
class ActorStopped(Message):
    """A child ended and will not be started again (stop, or a temporary/transient exit)."""

    actor_id: str
    pid: int
    exit_code: int | None
    signal: int | None
    clean: bool
    duration_s: float


@message("supervisor.escalated")
@dataclass(frozen=True, slots=True)
class SupervisorEscalated(Message):
    """Restarts exceeded the intensity: the supervisor stops every child and gives up."""

    actor_id: str
    restarts: int
    intensity: int
    period_s: float
    last_error: str
