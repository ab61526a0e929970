"""What monitors report: per-interval summaries, state changes, metrics and boots of targets.

Targets are named the same way everywhere: ``service@node`` (also ``container@node`` and
``agent@node``), ``endpoint:compute`` (a catalog service type), ``node:ctl-1`` (reachability),
``vm:<name-or-address>``.

Times inside messages are on the *sender's* monotonic clock, like the envelope's ``mono_s``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from osha.messages._base import Message, message

__all__ = [
    "BAD_STATES",
    "RAW_TAGS",
    "HostBoot",
    "Metric",
    "Sample",
    "State",
    "StateChange",
    "VipMoved",
    "is_bad",
    "is_blind",
]


class State(enum.StrEnum):
    """What a monitor says about a target. A member equals its value (``State.UP == "up"``),
    and decoding gives the member back."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"


#: The one rule for what a state says, for the live picture (the soak's cycle verdict, the
#: recovery wait, the live view) and the analysis alike: ``up`` is good; ``down`` and
#: ``unreachable`` are **bad** (the monitor saw the target fail); ``unknown`` is **blind** (the
#: monitor cannot see the target: it just started, its probe cannot run, or it crashed). Blind
#: is neither up nor down: it is no outage, and no proof of health either.
BAD_STATES: frozenset[str] = frozenset({State.DOWN, State.UNREACHABLE})


def is_bad(state: str) -> bool:
    """``down`` or ``unreachable``: the monitor saw the target fail (see :data:`BAD_STATES`)."""
    return state in BAD_STATES


def is_blind(state: str) -> bool:
    """``unknown``: the monitor cannot see the target; neither up nor down."""
    return state == State.UNKNOWN


@message("monitor.sample")
@dataclass(frozen=True, slots=True)
class Sample(Message):
    """A summary of one target's observations over one reporting interval."""

    target: str
    count: int
    failures: int
    latency_min_s: float | None = None
    latency_median_s: float | None = None
    latency_max_s: float | None = None


@message("monitor.state")
@dataclass(frozen=True, slots=True)
class StateChange(Message):
    """A target changed state. The true transition lies between ``last_good_mono_s`` (the last
    observation in the old state) and ``first_bad_mono_s`` (the first in the new one)."""

    target: str
    state: State
    previous: State
    last_good_mono_s: float | None
    first_bad_mono_s: float
    evidence: str = ""


@message("monitor.metric")
@dataclass(frozen=True, slots=True)
class Metric(Message):
    """A summary of one numeric series of a target over one reporting interval, e.g. a
    Nagios plugin's performance data ``time=0.002s``: ``name="time"``, ``unit="s"``."""

    target: str
    name: str
    unit: str
    count: int
    last: float
    min: float
    median: float
    max: float


@message("host.boot")
@dataclass(frozen=True, slots=True)
class HostBoot(Message):
    """A node's boot id, seen first or changed (a reboot). ``previous`` is empty the first
    time the monitor sees the node."""

    target: str  # "node:cmp-1"
    boot_id: str
    previous: str = ""
    observed_mono_s: float = 0.0


@message("monitor.vip_moved")
@dataclass(frozen=True, slots=True)
class VipMoved(Message):
    """A virtual IP moved: ``address`` of ``target`` (``vip:internal``) was last seen on
    ``from_node`` at ``last_seen_mono_s`` and is first seen on ``to_node`` at
    ``first_seen_mono_s``; the move happened between the two."""

    target: str
    address: str
    from_node: str
    to_node: str
    last_seen_mono_s: float
    first_seen_mono_s: float


RAW_TAGS = frozenset({Sample.TAG, Metric.TAG})
"""The tags of raw samples: per-interval summaries, the bulk of a soak. A child sends them in
RAW_RECORDS frames (:mod:`osha.wire`); a ledger with a retention policy keeps them in its raw
lane, and they are the only records retention may delete (:mod:`osha.ledger.retention`)."""
